// `npx tsx bench/multi.ts` (npm run bench:multi): the capacity model's check
// (docs/capacity.md, issue 18). Starts 3 Gatehouse processes (WORKERS=1 each)
// on ONE PostgreSQL database (shared secrets and registry), and for each of
// client_credentials RS256, introspection opaque, refresh_token rotation and
// userinfo measures, first on instance 1 alone, then on all 3 at once (the
// same total connections, split between them): req/s, p99, errors and the
// database cost per operation (bench/lib/dbcost.ts). The per-operation cost
// must stay the same with 3 instances, with zero errors.
//
// Environment: BENCH_DURATION (s, default 8), BENCH_WARMUP (s, default 2),
// BENCH_CONNECTIONS (total, default 18), BENCH_INSTANCES (default 3),
// BENCH_DATABASE_URL. Writes bench/results/multi-<date>-<sha>.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DbCostMeter, type DbCost } from './lib/dbcost.ts';
import { runLoad, runLoop, type LoadResult, type LoadSettings } from './lib/load.ts';
import type { BenchContext, RunningTarget, ScenarioPlan, TargetName } from './lib/types.ts';
import { SCENARIOS } from './scenarios.ts';
import { REPO_ROOT, startSharedGatehouse, startTarget } from './targets.ts';

const KEEP = ['gatehouse client_credentials RS256', 'gatehouse introspection opaque', 'gatehouse refresh_token rotation', 'gatehouse userinfo'];

function envInt(name: string, def: number): number {
  const raw = process.env[name];
  return raw && /^\d+$/.test(raw) ? Number(raw) : def;
}
const log = (line: string) => process.stderr.write(`· ${line}\n`);
const deferred: (() => Promise<void> | void)[] = [];
async function cleanup(): Promise<void> {
  while (deferred.length > 0) await Promise.resolve(deferred.pop()!()).catch((e: Error) => console.error(`bench: cleanup: ${e.message}`));
}

interface Row {
  scenario: string;
  instances: number;
  reqPerSec: number;
  p99: number;
  errors: number;
  dbCost?: DbCost;
}

async function measure(targets: RunningTarget[], plans: ScenarioPlan[], load: LoadSettings, meter: DbCostMeter): Promise<{ r: LoadResult[]; cost?: DbCost }> {
  // warm-up on every instance together, then one snapshot, then the measured run on every instance together
  const warm = { ...load, durationSec: load.warmupSec, warmupSec: 0, warmupMaxSec: 0 };
  await Promise.all(targets.map((t, i) => (plans[i]!.iteration ? runLoop(plans[i]!.iteration!, warm) : runLoad(t.url, plans[i]!.request!, warm))));
  const before = await meter.snapshot();
  const measured = { ...load, warmupSec: 0, warmupMaxSec: 0 };
  const r = await Promise.all(targets.map((t, i) => (plans[i]!.iteration ? runLoop(plans[i]!.iteration!, measured) : runLoad(t.url, plans[i]!.request!, measured))));
  const after = await meter.snapshot();
  for (const t of targets) t.assertAlive();
  return { r, cost: meter.cost(before, after, r.reduce((a, x) => a + x.total, 0)) };
}

async function main(): Promise<void> {
  const instances = envInt('BENCH_INSTANCES', 3);
  const total = envInt('BENCH_CONNECTIONS', 18);
  const durationSec = envInt('BENCH_DURATION', 8);
  const warmupSec = envInt('BENCH_WARMUP', 2);
  const ctx: BenchContext = {
    databaseServerUrl: process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
    workers: 1,
    defer: (fn) => void deferred.push(fn),
    log,
  };
  const first = (await startTarget('gatehouse', ctx)) as RunningTarget & { shared: Parameters<typeof startSharedGatehouse>[1] };
  const targets: RunningTarget[] = [first];
  for (let i = 2; i <= instances; i++) targets.push(await startSharedGatehouse(ctx, { ...first.shared, name: `gatehouse-i${i}` as TargetName }));
  log(`${instances} instances on database ${first.shared.database.name}: ${targets.map((t) => t.url).join(' ')}`);
  const meter = new DbCostMeter(first.databaseUrl!, targets.map((t) => t.statementsDir!).filter(Boolean));
  await meter.open();
  deferred.push(() => meter.close());
  log('waiting 11 s for PostgreSQL statistics of the start-up writes');
  await new Promise((r) => setTimeout(r, 11_000));

  const rows: Row[] = [];
  for (const s of SCENARIOS.filter((x) => KEEP.includes(x.name))) {
    for (const n of [1, instances]) {
      const on = targets.slice(0, n);
      const per = Math.max(1, Math.round(total / n));
      const load: LoadSettings = { connections: per, durationSec, warmupSec, warmupMaxSec: warmupSec };
      const plans = [];
      for (const t of on) plans.push(await s.setup(t, load));
      const { r, cost } = await measure(on, plans, load, meter);
      const row: Row = {
        scenario: s.name,
        instances: n,
        reqPerSec: Math.round(r.reduce((a, x) => a + x.perSec, 0)),
        p99: Math.max(...r.map((x) => x.latency.p99)),
        errors: r.reduce((a, x) => a + x.non2xx + x.errors, 0),
        ...(cost && { dbCost: cost }),
      };
      rows.push(row);
      log(
        `${s.name} × ${n} instance(s), ${per} connections each: ${row.reqPerSec} req/s, p99 ${row.p99} ms, ${row.errors} errors; ` +
          `${cost?.statementsPerOp} statements/op, ${cost?.rowsWrittenPerOp} rows/op, PG CPU ${cost?.pgCpuMsPerOp} ms/op`,
      );
    }
  }
  const head = `${'scenario'.padEnd(36)} inst  req/s  p99 ms  errors  stmts/op  rows/op  PG CPU ms/op`;
  const lines = rows.map(
    (r) =>
      `${r.scenario.padEnd(36)} ${String(r.instances).padStart(4)}  ${String(r.reqPerSec).padStart(5)}  ${String(r.p99).padStart(6)}  ${String(r.errors).padStart(6)}  ${(r.dbCost?.statementsPerOp ?? 0).toFixed(2).padStart(8)}  ${(r.dbCost?.rowsWrittenPerOp ?? 0).toFixed(2).padStart(7)}  ${(r.dbCost?.pgCpuMsPerOp ?? 0).toFixed(3).padStart(12)}`,
  );
  process.stdout.write(`\n${head}\n${lines.join('\n')}\n(one PostgreSQL database; ${total} connections in total, split between the instances; ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})\n`);
  const sha = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    } catch {
      return 'nogit';
    }
  })();
  const stamp = new Date().toISOString().replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `multi-${stamp}-${sha}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), settings: { instances, totalConnections: total, durationSec, warmupSec }, machine: { cpus: os.cpus().length, loadAvg: os.loadavg() }, rows }, null, 2) + '\n');
  log(`wrote ${path.relative(REPO_ROOT, file)}`);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));
main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err: unknown) => {
    await cleanup();
    console.error(`bench: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
    process.exit(1);
  },
);
