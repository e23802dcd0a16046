// Refresh token rotation that survives a lost answer (issue 7).
//
// oidc-provider rotates a refresh token in three steps: mark it used
// (`consume`, i.e. consumed_at), store its successor, answer. An instance
// that dies (kill -9, OOM, power) after the first step and before the answer
// leaves the client holding a token the database says was used: presenting it
// again would be "reuse", which revokes the whole grant — the person is signed
// out of that app for no fault of theirs. So:
//
// - Delivery is recorded. When a refresh_token grant request rotated a token
//   and its 200 answer has been written out (`finish` of the Node response:
//   the bytes are with the kernel, which sends them even if the process is
//   killed next), one UPDATE sets the rotated token's `delivered_at`; when
//   the request ended without that (an error answer, or the client went away
//   first), `undelivered_at`. After the answer, off its latency; a failure is
//   logged, never thrown.
// - A rotated token whose answer was NOT delivered may be presented once more,
//   as a retry, within REFRESH_TOKEN_RETRY_SECONDS of its rotation (0: never),
//   unless a later token of its chain was already used (then the answer did
//   arrive: the client used its successor), and only once the rotating
//   request is over: it recorded `undelivered_at`, or the instance that
//   consumed the token (`consumed_by`) has no connection to the database any
//   more (it died; src/db/instance.ts). While the rotating instance lives and
//   its request has not ended, a second presentation is a race, not a retry:
//   reuse. The retry is claimed by one conditional UPDATE (`retried_at IS
//   NULL`), so of two concurrent retries exactly one wins; in the same
//   transaction the chain's unused later tokens (the successor nobody
//   received; none if the instance died before storing it) are deleted and
//   the retry is audited (`refresh_token.retry`). oidc-provider then rotates
//   as usual. The row is never made "unused" again: it stays consumed, so no
//   other request can see it as fresh; only the request that won the retry
//   proceeds as if it were.
// - Everything else is unchanged: a token whose rotation was delivered, a
//   second retry, a retry after the window, and the loser of two concurrent
//   retries are reuse: the token is destroyed, the grant revoked, and the
//   answer is `invalid_grant` ("refresh token already used"), as oidc-provider
//   does. Reuse is audited (`refresh_token.reuse`).
//
// Where the retry is decided: `RefreshToken.find` is wrapped, and only within
// a refresh_token grant request (oidc-provider's request context) does a used
// token come back looking unused, with a `consume()` that claims the retry.
// oidc-provider calls `consume()` exactly where it would otherwise have
// detected reuse: after client, DPoP/mTLS binding, grant and account checks.
// A request failing any of those checks therefore neither spends the retry nor
// revokes anything (as before). Introspection and revocation see the token as
// it is: used.
//
// Known limit: an instance whose database connections all dropped while it
// still serves (a network partition) looks dead, so a retry elsewhere may be
// granted while its rotation is in flight; the chain then keeps the retry's
// successor and the original's, until either is reused.
import type { Middleware } from 'koa';
import type pg from 'pg';
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { recordAudit } from '../audit/audit.ts';
import { instanceGoneSql } from '../db/instance.ts';
import { currentRequest, revokeGrant } from './internals.ts';
import type { Patch } from './seam.ts';
import type { Db } from '../db/client.ts';
import type { AdapterDatabase } from './adapter.ts';
import type { Logger } from '../logging/logger.ts';

export const RETRY_AUDIT_ACTION = 'refresh_token.retry';
export const REUSE_AUDIT_ACTION = 'refresh_token.reuse';

/** oidc-provider's error_detail when a used refresh token is presented */
const REUSE_DETAIL = 'refresh token already used';

export interface RefreshRotationOptions {
  /** the oidc adapter's database (adapterDatabase in adapter.ts) */
  db: AdapterDatabase;
  /** REFRESH_TOKEN_RETRY_SECONDS: 0 turns retries (and delivery records) off */
  retrySeconds: number;
  logger: Logger;
}

/** The fields and methods of oidc-provider's RefreshToken used here. */
interface RotatingToken {
  jti: string;
  clientId?: string;
  accountId?: string;
  grantId?: string;
  iiat?: number;
  rotations?: number;
  consumed?: unknown;
  consume(): Promise<void>;
  destroy(): Promise<void>;
  emit(event: string): void;
}

type Finder = (value: string, opts?: unknown) => Promise<RotatingToken | undefined>;

const installed = new WeakSet<Provider>();

/**
 * Delivery records of this process not yet committed, by token id: a retry
 * claim waits for the one of its token, so that a client presenting the old
 * token right after receiving its answer here is never taken for a retry.
 */
const pendingDeliveries = new Map<string, Promise<void>>();

/**
 * Called on every provider built (src/oidc/provider.ts): the audit of retries
 * and reuse (an event listener) and delivery records (a middleware of the
 * provider); returns the patch that offers the one retry of an undelivered
 * rotation (installed by seam.ts). With `retrySeconds` 0 only reuse is
 * audited, and nothing is patched.
 */
export function refreshRotation(provider: Provider, opts: RefreshRotationOptions): Patch[] {
  if (installed.has(provider)) throw new Error('refreshRotation: already set up for this provider');
  installed.add(provider);
  const { db, logger } = opts;

  provider.on('grant.error', (ctx: KoaContextWithOIDC, err: unknown) => {
    if ((err as { error_detail?: unknown }).error_detail !== REUSE_DETAIL) return;
    const token = ctx.oidc.entities.RefreshToken as RotatingToken | undefined;
    recordAudit(db.prisma, {
      action: REUSE_AUDIT_ACTION,
      actor: { type: 'client', id: token?.clientId ?? ctx.oidc.client?.clientId ?? null },
      target: { type: 'user', id: token?.accountId ?? null },
      requestId: requestIdOf(ctx),
      ip: ctx.ip,
      details: { grantId: token?.grantId ?? null, grantRevoked: true },
    }).catch((e: Error) => logger.warn({ err: { name: e.name, message: e.message } }, 'audit write failed'));
  });

  if (opts.retrySeconds <= 0) return [];
  provider.use(recordRefreshDelivery(db.pool, logger));

  return [
    {
      method: 'RefreshToken.find',
      why: 'a used refresh token whose rotation was never answered may be presented once more (within a refresh_token grant request only)',
      wrap: (original) => {
        const find = original as Finder;
        return async (value: string, findOpts?: unknown) => {
          const token = await find(value, findOpts);
          if (!token?.consumed) return token;
          const ctx = currentRequest();
          if (ctx?.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== 'refresh_token') return token;
          return retryCandidate(token, ctx, opts);
        };
      },
    },
  ];
}

/**
 * The used token, looking unused to oidc-provider's refresh_token grant, whose
 * `consume()` claims its one retry — or, when no retry is allowed, does what
 * oidc-provider does on reuse (destroy it, revoke the grant, invalid_grant).
 */
function retryCandidate(token: RotatingToken, ctx: KoaContextWithOIDC, opts: RefreshRotationOptions): RotatingToken {
  token.consumed = undefined;
  token.consume = async function consumeOrRetry(this: RotatingToken) {
    if (!(await claimRetry(opts.db.prisma, this, opts.retrySeconds, ctx))) {
      await Promise.all([this.destroy(), this.grantId ? revokeGrant(ctx, this.grantId) : undefined]);
      throw new errors.InvalidGrant(REUSE_DETAIL);
    }
    // the row stays consumed (consumption is one-way); oidc-provider's event as its consume() emits it
    this.emit('consumed');
  };
  return token;
}

/**
 * One transaction: claim the retry (the row must be used, undelivered, not
 * retried, used within the window, with no later token of its chain used),
 * delete the chain's unused later tokens, audit. True if this request won.
 */
async function claimRetry(db: Db, token: RotatingToken, retrySeconds: number, ctx: KoaContextWithOIDC): Promise<boolean> {
  const { jti, grantId, iiat } = token;
  if (typeof grantId !== 'string' || typeof iiat !== 'number') return false;
  await pendingDeliveries.get(jti);
  const rotations = typeof token.rotations === 'number' ? token.rotations : 0;
  return db.$transaction(async (tx) => {
    // "later in the chain": same grant, same first issue time, more rotations
    const won = await tx.$executeRaw`
      UPDATE oidc_payloads SET retried_at = now()
      WHERE model = 'RefreshToken' AND id = ${jti} AND grant_id = ${grantId}
        AND consumed_at IS NOT NULL AND delivered_at IS NULL AND retried_at IS NULL
        AND consumed_at > now() - make_interval(secs => ${retrySeconds}::float8)
        AND (undelivered_at IS NOT NULL OR consumed_by IS NULL OR ${instanceGoneSql('consumed_by')})
        AND (expires_at IS NULL OR expires_at > now())
        AND NOT EXISTS (
          SELECT 1 FROM oidc_payloads s
          WHERE s.model = 'RefreshToken' AND s.grant_id = ${grantId} AND s.id <> ${jti} AND s.consumed_at IS NOT NULL
            AND s.payload->'iiat' = to_jsonb(${iiat}::bigint)
            AND jsonb_typeof(s.payload->'rotations') = 'number' AND s.payload->'rotations' > to_jsonb(${rotations}::int))`;
    if (won === 0) return false;
    const removed = await tx.$executeRaw`
      DELETE FROM oidc_payloads s
      WHERE s.model = 'RefreshToken' AND s.grant_id = ${grantId} AND s.id <> ${jti} AND s.consumed_at IS NULL
        AND s.payload->'iiat' = to_jsonb(${iiat}::bigint)
        AND jsonb_typeof(s.payload->'rotations') = 'number' AND s.payload->'rotations' > to_jsonb(${rotations}::int)`;
    await recordAudit(tx, {
      action: RETRY_AUDIT_ACTION,
      actor: { type: 'client', id: token.clientId ?? null },
      target: { type: 'user', id: token.accountId ?? null },
      requestId: requestIdOf(ctx),
      ip: ctx.ip,
      // never the token itself (its jti is its value)
      details: { grantId, undeliveredRemoved: removed },
    });
    return true;
  });
}

/**
 * Koa middleware (installed inside each provider by refreshRotation):
 * once the request that rotated a refresh token has ended, records whether
 * its 200 answer was written out (`delivered_at`) or not (`undelivered_at`:
 * an error answer, or the client went away first), so that a retry can be
 * told from a race (see claimRetry).
 */
export function recordRefreshDelivery(pool: pg.Pool, logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      const oidc = (ctx as Partial<KoaContextWithOIDC>).oidc;
      const rotated = oidc?.entities.RotatedRefreshToken as RotatingToken | undefined;
      if (rotated && typeof rotated.jti === 'string') whenAnswered(ctx.res, rotated.jti, pool, ctx.state.requestId, logger);
    }
  };
}

function whenAnswered(res: import('node:http').ServerResponse, jti: string, pool: pg.Pool, reqId: unknown, logger: Logger): void {
  const record = (delivered: boolean) => {
    const recorded = markAnswered(pool, jti, delivered)
      .catch((err: Error) => logger.warn({ reqId, err: { name: err.name, message: err.message } }, 'refresh token delivery not recorded'))
      .finally(() => {
        if (pendingDeliveries.get(jti) === recorded) pendingDeliveries.delete(jti);
      });
    pendingDeliveries.set(jti, recorded);
  };
  if (res.writableFinished) return record(res.statusCode === 200);
  // 'finish': the whole answer is with the kernel; 'close' first: it never will be
  let settled = false;
  res.once('finish', () => {
    settled = true;
    record(res.statusCode === 200);
  });
  res.once('close', () => {
    if (!settled) record(false);
  });
}

/** One statement after every rotation: on the pool, like the adapter's own (no Prisma per call). */
async function markAnswered(pool: pg.Pool, jti: string, delivered: boolean): Promise<void> {
  await pool.query(
    delivered
      ? `UPDATE oidc_payloads SET delivered_at = now() WHERE model = 'RefreshToken' AND id = $1 AND delivered_at IS NULL`
      : // only a token that was used: a rotation that failed before it was written left the token unused (adapter.ts)
        `UPDATE oidc_payloads SET undelivered_at = now() WHERE model = 'RefreshToken' AND id = $1 AND consumed_at IS NOT NULL AND delivered_at IS NULL AND undelivered_at IS NULL`,
    [jti],
  );
}

function requestIdOf(ctx: KoaContextWithOIDC): string | null {
  const id: unknown = ctx.state.requestId;
  return typeof id === 'string' ? id : null;
}
