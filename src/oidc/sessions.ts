// Administrator action: sign a person out everywhere.
//
// Deletes, in one statement, every oidc-provider record of the account: its
// sessions (on every device), its grants and everything issued under them
// (authorization codes, refresh tokens, opaque access tokens: the adapter's
// revokeByGrantId semantics), and its pending interactions. The next request
// with an old session cookie finds no session (prompt=none → login_required),
// and its refresh tokens are refused (invalid_grant).
//
// JWT access tokens are not stored: they stay valid at resource servers that
// verify them locally until they expire (minutes; see the resource's TTL).
//
// The payload's `accountId` is not indexed: this scans oidc_payloads, which
// is fine for an occasional administrator action.
import { getAccount, isAccountId } from '../accounts/store.ts';
import { auditChange } from '../audit/audit.ts';
import type { Actor } from '../kernel/actor.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';

export interface RevokedForAccount {
  sessions: number;
  grants: number;
  /** every row deleted (sessions, grants, tokens, codes, interactions) */
  records: number;
}

export async function revokeAllSessionsForAccount(db: DbOrTx, accountId: string): Promise<RevokedForAccount> {
  if (typeof accountId !== 'string' || !isAccountId(accountId)) return { sessions: 0, grants: 0, records: 0 };
  const rows = await db.$queryRaw<{ model: string; n: bigint }[]>`
    WITH grants AS (
      SELECT id FROM oidc_payloads WHERE model = 'Grant' AND payload->>'accountId' = ${accountId}
    ), deleted AS (
      DELETE FROM oidc_payloads
      WHERE payload->>'accountId' = ${accountId}
         OR grant_id IN (SELECT id FROM grants)
      RETURNING model
    )
    SELECT model, count(*) AS n FROM deleted GROUP BY model`;
  const count = (m: string) => Number(rows.find((r) => r.model === m)?.n ?? 0);
  return { sessions: count('Session'), grants: count('Grant'), records: rows.reduce((a, r) => a + Number(r.n), 0) };
}

/** The write function of `users revoke-sessions`: ends the sessions and records it, in one transaction. */
export async function revokeSessionsAs(db: DbOrTx, actor: Actor, accountId: string): Promise<RevokedForAccount> {
  return inTransaction(db, async (tx) => {
    await getAccount(tx, accountId); // NotFoundError for an unknown person
    const revoked = await revokeAllSessionsForAccount(tx, accountId);
    await auditChange(tx, actor, 'user.sessions_revoke', { type: 'user', id: accountId }, { ...revoked });
    return revoked;
  });
}
