// Where and when each sign-in session was last used: the device (user agent),
// the address and the time of its last authorization, recorded from
// oidc-provider's `authorization.success` event into `session_activity` (one
// row per Session uid). The account page and the admin's session lists read
// the live sessions (oidc_payloads) joined with it; oidc-provider's Session
// itself keeps none of this.
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../db/client.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import type { Logger } from '../logging/logger.ts';

const UA_MAX = 400;

export interface SessionInfo {
  /** the session's uid (stable for its life; never the cookie value) */
  uid: string;
  /** when the person signed in (epoch seconds) */
  loginAt: Date | null;
  expiresAt: Date | null;
  /** the applications signed in through it */
  clients: string[];
  /** acr of the sign-in */
  acr: string | null;
  amr: string[];
  userAgent: string | null;
  ip: string | null;
  lastUsedAt: Date | null;
}

interface Row {
  uid: string;
  login_ts: string | null;
  expires_at: Date | null;
  clients: string[] | null;
  acr: string | null;
  amr: string[] | null;
  user_agent: string | null;
  ip: string | null;
  last_seen_at: Date | null;
}

/** The person's live sessions, the most recently used first. */
export async function listSessions(db: DbOrTx, accountId: string): Promise<SessionInfo[]> {
  const rows = await db.$queryRaw<Row[]>`
    SELECT p.uid, p.payload->>'loginTs' AS login_ts, p.expires_at,
           ARRAY(SELECT jsonb_object_keys(coalesce(p.payload->'authorizations', '{}'::jsonb))) AS clients,
           p.payload->>'acr' AS acr,
           ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(p.payload->'amr') = 'array' THEN p.payload->'amr' ELSE '[]'::jsonb END)) AS amr,
           a.user_agent, a.ip, a.last_seen_at
    FROM oidc_payloads p LEFT JOIN session_activity a ON a.session_uid = p.uid
    WHERE p.model = 'Session' AND p.payload->>'accountId' = ${accountId} AND p.uid IS NOT NULL
      AND (p.expires_at IS NULL OR p.expires_at > now())
    ORDER BY coalesce(a.last_seen_at, to_timestamp((p.payload->>'loginTs')::double precision)) DESC NULLS LAST, p.uid`;
  return rows.map((r) => ({
    uid: r.uid,
    loginAt: r.login_ts && /^\d+$/.test(r.login_ts) ? new Date(Number(r.login_ts) * 1000) : null,
    expiresAt: r.expires_at,
    clients: r.clients ?? [],
    acr: r.acr,
    amr: r.amr ?? [],
    userAgent: r.user_agent,
    ip: r.ip,
    lastUsedAt: r.last_seen_at,
  }));
}

export async function recordSessionActivity(db: Db, s: { uid: string; accountId: string; userAgent?: string; ip?: string }): Promise<void> {
  const ua = s.userAgent ? s.userAgent.slice(0, UA_MAX) : null;
  await db.$executeRaw`
    INSERT INTO session_activity (session_uid, account_id, user_agent, ip, first_seen_at, last_seen_at)
    VALUES (${s.uid}, ${s.accountId}, ${ua}, ${s.ip ?? null}, now(), now())
    ON CONFLICT (session_uid) DO UPDATE SET user_agent = excluded.user_agent, ip = excluded.ip, last_seen_at = now(), account_id = excluded.account_id`;
}

/** Records every successful authorization's session use (errors are logged, never break the flow). */
export function listenForSessionActivity(provider: Provider, db: Db, logger: Logger): void {
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc?.session;
    if (!session?.accountId || !session.uid) return;
    void recordSessionActivity(db, { uid: session.uid, accountId: session.accountId, userAgent: ctx.get('user-agent') || undefined, ip: ctx.ip }).catch(
      (err: Error) => logger.warn({ err: { message: err.message } }, 'session activity not recorded'),
    );
  });
}

/** Cleanup step: activity of sessions that are gone (a day after their last use). */
export async function pruneSessionActivity(db: Db, batchSize: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM session_activity WHERE session_uid IN (
      SELECT a.session_uid FROM session_activity a
      WHERE a.last_seen_at < now() - interval '1 day'
        AND NOT EXISTS (SELECT 1 FROM oidc_payloads p WHERE p.model = 'Session' AND p.uid = a.session_uid)
      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}
