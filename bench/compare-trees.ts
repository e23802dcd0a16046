// `npx tsx bench/compare-trees.ts <other-tree>`: is this tree's Gatehouse
// dearer per request than another checkout's (e.g. an older commit, built)?
// Both run at once (WORKERS=1 each, their own database) and take turns under
// the same client_credentials load, round after round (the order flips every
// round), so that whatever else the shared machine does hits both alike. The
// measure is server CPU per request (µs, from /proc: every thread of the
// process), not req/s; it prints each round, the per-round ratios (this ÷
// other) and their median. Nothing is written to bench/results.
//
// The other tree is only read: its own bench/targets.ts starts its dist/
// (run `npm run build` there first) and registers its fixtures.
//
// Environment: BENCH_ROUNDS (default 8), BENCH_ROUND_SEC (default 5),
// BENCH_CONNECTIONS (default 16), BENCH_ALG (default RS256),
// BENCH_DATABASE_URL.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startCpuMeter } from './lib/cpu.ts';
import { runLoadOnce } from './lib/load.ts';
import { clientCredentialsRequest } from './lib/oauth.ts';
import { ALGS, type Alg, type BenchContext, type LoadRequest, type RunningTarget } from './lib/types.ts';
import { startTarget } from './targets.ts';

function envInt(name: string, def: number): number {
  const raw = process.env[name];
  return raw && /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : def;
}

const median = (a: readonly number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const otherTree = process.argv[2];
  if (!otherTree || !existsSync(path.join(otherTree, 'bench/targets.ts')) || !existsSync(path.join(otherTree, 'dist/cli/main.js'))) {
    throw new Error('usage: npx tsx bench/compare-trees.ts <other checkout, built (dist/cli/main.js)>');
  }
  const rounds = envInt('BENCH_ROUNDS', 8);
  const roundSec = envInt('BENCH_ROUND_SEC', 5);
  const connections = envInt('BENCH_CONNECTIONS', 16);
  const alg = (process.env.BENCH_ALG ?? 'RS256') as Alg;
  if (!ALGS.includes(alg)) throw new Error(`BENCH_ALG must be one of ${ALGS.join(', ')}`);
  // the statement counter preload exists in newer trees only: keep both sides alike
  process.env.BENCH_DB_COST = '0';

  const deferred: (() => Promise<void> | void)[] = [];
  const ctx: BenchContext = {
    databaseServerUrl: process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    workers: 1,
    defer: (fn) => void deferred.push(fn),
    log: (line) => process.stderr.write(`· ${line}\n`),
  };
  try {
    const other = (await import(pathToFileURL(path.join(path.resolve(otherTree), 'bench/targets.ts')).href)) as { startTarget: typeof startTarget };
    const sides: Record<'this' | 'other', RunningTarget> = {
      this: await startTarget('gatehouse', ctx),
      other: await other.startTarget('gatehouse', ctx),
    };
    const requests = {} as Record<'this' | 'other', LoadRequest>;
    for (const k of ['this', 'other'] as const) {
      requests[k] = await clientCredentialsRequest(sides[k], alg);
      await runLoadOnce(sides[k].url, requests[k], connections, 4); // warm-up
    }
    const us: Record<'this' | 'other', number[]> = { this: [], other: [] };
    for (let r = 0; r < rounds; r++) {
      for (const k of r % 2 ? (['other', 'this'] as const) : (['this', 'other'] as const)) {
        const t = sides[k];
        const idle = sides[k === 'this' ? 'other' : 'this'];
        const stop = startCpuMeter(
          () => t.rss().map((p) => p.pid),
          () => idle.rss().map((p) => p.pid),
        );
        const load = await runLoadOnce(t.url, requests[k], connections, roundSec);
        const cpu = stop();
        if (load.errors || load.non2xx) throw new Error(`${k}: ${load.errors} errors, ${load.non2xx} non-2xx answers`);
        const perSec = load.total / load.durationSec;
        const perReq = (cpu.serverCores / perSec) * 1e6;
        us[k].push(perReq);
        console.log(`round ${r} ${k.padEnd(5)} ${perSec.toFixed(0).padStart(5)} req/s, server ${cpu.serverCores} cores, others ${cpu.otherCores} → ${perReq.toFixed(0)} µs/req`);
      }
    }
    const ratios = us.this.map((v, i) => v / us.other[i]!);
    console.log(`server CPU per request (median): this ${median(us.this).toFixed(0)} µs, other ${median(us.other).toFixed(0)} µs`);
    console.log(`per-round ratios (this ÷ other): ${ratios.map((x) => x.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(3)}`);
  } finally {
    for (const fn of deferred.reverse()) await fn();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
