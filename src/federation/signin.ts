// Who a person signing in through an upstream provider is at Gatehouse.
//
//   1. A link (provider, upstream subject) names the account: that is it.
//   2. First sign-in, no link yet. The provider must give an email (and,
//      when the provider has routed domains, one of those domains):
//      - an account with that email exists and the provider asserts
//        `email_verified: true`: the identity is linked to it (audited as
//        account.linked, reason verified_email);
//      - an account with that email exists and the provider does not assert
//        a verified email: refused, nothing is linked or created (Keycloak's
//        rule: the person signs in with their password; someone who merely
//        typed that address at the provider must not get the account);
//      - no account has that email: a new account (no password) is created
//        and linked (user.create and account.linked, reason new_account).
//   3. The account must stand like a local sign-in: a disabled account is
//      refused, and so is one locked by failed logins (the lock of its
//      login throttle). Its roles and MFA apply as for anyone: the tokens
//      are Gatehouse's own, issued for the Gatehouse account.
import { findAccountByEmail, getAccount, isValidEmail, normalizeEmail, type AccountView } from '../accounts/store.ts';
import { accountThrottleKey, lockStatus } from '../accounts/throttle.ts';
import { createAccountAs } from '../accounts/writes.ts';
import type { Db } from '../db/client.ts';
import type { Actor } from '../kernel/actor.ts';
import { ConflictError } from '../kernel/errors.ts';
import { inTransaction } from '../kernel/tx.ts';
import type { UpstreamIdentity } from './relying-party.ts';
import { findLink, type IdpView } from './store.ts';
import { linkAccountAs } from './writes.ts';

export type FederatedRefusal =
  /** the provider gave no (valid) email and no link exists */
  | 'no_email'
  /** the provider has routed domains and the email is in none of them */
  | 'domain_mismatch'
  /** an account has the email, and the provider does not assert it is verified */
  | 'email_unverified'
  | 'disabled'
  | 'locked';

export type FederatedOutcome =
  | { ok: true; account: AccountView; linked?: 'verified_email' | 'new_account' }
  | { ok: false; reason: FederatedRefusal; accountId?: string; email?: string; retryAfterSeconds?: number };

async function standing(db: Db, account: AccountView): Promise<FederatedOutcome> {
  if (account.disabled) return { ok: false, reason: 'disabled', accountId: account.id, email: account.email };
  const lock = await lockStatus(db, accountThrottleKey(account.id));
  if (lock.locked) return { ok: false, reason: 'locked', accountId: account.id, email: account.email, retryAfterSeconds: lock.retryAfterSeconds };
  return { ok: true, account };
}

/** The account this upstream identity signs in as, linking or creating it on a first sign-in. */
export async function resolveFederatedAccount(db: Db, actor: Actor, idp: IdpView, who: UpstreamIdentity, attempt = 0): Promise<FederatedOutcome> {
  const link = await findLink(db, idp.id, who.subject);
  if (link) return standing(db, await getAccount(db, link.accountId));

  const email = who.email !== undefined ? normalizeEmail(who.email) : '';
  if (!email || !isValidEmail(email)) return { ok: false, reason: 'no_email' };
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (idp.domains.length > 0 && !idp.domains.includes(domain)) return { ok: false, reason: 'domain_mismatch', email };
  const opts = { via: `federation:${idp.name}` };

  try {
    const existing = await findAccountByEmail(db, email);
    if (existing) {
      if (!who.emailVerified) return { ok: false, reason: 'email_unverified', email };
      const refused = await standing(db, existing);
      if (!refused.ok) return refused;
      await linkAccountAs(db, actor, { accountId: existing.id, idp, subject: who.subject, reason: 'verified_email' }, opts);
      return { ok: true, account: existing, linked: 'verified_email' };
    }
    const created = await inTransaction(db, async (tx) => {
      const account = await createAccountAs(tx, actor, { email, ...(who.name && { name: who.name.slice(0, 200) }), emailVerified: who.emailVerified }, opts);
      await linkAccountAs(tx, actor, { accountId: account.id, idp, subject: who.subject, reason: 'new_account' }, opts);
      return account;
    });
    return { ok: true, account: created, linked: 'new_account' };
  } catch (err) {
    // Two first sign-ins at once (the same subject, or the same email): the
    // unique indexes let one win; the other looks again and finds its link or account.
    if (err instanceof ConflictError && attempt === 0) return resolveFederatedAccount(db, actor, idp, who, 1);
    throw err;
  }
}
