// Removes rows that have outlived their use, in small batches so that no
// statement holds many locks or runs long (after supabase/auth's cleanup):
//
// - oidc_payloads and revoked_tokens whose expires_at has passed;
// - login_throttles not updated for 24 hours and not locked;
// - signing_keys that were retired and whose publish_until has passed.
//
// Each batch is `DELETE … WHERE pk IN (SELECT pk … LIMIT n FOR UPDATE SKIP
// LOCKED)`: instances that run the job at the same moment delete disjoint rows
// and never wait on one another (nor on a request that holds a row lock).
import type { Db } from '../db/client.ts';

export interface CleanupOptions {
  /** rows per DELETE statement (default 500) */
  batchSize?: number;
  /** most statements per table per run (default 100); the next run continues */
  maxBatches?: number;
}

export interface CleanupResult {
  oidcPayloads: number;
  revokedTokens: number;
  loginThrottles: number;
  signingKeys: number;
}

type Table = keyof CleanupResult;

// One batch per table; `n` is the batch size. Kept as tagged templates so the
// only parameter is the (numeric) limit.
const batches: Record<Table, (db: Db, n: number) => Promise<number>> = {
  oidcPayloads: (db, n) => db.$executeRaw`
    DELETE FROM oidc_payloads WHERE (model, id) IN (
      SELECT model, id FROM oidc_payloads WHERE expires_at < now()
      LIMIT ${n} FOR UPDATE SKIP LOCKED)`,
  revokedTokens: (db, n) => db.$executeRaw`
    DELETE FROM revoked_tokens WHERE jti IN (
      SELECT jti FROM revoked_tokens WHERE expires_at < now()
      LIMIT ${n} FOR UPDATE SKIP LOCKED)`,
  loginThrottles: (db, n) => db.$executeRaw`
    DELETE FROM login_throttles WHERE key IN (
      SELECT key FROM login_throttles
      WHERE updated_at < now() - interval '24 hours' AND (locked_until IS NULL OR locked_until < now())
      LIMIT ${n} FOR UPDATE SKIP LOCKED)`,
  // retired_at guards the key that signs: it never has publish_until in the
  // past unless something else is wrong, and deleting it must never happen.
  signingKeys: (db, n) => db.$executeRaw`
    DELETE FROM signing_keys WHERE kid IN (
      SELECT kid FROM signing_keys
      WHERE publish_until < now() AND retired_at IS NOT NULL
      LIMIT ${n} FOR UPDATE SKIP LOCKED)`,
};

function positiveInt(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

/** Deletes expired rows; returns how many rows each table lost. */
export async function runCleanup(db: Db, opts: CleanupOptions = {}): Promise<CleanupResult> {
  const batchSize = positiveInt(opts.batchSize, 500, 'batchSize');
  const maxBatches = positiveInt(opts.maxBatches, 100, 'maxBatches');
  const result: CleanupResult = { oidcPayloads: 0, revokedTokens: 0, loginThrottles: 0, signingKeys: 0 };
  for (const table of Object.keys(batches) as Table[]) {
    for (let i = 0; i < maxBatches; i++) {
      const removed = await batches[table](db, batchSize);
      result[table] += removed;
      if (removed < batchSize) break;
    }
  }
  return result;
}

/** pino-compatible */
export interface CleanupLogger {
  info(obj: object, msg: string): void;
  warn?(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

export interface CleanupJobOptions extends CleanupOptions {
  /** pause between the end of one run and the start of the next */
  intervalSeconds: number;
  logger?: CleanupLogger;
  onResult?: (result: CleanupResult) => void;
}

export interface CleanupJob {
  /** No further run starts; resolves once a run in progress has finished. */
  stop(): Promise<void>;
}

/**
 * Runs runCleanup every `intervalSeconds`, first after a random delay of up to
 * min(intervalSeconds, 10) seconds so that instances started together do not
 * run in step. Runs never overlap (the next is scheduled when one ends), the
 * timer does not keep the process alive, and a failed run is logged, never
 * thrown.
 */
export function startCleanupJob(db: Db, opts: CleanupJobOptions): CleanupJob {
  const { intervalSeconds, logger, onResult } = opts;
  if (!(typeof intervalSeconds === 'number' && Number.isFinite(intervalSeconds) && intervalSeconds > 0)) {
    throw new RangeError('intervalSeconds must be a positive number');
  }
  const cleanupOpts: CleanupOptions = { batchSize: opts.batchSize, maxBatches: opts.maxBatches };
  positiveInt(cleanupOpts.batchSize, 1, 'batchSize');
  positiveInt(cleanupOpts.maxBatches, 1, 'maxBatches');

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const fail = (err: unknown): void => {
    const obj = { err };
    const msg = 'expired-row cleanup failed';
    try {
      if (logger?.error) logger.error(obj, msg);
      else if (logger?.warn) logger.warn(obj, msg);
      else if (logger) logger.info(obj, msg);
      else console.warn(`${msg}: ${err instanceof Error ? err.message : String(err)}`);
    } catch {
      // a throwing logger must not take the job down
    }
  };

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(tick, delayMs);
    timer.unref();
  };

  const run = async (): Promise<void> => {
    try {
      const result = await runCleanup(db, cleanupOpts);
      const total = result.oidcPayloads + result.revokedTokens + result.loginThrottles + result.signingKeys;
      if (total > 0) logger?.info({ removed: result }, 'expired rows removed');
      onResult?.(result);
    } catch (err) {
      fail(err);
    }
  };

  function tick(): void {
    timer = undefined;
    if (stopped) return;
    running = run().finally(() => {
      running = undefined;
      schedule(intervalSeconds * 1000);
    });
  }

  schedule(Math.random() * Math.min(intervalSeconds, 10) * 1000);

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
