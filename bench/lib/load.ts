// Bounded load runs, loopback only. Two kinds:
//   runLoad  one fixed request repeated by autocannon (warm-up thrown away, then the measured run);
//   runLoop  a custom async iteration (a refresh rotation, a whole login flow …) repeated by
//            `connections` concurrent loops, with the same statistics (latency of successful
//            iterations from a sorted array, errors, iterations/s).
import autocannon, { type Result } from 'autocannon';
import type { LoadRequest } from './types.ts';

export interface LoadSettings {
  connections: number;
  durationSec: number;
  /** warm-up: at least this long … */
  warmupSec: number;
  /**
   * … and, for autocannon runs, on until the rate is steady (the last
   * STEADY_SECONDS per-second counts within STEADY_SPREAD of each other) or
   * this long. Equal to warmupSec: a fixed warm-up.
   */
  warmupMaxSec: number;
}

/** a warm-up has ended when this many consecutive seconds … */
export const STEADY_SECONDS = 3;
/** … differ by at most this factor (highest ÷ lowest) */
export const STEADY_SPREAD = 1.1;

/** What a measured run yields, whichever generator produced it. */
export interface LoadResult {
  /** average per second over the measured run */
  perSec: number;
  total: number;
  durationSec: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** first error messages of a custom loop */
  errorSamples?: string[];
  /** responses in each second of the measured run (autocannon runs) */
  perSecond?: number[];
  /** how long the warm-up ran (s), and its responses per second (autocannon runs) */
  warmup?: { sec: number; steady: boolean; perSecond: number[] };
}

export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1') throw new Error(`refusing to send load to ${host}: the bench only targets 127.0.0.1`);
}

function start(baseUrl: string, req: LoadRequest, connections: number, durationSec: number) {
  const url = `${baseUrl}${req.path}`;
  assertLoopback(url);
  const instance = autocannon({
    url,
    connections,
    duration: durationSec,
    method: req.method,
    headers: req.headers ?? {},
    ...(req.body !== undefined && { body: req.body }),
    timeout: 10,
  });
  const perSecond: number[] = [];
  instance.on('tick', (t) => perSecond.push((t as { counter: number }).counter));
  return { instance, perSecond };
}

async function once(baseUrl: string, req: LoadRequest, connections: number, durationSec: number): Promise<{ result: Result; perSecond: number[] }> {
  const { instance, perSecond } = start(baseUrl, req, connections, durationSec);
  const result = await instance;
  // the last tick comes with the end of the run: a partial second
  return { result, perSecond: perSecond.slice(0, Math.floor(result.duration)) };
}

export function isSteady(perSecond: readonly number[]): boolean {
  if (perSecond.length < STEADY_SECONDS) return false;
  const last = perSecond.slice(-STEADY_SECONDS);
  const lo = Math.min(...last);
  return lo > 0 && Math.max(...last) <= lo * STEADY_SPREAD;
}

/** Load until `minSec` have passed and the rate is steady, or `maxSec` have passed. */
async function warmUp(baseUrl: string, req: LoadRequest, connections: number, minSec: number, maxSec: number): Promise<NonNullable<LoadResult['warmup']>> {
  const { instance, perSecond } = start(baseUrl, req, connections, Math.max(minSec, maxSec));
  let steady = false;
  instance.on('tick', () => {
    if (steady || perSecond.length < minSec || !isSteady(perSecond)) return;
    steady = true;
    instance.stop();
  });
  const result = await instance;
  const whole = perSecond.slice(0, Math.floor(result.duration));
  return { sec: result.duration, steady: steady || isSteady(whole), perSecond: whole };
}

function fromAutocannon(r: Result, perSecond: number[]): LoadResult {
  return {
    perSec: r.requests.average,
    total: r.requests.total,
    durationSec: r.duration,
    latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.mean },
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, v]) => [code, v.count])),
    perSecond,
  };
}

/** Autocannon: warm-up until steady (thrown away), then `beforeMeasure()` and the measured run. */
export async function runLoad(baseUrl: string, req: LoadRequest, s: LoadSettings, beforeMeasure?: () => void | Promise<void>): Promise<LoadResult> {
  const warmup = s.warmupMaxSec > 0 ? await warmUp(baseUrl, req, s.connections, s.warmupSec, s.warmupMaxSec) : undefined;
  await beforeMeasure?.();
  const { result, perSecond } = await once(baseUrl, req, s.connections, s.durationSec);
  return { ...fromAutocannon(result, perSecond), ...(warmup && { warmup }) };
}

/** A measured autocannon run without warm-up (soak intervals). */
export async function runLoadOnce(baseUrl: string, req: LoadRequest, connections: number, durationSec: number): Promise<LoadResult> {
  const { result, perSecond } = await once(baseUrl, req, connections, durationSec);
  return fromAutocannon(result, perSecond);
}

/**
 * One iteration of a custom loop, run by virtual user `vu` (0 … connections-1;
 * iterations of one vu never overlap). Resolves on success; a thrown error
 * counts as an error (its `status`, if any, goes to the status-code counts).
 */
export type Iteration = (vu: number) => Promise<void>;

export class IterationError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const pct = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
const r1 = (x: number) => Math.round(x * 10) / 10;

async function loopFor(iteration: Iteration, connections: number, durationSec: number): Promise<LoadResult> {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  let non2xx = 0;
  let timeouts = 0;
  const t0 = performance.now();
  const end = t0 + durationSec * 1000;
  const vu = async (i: number) => {
    while (performance.now() < end) {
      const s = performance.now();
      try {
        await iteration(i);
        latencies.push(performance.now() - s);
      } catch (err) {
        const status = err instanceof IterationError ? err.status : undefined;
        if (status !== undefined) {
          non2xx++;
          statusCodes[status] = (statusCodes[status] ?? 0) + 1;
        } else {
          errors++;
          if ((err as Error).name === 'TimeoutError') timeouts++;
        }
        if (errorSamples.length < 5) errorSamples.push((err as Error).message.slice(0, 200));
        // do not spin on a broken server
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, i) => vu(i)));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    perSec: latencies.length / elapsed,
    total: latencies.length,
    durationSec: r1(elapsed),
    latency: {
      p50: r1(pct(latencies, 50)),
      p90: r1(pct(latencies, 90)),
      p99: r1(pct(latencies, 99)),
      max: r1(latencies.at(-1) ?? 0),
      mean: r1(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)),
    },
    non2xx,
    errors,
    timeouts,
    statusCodes,
    errorSamples,
  };
}

/** Custom loop: warm-up (thrown away), then `beforeMeasure()` and the measured run. */
export async function runLoop(iteration: Iteration, s: LoadSettings, beforeMeasure?: () => void | Promise<void>): Promise<LoadResult> {
  if (s.warmupSec > 0) await loopFor(iteration, s.connections, s.warmupSec);
  await beforeMeasure?.();
  return loopFor(iteration, s.connections, s.durationSec);
}
