// Ending a person's access: sign them out everywhere, and tell the apps.
//
// endAccountSessions deletes, in one statement, every oidc-provider record of
// the account: its sessions (on every device), its grants and everything
// issued under them (authorization codes, refresh tokens, opaque access
// tokens, the rows that keep grant-bound JWT access tokens standing — also
// those token exchange minted from them), and its pending interactions. The
// next request with an old session cookie finds no session (prompt=none →
// login_required), refresh tokens are refused (invalid_grant), and every
// JWT access token of those grants stops standing at introspection, token
// exchange and the admin API (introspection.ts tokenStanding).
//
// Then each app the person was signed in to through those sessions, and
// that registered a back-channel logout URI, gets an OpenID Connect
// Back-Channel Logout token (sub + sid), sent by oidc-provider's own
// Client#backchannelLogout (signed with the current keys, through the
// provider's outbound fetch). Used by `users revoke-sessions`, `disable` and
// `delete`, from the CLI and the admin API.
//
// The payload's `accountId` is not indexed: this scans oidc_payloads, which
// is fine for an occasional administrator action.
import type Provider from 'oidc-provider';
import { getAccount, isAccountId, type AccountPatch, type AccountView } from '../accounts/store.ts';
import { deleteAccountAs, updateAccountAs } from '../accounts/writes.ts';
import { auditChange } from '../audit/audit.ts';
import type { Actor, WriteOptions } from '../kernel/actor.ts';
import { NotFoundError } from '../kernel/errors.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';

/** One app to tell that the person's session `sid` ended. */
export interface LogoutNotice {
  clientId: string;
  accountId: string;
  sid: string;
}

export interface LogoutDelivery {
  clientId: string;
  delivered: boolean;
  /** why not (never a token) */
  error?: string;
}

export interface EndedSessions {
  sessions: number;
  grants: number;
  /** every row deleted (sessions, grants, tokens, codes, interactions) */
  records: number;
  /** back-channel logout notices, one per (app, session) with a back-channel logout URI */
  backchannel: LogoutDelivery[];
}

/** oidc-provider's Client#backchannelLogout (not in its type declarations). */
interface BackchannelClient {
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

/** Sends back-channel logout notices (with the provider serving now, or one built for the CLI). */
export type BackchannelSender = (notices: LogoutNotice[]) => Promise<LogoutDelivery[]>;

interface DeletedRow {
  model: string;
  authorizations: Record<string, { sid?: unknown }> | null;
}

/** What ending the sessions deleted, and whom to tell once that has committed. */
export interface EndedRecords {
  sessions: number;
  grants: number;
  records: number;
  notices: LogoutNotice[];
}

/**
 * Deletes every oidc-provider record of the person (in the caller's
 * transaction, when given one). Back-channel logout is sent by
 * notifyApps() after the commit: never from inside a transaction.
 */
export async function endAccountSessionRecords(db: DbOrTx, accountId: string): Promise<EndedRecords> {
  if (typeof accountId !== 'string' || !isAccountId(accountId)) return { sessions: 0, grants: 0, records: 0, notices: [] };
  const rows = await db.$queryRaw<DeletedRow[]>`
    WITH grants AS (
      SELECT id FROM oidc_payloads WHERE model = 'Grant' AND payload->>'accountId' = ${accountId}
    )
    DELETE FROM oidc_payloads
    WHERE payload->>'accountId' = ${accountId}
       OR grant_id IN (SELECT id FROM grants)
    RETURNING model, CASE WHEN model = 'Session' THEN payload->'authorizations' END AS authorizations`;
  const notices: LogoutNotice[] = [];
  for (const row of rows) {
    if (row.model !== 'Session' || !row.authorizations || typeof row.authorizations !== 'object') continue;
    for (const [clientId, authorization] of Object.entries(row.authorizations)) {
      if (typeof authorization?.sid === 'string') notices.push({ clientId, accountId, sid: authorization.sid });
    }
  }
  const count = (m: string) => rows.filter((r) => r.model === m).length;
  return { sessions: count('Session'), grants: count('Grant'), records: rows.length, notices };
}

/** Sends the back-channel logout notices of ended sessions (after their commit). */
export async function notifyApps(ended: EndedRecords, send?: BackchannelSender): Promise<EndedSessions> {
  const { notices, ...counts } = ended;
  return { ...counts, backchannel: send && notices.length > 0 ? await send(notices) : [] };
}

/** Signs the person out everywhere now and tells the apps (no audit: for flows that record their own event). */
export async function endAccountSessions(db: DbOrTx, accountId: string, send?: BackchannelSender): Promise<EndedSessions> {
  return notifyApps(await endAccountSessionRecords(db, accountId), send);
}

const counted = ({ notices: _notices, ...counts }: EndedRecords) => counts;

/** The write function of `users revoke-sessions`: ends the sessions and records it in one transaction, then tells the apps. */
export async function revokeSessionsAs(db: DbOrTx, actor: Actor, accountId: string, send?: BackchannelSender): Promise<EndedSessions> {
  const ended = await inTransaction(db, async (tx) => {
    await getAccount(tx, accountId); // NotFoundError for an unknown person
    const records = await endAccountSessionRecords(tx, accountId);
    await auditChange(tx, actor, 'user.sessions_revoke', { type: 'user', id: accountId }, counted(records));
    return records;
  });
  return notifyApps(ended, send);
}

/**
 * Changes a person (accounts/writes.ts updateAccountAs); disabling them also
 * ends their sessions and grants in the same transaction, and tells the apps.
 */
export async function updatePersonAs(
  db: DbOrTx,
  actor: Actor,
  id: string,
  patch: AccountPatch,
  opts: WriteOptions & { expectedVersion?: number } = {},
  send?: BackchannelSender,
): Promise<{ account: AccountView; revoked?: EndedSessions }> {
  const { account, ended } = await inTransaction(db, async (tx) => {
    const wasDisabled = (await getAccount(tx, id)).disabled;
    const account = await updateAccountAs(tx, actor, id, patch, opts);
    const ended = account.disabled && !wasDisabled ? await endAccountSessionRecords(tx, id) : undefined;
    return { account, ended };
  });
  return ended ? { account, revoked: await notifyApps(ended, send) } : { account };
}

/** Deletes a person with their sessions and grants, in one transaction, then tells the apps. */
export async function deletePersonAs(
  db: DbOrTx,
  actor: Actor,
  id: string,
  opts: WriteOptions = {},
  send?: BackchannelSender,
): Promise<{ account: AccountView; revoked: EndedSessions }> {
  const { account, ended } = await inTransaction(db, async (tx) => {
    const ended = await endAccountSessionRecords(tx, id);
    const account = await deleteAccountAs(tx, actor, id, { ...opts, details: { revoked: counted(ended) } });
    return { account, ended };
  });
  return { account, revoked: await notifyApps(ended, send) };
}

/**
 * Back-channel logout through `provider`: only apps that registered a
 * back-channel logout URI are told; a failure is reported, never thrown
 * (the sessions have ended whatever the app answers), and emitted as
 * oidc-provider's backchannel.error event, which is logged.
 */
export function backchannelSender(provider: () => Provider | Promise<Provider>): BackchannelSender {
  return async (notices) => {
    const p = await provider();
    const results = await Promise.all(
      notices.map(async ({ clientId, accountId, sid }): Promise<LogoutDelivery | undefined> => {
        const client = (await p.Client.find(clientId).catch(() => undefined)) as BackchannelClient | undefined;
        if (!client?.backchannelLogoutUri) return undefined;
        try {
          await client.backchannelLogout(accountId, sid);
          p.emit('backchannel.success', undefined, client, accountId, sid);
          return { clientId, delivered: true };
        } catch (err) {
          p.emit('backchannel.error', undefined, err, client, accountId, sid);
          return { clientId, delivered: false, error: (err as Error).message };
        }
      }),
    );
    return results.filter((r): r is LogoutDelivery => r !== undefined);
  };
}

// ------------------------------------------------- one session, one grant

/**
 * Deletes one session of the person (by its uid), the grants it holds for its
 * applications and everything issued under them; its activity row goes too.
 * Nothing when the session is not theirs.
 */
export async function endSessionRecords(db: DbOrTx, accountId: string, sessionUid: string): Promise<EndedRecords> {
  if (!isAccountId(accountId) || typeof sessionUid !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(sessionUid)) return { sessions: 0, grants: 0, records: 0, notices: [] };
  const rows = await db.$queryRaw<DeletedRow[]>`
    WITH s AS (
      SELECT id, payload FROM oidc_payloads WHERE model = 'Session' AND uid = ${sessionUid} AND payload->>'accountId' = ${accountId}
    ), grants AS (
      SELECT a.value->>'grantId' AS id FROM s, jsonb_each(coalesce(s.payload->'authorizations', '{}'::jsonb)) AS a
      WHERE a.value->>'grantId' IS NOT NULL
    )
    DELETE FROM oidc_payloads
    WHERE (model = 'Session' AND id IN (SELECT id FROM s))
       OR (model = 'Grant' AND id IN (SELECT id FROM grants) AND payload->>'accountId' = ${accountId})
       OR grant_id IN (SELECT id FROM grants)
    RETURNING model, CASE WHEN model = 'Session' THEN payload->'authorizations' END AS authorizations`;
  await db.$executeRaw`DELETE FROM session_activity WHERE session_uid = ${sessionUid} AND account_id = ${accountId}`;
  const notices: LogoutNotice[] = [];
  for (const row of rows) {
    if (row.model !== 'Session' || !row.authorizations || typeof row.authorizations !== 'object') continue;
    for (const [clientId, authorization] of Object.entries(row.authorizations)) {
      if (typeof authorization?.sid === 'string') notices.push({ clientId, accountId, sid: authorization.sid });
    }
  }
  const count = (m: string) => rows.filter((r) => r.model === m).length;
  return { sessions: count('Session'), grants: count('Grant'), records: rows.length, notices };
}

/** Ends one session of the person (NotFoundError if it is not a live session of theirs), audited, then tells the apps. */
export async function endSessionAs(db: DbOrTx, actor: Actor, accountId: string, sessionUid: string, send?: BackchannelSender): Promise<EndedSessions> {
  const ended = await inTransaction(db, async (tx) => {
    await getAccount(tx, accountId);
    const records = await endSessionRecords(tx, accountId, sessionUid);
    if (records.sessions === 0) throw new NotFoundError('session', sessionUid, 'no such session of this person');
    await auditChange(tx, actor, 'user.session_end', { type: 'user', id: accountId }, { session: sessionUid, ...counted(records) });
    return records;
  });
  return notifyApps(ended, send);
}

export interface GrantInfo {
  id: string;
  clientId: string;
  /** OpenID scopes granted (openid, profile, email, offline_access …) */
  scopes: string[];
  /** API scopes granted, per resource indicator */
  resources: Record<string, string[]>;
  createdAt: Date | null;
  expiresAt: Date | null;
}

interface GrantRow {
  id: string;
  client_id: string | null;
  scope: string | null;
  resources: Record<string, unknown> | null;
  iat: string | null;
  expires_at: Date | null;
}

const words = (s: unknown) => (typeof s === 'string' ? s.split(' ').filter(Boolean) : []);

/** The person's live grants (the applications they gave access to), newest first. */
export async function listGrants(db: DbOrTx, accountId: string): Promise<GrantInfo[]> {
  if (!isAccountId(accountId)) return [];
  const rows = await db.$queryRaw<GrantRow[]>`
    SELECT id, payload->>'clientId' AS client_id, payload->'openid'->>'scope' AS scope, payload->'resources' AS resources,
           payload->>'iat' AS iat, expires_at
    FROM oidc_payloads
    WHERE model = 'Grant' AND payload->>'accountId' = ${accountId} AND (expires_at IS NULL OR expires_at > now())
    ORDER BY (payload->>'iat') DESC NULLS LAST, id`;
  return rows.map((r) => ({
    id: r.id,
    clientId: r.client_id ?? '',
    scopes: words(r.scope),
    resources: Object.fromEntries(Object.entries(r.resources ?? {}).map(([k, v]) => [k, words(v)])),
    createdAt: r.iat && /^\d+$/.test(r.iat) ? new Date(Number(r.iat) * 1000) : null,
    expiresAt: r.expires_at,
  }));
}

/**
 * Revokes one of the person's grants: the grant and everything issued under
 * it (refresh tokens, codes, the rows that keep its JWT access tokens
 * standing) are deleted, so its refresh tokens are refused and its access
 * tokens stop standing at introspection. Audited.
 */
export async function revokeGrantAs(db: DbOrTx, actor: Actor, accountId: string, grantId: string): Promise<{ clientId: string; records: number }> {
  return inTransaction(db, async (tx) => {
    await getAccount(tx, accountId);
    if (typeof grantId !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(grantId)) throw new NotFoundError('grant', String(grantId), 'no such grant of this person');
    const [grant] = await tx.$queryRaw<{ client_id: string | null }[]>`
      SELECT payload->>'clientId' AS client_id FROM oidc_payloads WHERE model = 'Grant' AND id = ${grantId} AND payload->>'accountId' = ${accountId}`;
    if (!grant) throw new NotFoundError('grant', grantId, 'no such grant of this person');
    const records = await tx.$executeRaw`
      DELETE FROM oidc_payloads WHERE (model = 'Grant' AND id = ${grantId}) OR grant_id = ${grantId}`;
    const clientId = grant.client_id ?? '';
    await auditChange(tx, actor, 'user.grant_revoke', { type: 'user', id: accountId }, { grant: grantId, client: clientId, records });
    return { clientId, records };
  });
}
