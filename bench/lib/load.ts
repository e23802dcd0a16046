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
  warmupSec: number;
}

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
}

export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1') throw new Error(`refusing to send load to ${host}: the bench only targets 127.0.0.1`);
}

async function once(baseUrl: string, req: LoadRequest, connections: number, durationSec: number): Promise<Result> {
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
  return await instance;
}

function fromAutocannon(r: Result): LoadResult {
  return {
    perSec: r.requests.average,
    total: r.requests.total,
    durationSec: r.duration,
    latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.mean },
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, v]) => [code, v.count])),
  };
}

/** Autocannon: warm-up (thrown away), then `beforeMeasure()` and the measured run. */
export async function runLoad(baseUrl: string, req: LoadRequest, s: LoadSettings, beforeMeasure?: () => void): Promise<LoadResult> {
  if (s.warmupSec > 0) await once(baseUrl, req, s.connections, s.warmupSec);
  beforeMeasure?.();
  return fromAutocannon(await once(baseUrl, req, s.connections, s.durationSec));
}

/** A measured autocannon run without warm-up (soak intervals). */
export async function runLoadOnce(baseUrl: string, req: LoadRequest, connections: number, durationSec: number): Promise<LoadResult> {
  return fromAutocannon(await once(baseUrl, req, connections, durationSec));
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
export async function runLoop(iteration: Iteration, s: LoadSettings, beforeMeasure?: () => void): Promise<LoadResult> {
  if (s.warmupSec > 0) await loopFor(iteration, s.connections, s.warmupSec);
  beforeMeasure?.();
  return loopFor(iteration, s.connections, s.durationSec);
}
