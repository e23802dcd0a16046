// WORKERS=2: two HTTP workers under one primary. Metrics are aggregated over
// both, a worker that dies is replaced, and SIGTERM stops everything.
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/env.ts';
import { baseEnv, freePort, isAlive, killAll, portOpen, spawnGatehouse, until } from './process.ts';

/** The primary's worker processes (not tsx's esbuild helper). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes('main.ts serve'))
      .map((l) => Number(l.trim().split(/\s+/)[0]))
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

function counter(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('gatehouse serve with WORKERS=2', () => {
  let db: TestDatabase;
  afterEach(killAll);
  afterAll(async () => {
    await db?.drop();
  });

  it('aggregates metrics over both workers, replaces a dead worker, and stops cleanly', async () => {
    db = await createTestDatabase();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const proc = spawnGatehouse(['serve'], baseEnv({ ...testEnv(db.url), LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1', WORKERS: '2' }));
    await proc.waitForStdout(/^Gatehouse is running/);
    await until('two workers', () => childrenOf(proc.pid).length === 2, 30_000);
    const workers = childrenOf(proc.pid);

    // Each request may land on either worker; the count must cover both.
    const n = 20;
    for (let i = 0; i < n; i++) await fetch(`${base}/healthz`, { headers: { connection: 'close' } });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(counter(text, 'gatehouse_http_requests_total{method="GET",route="/healthz",status="200"}')).toBe(n);

    // A worker that dies is replaced; the service keeps answering.
    process.kill(workers[0]!, 'SIGKILL');
    await until('a replacement worker', () => {
      const now = childrenOf(proc.pid);
      return now.length === 2 && !now.includes(workers[0]!);
    }, 30_000);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    // SIGTERM to the primary stops every worker and frees the port.
    const all = childrenOf(proc.pid);
    process.kill(proc.pid, 'SIGTERM');
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    for (const w of all) expect(isAlive(w)).toBe(false);
    expect(await portOpen(port)).toBe(false);
  }, 120_000);
});
