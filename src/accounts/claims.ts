// OIDC claims of an account, and the account lookup oidc-provider's
// `findAccount` needs.
import type { AccountDirectory } from './cache.ts';
import type { AccountView } from './store.ts';

export interface AccountClaims {
  sub: string;
  name?: string;
  updated_at?: number;
  email?: string;
  email_verified?: boolean;
  [claim: string]: unknown;
}

type ClaimSource = Pick<AccountView, 'id' | 'email' | 'name' | 'emailVerified' | 'updatedAt'>;

/** Standard claims for the granted scopes: `sub` always; `profile` → name, updated_at; `email` → email, email_verified. */
export function claimsFor(account: ClaimSource, scopes: Set<string>): AccountClaims {
  const claims: AccountClaims = { sub: account.id };
  if (scopes.has('profile')) {
    if (account.name !== null) claims.name = account.name;
    claims.updated_at = Math.floor(account.updatedAt.getTime() / 1000);
  }
  if (scopes.has('email')) {
    claims.email = account.email;
    claims.email_verified = account.emailVerified;
  }
  return claims;
}

/** The shape oidc-provider's `findAccount` resolves to. */
export interface OidcAccount {
  accountId: string;
  account: Readonly<AccountView>;
  /** `scope` is oidc-provider's space-separated scope string */
  claims(use: string, scope: string): Promise<AccountClaims>;
}

/** The account for oidc-provider, or undefined when it is unknown or disabled. */
export async function loadAccountForOidc(accounts: AccountDirectory, id: string): Promise<OidcAccount | undefined> {
  if (typeof id !== 'string') return undefined;
  const account = await accounts.get(id);
  if (!account || account.disabled) return undefined;
  return {
    accountId: account.id,
    account,
    claims: async (_use, scope) => claimsFor(account, new Set((scope ?? '').split(' ').filter(Boolean))),
  };
}
