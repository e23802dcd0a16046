// Soak mode (BENCH_SOAK=<seconds>): client_credentials RS256 on Gatehouse at
// BENCH_CONNECTIONS for that long, in back-to-back 10 s autocannon runs; after
// each one the server's RSS (per process: primary and each worker) and the
// interval's latency are sampled. Prints every interval, first/last/max RSS
// and p99, and a drift verdict (mean RSS of the last half vs the first half),
// and writes bench/results/soak-<date>-<sha>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runLoadOnce } from './lib/load.ts';
import { clientCredentialsRequest, sampleAccessToken } from './lib/oauth.ts';
import type { BenchContext } from './lib/types.ts';
import { startTarget } from './targets.ts';

const INTERVAL_SEC = 10;
/** RSS growth (last half vs first half) above both of these counts as upward drift */
const DRIFT_PCT = 5;
const DRIFT_MB = 5;

export interface SoakOptions {
  seconds: number;
  connections: number;
  workers: number;
  resultsDir: string;
  stamp: string;
  sha: string;
  command: string;
}

interface Interval {
  index: number;
  /** seconds since the soak started, at the end of the interval */
  atSec: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  rssMb: { pid: number; role: string; mb: number }[];
  rssTotalMb: number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export async function runSoak(ctx: BenchContext, o: SoakOptions): Promise<void> {
  ctx.log(`soak: starting gatehouse (WORKERS=${o.workers})`);
  const t = await startTarget('gatehouse', ctx);
  const request = await clientCredentialsRequest(t, 'RS256');
  await sampleAccessToken(t, request, 'RS256');
  ctx.log(`soak: ${o.seconds} s of client_credentials RS256 × ${o.connections} connections, sampled every ${INTERVAL_SEC} s (after a ${INTERVAL_SEC} s warm-up)`);
  await runLoadOnce(t.url, request, o.connections, INTERVAL_SEC);

  const intervals: Interval[] = [];
  const t0 = Date.now();
  let left = o.seconds;
  const out: string[] = [];
  const header = `${'interval'.padEnd(8)}  ${'t s'.padStart(5)}  ${'req/s'.padStart(7)}  ${'p50 ms'.padStart(6)}  ${'p99 ms'.padStart(6)}  ${'errors'.padStart(6)}  RSS MB (per process)`;
  process.stderr.write(`${header}\n`);
  while (left > 0) {
    const sec = Math.min(INTERVAL_SEC, left);
    left -= sec;
    const r = await runLoadOnce(t.url, request, o.connections, sec);
    t.assertAlive();
    const rss = t.rss().map((p) => ({ pid: p.pid, role: p.role, mb: r1(p.rssKb / 1024) }));
    const iv: Interval = {
      index: intervals.length + 1,
      atSec: Math.round((Date.now() - t0) / 1000),
      reqPerSec: Math.round(r.perSec),
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.non2xx + r.errors,
      rssMb: rss,
      rssTotalMb: r1(rss.reduce((a, p) => a + p.mb, 0)),
    };
    intervals.push(iv);
    const line = `${String(iv.index).padEnd(8)}  ${String(iv.atSec).padStart(5)}  ${String(iv.reqPerSec).padStart(7)}  ${String(iv.p50).padStart(6)}  ${String(iv.p99).padStart(6)}  ${String(iv.errors).padStart(6)}  ${rss.map((p) => `${p.role === 'gatehouse' ? 'primary' : 'worker'} ${p.mb}`).join(', ')}`;
    process.stderr.write(`${line}\n`);
    out.push(line);
  }

  // Summary: per process role position (primary, worker 1, worker 2 …) and in total.
  const half = Math.floor(intervals.length / 2);
  const firstHalf = intervals.slice(0, Math.max(1, half));
  const lastHalf = intervals.slice(intervals.length - Math.max(1, half));
  const series = (pick: (iv: Interval) => number) => {
    const xs = intervals.map(pick);
    return { first: xs[0] ?? 0, last: xs.at(-1) ?? 0, max: Math.max(...xs), firstHalfMean: r1(mean(firstHalf.map(pick))), lastHalfMean: r1(mean(lastHalf.map(pick))) };
  };
  const processes = intervals[0]?.rssMb.length ?? 0;
  const perProcess = Array.from({ length: processes }, (_, i) => ({ role: intervals[0]!.rssMb[i]!.role, ...series((iv) => iv.rssMb[i]?.mb ?? 0) }));
  const total = series((iv) => iv.rssTotalMb);
  const p99 = series((iv) => iv.p99);
  const growthMb = r1(total.lastHalfMean - total.firstHalfMean);
  const growthPct = total.firstHalfMean > 0 ? r1((growthMb / total.firstHalfMean) * 100) : 0;
  const drift = growthMb > DRIFT_MB && growthPct > DRIFT_PCT;
  const verdict = drift
    ? `UPWARD DRIFT: RSS mean of the last half is ${growthMb} MB (${growthPct}%) above the first half`
    : `no upward drift: RSS mean of the last half vs first half ${growthMb >= 0 ? '+' : ''}${growthMb} MB (${growthPct >= 0 ? '+' : ''}${growthPct}%; drift means > ${DRIFT_MB} MB and > ${DRIFT_PCT}%)`;
  const maxWorker = Math.max(0, ...perProcess.filter((p) => p.role !== 'gatehouse' || processes === 1).map((p) => p.max));
  const errors = intervals.reduce((a, iv) => a + iv.errors, 0);

  const summary = [
    '',
    `Soak: client_credentials RS256, ${o.connections} connections, ${o.seconds} s in ${intervals.length} intervals of ≤ ${INTERVAL_SEC} s, Gatehouse WORKERS=${o.workers}`,
    header,
    ...out,
    '',
    ...perProcess.map((p) => `RSS ${p.role === 'gatehouse' ? 'primary' : p.role} MB: first ${p.first}, last ${p.last}, max ${p.max}`),
    `RSS total MB: first ${total.first}, last ${total.last}, max ${total.max}; mean first half ${total.firstHalfMean}, last half ${total.lastHalfMean}`,
    `p99 ms per interval: first ${p99.first}, last ${p99.last}, max ${p99.max}; mean first half ${p99.firstHalfMean}, last half ${p99.lastHalfMean}`,
    `errors: ${errors}`,
    `RSS per ${processes > 1 ? 'worker' : 'process'} < 200 MB (issue 7): ${maxWorker < 200 ? 'met' : 'MISSED'} (max ${maxWorker} MB)`,
    `verdict: ${verdict}`,
  ];
  if (o.seconds < 300) summary.push('(shorter than the 5-minute soak of issue 7: shows the mechanism, not a leak verdict for long runs)');
  process.stdout.write(`${summary.join('\n')}\n`);

  const record = {
    date: new Date(t0).toISOString(),
    command: o.command,
    git: o.sha,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version },
    settings: { seconds: o.seconds, connections: o.connections, workers: o.workers, intervalSec: INTERVAL_SEC, scenario: 'gatehouse client_credentials RS256', driftRule: { mb: DRIFT_MB, pct: DRIFT_PCT } },
    intervals,
    summary: { rssTotalMb: total, rssPerProcessMb: perProcess, p99Ms: p99, growthMb, growthPct, drift, verdict, errors },
  };
  mkdirSync(o.resultsDir, { recursive: true });
  const file = path.join(o.resultsDir, `soak-${o.stamp}-${o.sha}.json`);
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  ctx.log(`wrote bench/results/${path.basename(file)}`);
}
