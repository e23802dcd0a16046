// Interleaved mode (`npm run bench -- --interleaved`, or BENCH_INTERLEAVED=1):
// Gatehouse and the bare oidc-provider take turns under the same load, round
// after round, so that whatever else the (shared) machine does hits both
// alike. Each round runs Gatehouse for BENCH_ROUND_SEC seconds and the
// baseline for as long (the order flips every round), both with
// BENCH_CONNECTIONS connections, after a warm-up of each. Per algorithm of
// BENCH_INTERLEAVED_ALGS (default RS256) it reports the per-round ratios
// (Gatehouse ÷ baseline req/s), their median, the worst and best round, and
// the p99 of each side (median over rounds and worst round), then writes
// bench/results/interleaved-<date>-<sha>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCpuMeter } from './lib/cpu.ts';
import { runLoad, runLoadOnce, type LoadResult } from './lib/load.ts';
import { clientCredentialsRequest, sampleAccessToken } from './lib/oauth.ts';
import { ALGS, type Alg, type BenchContext, type LoadRequest, type RunningTarget } from './lib/types.ts';
import { startTarget } from './targets.ts';

export interface InterleavedOptions {
  rounds: number;
  roundSec: number;
  warmupSec: number;
  connections: number;
  algs: Alg[];
  resultsDir: string;
  stamp: string;
  sha: string;
  command: string;
}

interface Side {
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  serverCores: number;
  otherCores: number;
  /** server CPU per request (ms): what a request costs, whatever the neighbours take */
  cpuMsPerReq: number;
}

interface Round {
  index: number;
  first: 'gatehouse' | 'baseline';
  gatehouse: Side;
  baseline: Side;
  ratio: number;
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const r1 = (x: number) => Math.round(x * 10) / 10;

export function algsFromEnv(raw: string | undefined): Alg[] {
  const list = (raw || 'RS256').split(',').map((x) => x.trim()).filter(Boolean);
  for (const a of list) if (!(ALGS as readonly string[]).includes(a)) throw new Error(`BENCH_INTERLEAVED_ALGS: unknown alg ${a} (known: ${ALGS.join(', ')})`);
  return list as Alg[];
}

async function side(t: RunningTarget, req: LoadRequest, o: InterleavedOptions, others: () => number[]): Promise<Side> {
  const stop = startCpuMeter(() => t.rss().map((p) => p.pid), others);
  const r: LoadResult = await runLoadOnce(t.url, req, o.connections, o.roundSec);
  const cpu = stop();
  t.assertAlive();
  return { reqPerSec: r1(r.perSec), p50: r.latency.p50, p99: r.latency.p99, errors: r.non2xx + r.errors, serverCores: cpu.serverCores, otherCores: cpu.otherCores, cpuMsPerReq: r.perSec > 0 ? Math.round((cpu.serverCores * 1000 * 1000) / r.perSec) / 1000 : 0 };
}

export interface InterleavedSummary {
  alg: Alg;
  rounds: Round[];
  medianRatio: number;
  worstRatio: number;
  bestRatio: number;
  gatehouse: { medianReqPerSec: number; medianP99: number; worstP99: number; errors: number; medianCpuMsPerReq: number; cpuMsPerReqSpread: number };
  baseline: { medianReqPerSec: number; medianP99: number; worstP99: number; errors: number; medianCpuMsPerReq: number; cpuMsPerReqSpread: number };
  p99Ratio: number;
  /** baseline CPU per request ÷ Gatehouse's: the throughput ratio the two would have on cores of their own */
  cpuRatio: number;
}

export function summarise(alg: Alg, rounds: Round[]): InterleavedSummary {
  const ratiosOf = rounds.map((r) => r.ratio);
  const sideSummary = (k: 'gatehouse' | 'baseline') => ({
    medianReqPerSec: r1(median(rounds.map((r) => r[k].reqPerSec))),
    medianP99: median(rounds.map((r) => r[k].p99)),
    worstP99: Math.max(...rounds.map((r) => r[k].p99)),
    errors: rounds.reduce((a, r) => a + r[k].errors, 0),
    medianCpuMsPerReq: median(rounds.map((r) => r[k].cpuMsPerReq)),
    // highest ÷ lowest CPU per request over the rounds: 1 = every round cost the same
    cpuMsPerReqSpread: r2(Math.max(...rounds.map((r) => r[k].cpuMsPerReq)) / Math.max(1e-9, Math.min(...rounds.map((r) => r[k].cpuMsPerReq)))),
  });
  const g = sideSummary('gatehouse');
  const b = sideSummary('baseline');
  return {
    alg,
    rounds,
    medianRatio: r2(median(ratiosOf)),
    worstRatio: r2(Math.min(...ratiosOf)),
    bestRatio: r2(Math.max(...ratiosOf)),
    gatehouse: g,
    baseline: b,
    p99Ratio: b.medianP99 > 0 ? r2(g.medianP99 / b.medianP99) : 0,
    cpuRatio: g.medianCpuMsPerReq > 0 ? r2(b.medianCpuMsPerReq / g.medianCpuMsPerReq) : 0,
  };
}

export async function runInterleaved(ctx: BenchContext, o: InterleavedOptions): Promise<InterleavedSummary[]> {
  const g = await startTarget('gatehouse', ctx);
  ctx.log(`gatehouse ready at ${g.url} (pid ${g.pid})`);
  const b = await startTarget('baseline', ctx);
  ctx.log(`baseline ready at ${b.url} (pid ${b.pid})`);
  const pidsOf = (x: RunningTarget) => x.rss().map((p) => p.pid);
  const summaries: InterleavedSummary[] = [];
  const loadAvgAtStart = os.loadavg().map(r2);
  for (const alg of o.algs) {
    const reqs = { gatehouse: await clientCredentialsRequest(g, alg), baseline: await clientCredentialsRequest(b, alg) };
    await sampleAccessToken(g, reqs.gatehouse, alg);
    await sampleAccessToken(b, reqs.baseline, alg);
    // warm both up until steady (a fresh V8 speeds up for seconds)
    const warm = { connections: o.connections, durationSec: 1, warmupSec: o.warmupSec, warmupMaxSec: Math.max(o.warmupSec, 20) };
    await runLoad(g.url, reqs.gatehouse, warm);
    await runLoad(b.url, reqs.baseline, warm);
    const rounds: Round[] = [];
    for (let i = 0; i < o.rounds; i++) {
      const first = i % 2 === 0 ? 'gatehouse' : 'baseline';
      const run = (k: 'gatehouse' | 'baseline') => side(k === 'gatehouse' ? g : b, reqs[k], o, () => pidsOf(k === 'gatehouse' ? b : g));
      const s1 = await run(first);
      const s2 = await run(first === 'gatehouse' ? 'baseline' : 'gatehouse');
      const gs = first === 'gatehouse' ? s1 : s2;
      const bs = first === 'gatehouse' ? s2 : s1;
      const round: Round = { index: i + 1, first, gatehouse: gs, baseline: bs, ratio: r2(bs.reqPerSec > 0 ? gs.reqPerSec / bs.reqPerSec : 0) };
      rounds.push(round);
      ctx.log(
        `${alg} round ${i + 1}/${o.rounds}: gatehouse ${Math.round(gs.reqPerSec)} req/s p99 ${gs.p99} ms ${gs.cpuMsPerReq} CPU ms/req, baseline ${Math.round(bs.reqPerSec)} req/s p99 ${bs.p99} ms ${bs.cpuMsPerReq} CPU ms/req → ${round.ratio.toFixed(2)}× (other processes ${gs.otherCores}/${bs.otherCores} cores)`,
      );
    }
    summaries.push(summarise(alg, rounds));
  }

  const out: string[] = ['', `Interleaved: ${o.rounds} rounds × ${o.roundSec} s per side, ${o.connections} connections (Gatehouse ÷ bare oidc-provider, same run)`];
  for (const s of summaries) {
    out.push(
      `  client_credentials ${s.alg.padEnd(6)} median ${s.medianRatio.toFixed(2)}×  worst ${s.worstRatio.toFixed(2)}×  best ${s.bestRatio.toFixed(2)}×  ` +
        `req/s ${Math.round(s.gatehouse.medianReqPerSec)} / ${Math.round(s.baseline.medianReqPerSec)}  ` +
        `p99 ms gatehouse ${s.gatehouse.medianP99} (worst ${s.gatehouse.worstP99}) / baseline ${s.baseline.medianP99} (worst ${s.baseline.worstP99}) = ${s.p99Ratio.toFixed(2)}×  ` +
        `errors ${s.gatehouse.errors}/${s.baseline.errors}`,
    );
    out.push(`    rounds: ${s.rounds.map((r) => r.ratio.toFixed(2)).join(' ')}`);
    out.push(
      `    server CPU per request: gatehouse ${s.gatehouse.medianCpuMsPerReq} ms (spread ${s.gatehouse.cpuMsPerReqSpread}×), baseline ${s.baseline.medianCpuMsPerReq} ms (spread ${s.baseline.cpuMsPerReqSpread}×) → CPU ratio ${s.cpuRatio.toFixed(2)}×`,
    );
  }
  const busy = summaries.flatMap((s) => s.rounds).some((r) => r.gatehouse.otherCores > 0.2 || r.baseline.otherCores > 0.2);
  if (busy) out.push('  note: other processes used > 0.2 cores during some rounds (shared machine): absolute req/s are noisy; the ratios compare turns of the same minutes');
  process.stdout.write(`${out.join('\n')}\n`);

  mkdirSync(o.resultsDir, { recursive: true });
  const file = path.join(o.resultsDir, `interleaved-${o.stamp}-${o.sha}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        command: o.command,
        settings: { rounds: o.rounds, roundSec: o.roundSec, warmupSec: o.warmupSec, connections: o.connections, algs: o.algs },
        machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadAvgAtStart, loadAvgAtEnd: os.loadavg().map(r2), busy },
        summaries,
      },
      null,
      2,
    ) + '\n',
  );
  ctx.log(`wrote ${path.relative(path.join(o.resultsDir, '..', '..'), file)}`);
  return summaries;
}
