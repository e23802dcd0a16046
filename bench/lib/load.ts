// One bounded load run with autocannon: a warm-up that is thrown away, then
// the measured run. Loopback only.
import autocannon, { type Result } from 'autocannon';
import type { LoadRequest } from './types.ts';

export interface LoadSettings {
  connections: number;
  durationSec: number;
  warmupSec: number;
}

function assertLoopback(url: string): void {
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

/** Warm-up (thrown away), then `beforeMeasure()` and the measured run. */
export async function runLoad(baseUrl: string, req: LoadRequest, s: LoadSettings, beforeMeasure?: () => void): Promise<Result> {
  if (s.warmupSec > 0) await once(baseUrl, req, s.connections, s.warmupSec);
  beforeMeasure?.();
  return once(baseUrl, req, s.connections, s.durationSec);
}
