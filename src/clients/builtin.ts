// The built-in client: Gatehouse's own account page (/account) signs people
// in through Gatehouse like any relying party would — a public client, code
// flow with PKCE (S256), redirecting to <issuer>/account/callback. It is not
// stored: the registry answers it before looking in the database, so no
// stored client can take its id, and it needs no set-up. First party (no
// consent screen), openid scope only, no refresh tokens.
import type { ClientRecord } from './store.ts';

export const ACCOUNT_CLIENT_ID = 'gatehouse-account';

export function accountCallbackUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/account/callback`;
}

export function accountClientRecord(issuer: string): Readonly<ClientRecord> {
  const epoch = new Date(0);
  return Object.freeze({
    id: ACCOUNT_CLIENT_ID,
    name: 'Your Gatehouse account',
    public: true,
    grants: ['authorization_code'],
    redirectUris: [accountCallbackUrl(issuer)],
    postLogoutRedirectUris: [],
    scopes: ['openid'],
    resources: [],
    authMethod: 'none',
    jwks: null,
    jwksUri: null,
    requireDpop: false,
    requirePar: false,
    profile: null,
    firstParty: true,
    requireMfa: false,
    backchannelLogoutUri: null,
    accessTokenTtl: null,
    idTokenTtl: null,
    refreshTokenTtl: null,
    disabled: false,
    secretDigest: null,
    previousSecretDigest: null,
    previousSecretExpiresAt: null,
    createdAt: epoch,
    updatedAt: epoch,
    version: 1,
  } satisfies ClientRecord);
}
