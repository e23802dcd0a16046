// The expired-row cleanup job: runs a list of named steps in small batches so
// that no statement holds many locks or runs long (after supabase/auth's
// cleanup).
//
// The runner knows no table. Each domain exports its own step(s), a plain
// `(db, batchSize) => Promise<number>` that deletes at most batchSize rows of
// its own tables, as `DELETE … WHERE pk IN (SELECT pk … LIMIT n FOR UPDATE
// SKIP LOCKED)`: instances that run the job at the same moment delete
// disjoint rows and never wait on one another (nor on a request that holds a
// row lock). The composition root (src/app.ts) names the steps and hands them
// here.
//
// It lives in db/ rather than in a domain because, like the change feed next
// to it, it is shared plumbing every domain may plug into and which owns no
// table itself; a domain hosting it would own the schedule of the others.
import type { Db } from './client.ts';

/** Deletes at most `batchSize` rows that are no longer needed; returns how many went. */
export type CleanupBatch = (db: Db, batchSize: number) => Promise<number>;

export interface CleanupStep<N extends string = string> {
  /** reported in the result, the job's log line and the metrics (`table` label) */
  name: N;
  batch: CleanupBatch;
}

export interface CleanupOptions {
  /** rows per DELETE statement (default 500) */
  batchSize?: number;
  /** most statements per step per run (default 100); the next run continues */
  maxBatches?: number;
}

/** Rows each step removed, by step name, in step order. */
export type CleanupResult<N extends string = string> = Record<N, number>;

function positiveInt(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

function checkSteps(steps: readonly CleanupStep[]): void {
  const seen = new Set<string>();
  for (const s of steps) {
    if (seen.has(s.name)) throw new RangeError(`cleanup step ${s.name} is listed twice`);
    seen.add(s.name);
  }
}

/**
 * Runs each step in turn, batch after batch, until a batch comes back short
 * or maxBatches batches ran; returns how many rows each step removed.
 */
export async function runCleanup<N extends string>(
  db: Db,
  steps: readonly CleanupStep<N>[],
  opts: CleanupOptions = {},
): Promise<CleanupResult<N>> {
  const batchSize = positiveInt(opts.batchSize, 500, 'batchSize');
  const maxBatches = positiveInt(opts.maxBatches, 100, 'maxBatches');
  checkSteps(steps);
  const result = {} as CleanupResult<N>;
  for (const step of steps) {
    let removed = 0;
    for (let i = 0; i < maxBatches; i++) {
      const n = await step.batch(db, batchSize);
      removed += n;
      if (n < batchSize) break;
    }
    result[step.name] = removed;
  }
  return result;
}

/** pino-compatible */
export interface CleanupLogger {
  info(obj: object, msg: string): void;
  warn?(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

export interface CleanupJobOptions<N extends string = string> extends CleanupOptions {
  /** pause between the end of one run and the start of the next */
  intervalSeconds: number;
  logger?: CleanupLogger;
  onResult?: (result: CleanupResult<N>) => void;
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
export function startCleanupJob<N extends string>(db: Db, steps: readonly CleanupStep<N>[], opts: CleanupJobOptions<N>): CleanupJob {
  const { intervalSeconds, logger, onResult } = opts;
  if (!(typeof intervalSeconds === 'number' && Number.isFinite(intervalSeconds) && intervalSeconds > 0)) {
    throw new RangeError('intervalSeconds must be a positive number');
  }
  const cleanupOpts: CleanupOptions = { batchSize: opts.batchSize, maxBatches: opts.maxBatches };
  positiveInt(cleanupOpts.batchSize, 1, 'batchSize');
  positiveInt(cleanupOpts.maxBatches, 1, 'maxBatches');
  checkSteps(steps);

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
      const result = await runCleanup(db, steps, cleanupOpts);
      const total = Object.values<number>(result).reduce((sum, n) => sum + n, 0);
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
