// `npm run bench`: starts Gatehouse (on a fresh PostgreSQL database) and the
// bare oidc-provider baseline as separate processes, runs every scenario of
// scenarios.ts under bounded autocannon load on 127.0.0.1, prints a table and
// writes bench/results/<date>-<sha>.{json,svg} and latest.{json,svg}.
//
// Environment: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2: at least this long,
// then on until the rate is steady), BENCH_WARMUP_MAX (s, default 20),
// BENCH_CONNECTIONS (default 16), BENCH_WORKERS_LIST (Gatehouse WORKERS per run, default 1,2;
// the first gets the whole suite, the others a subset; BENCH_WORKERS=n alone means only n),
// BENCH_SOAK (s: soak mode instead of the suite, see soak.ts),
// BENCH_SCENARIOS (comma-separated name fragments to run a subset),
// BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
// BENCH_CPU_PROF=1 (V8 CPU profiles of both servers in bench/results/profiles/),
// BENCH_QUIET_WAIT (s to wait for an idle machine before each run, default 30, 0: off),
// BENCH_BUSY_RETRIES (runs again when other processes used CPU meanwhile, default 2),
// --interleaved / BENCH_INTERLEAVED=1 (Gatehouse and the baseline take turns: BENCH_ROUNDS × BENCH_ROUND_SEC,
// BENCH_INTERLEAVED_ALGS; see interleaved.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCpuMeter, waitForQuiet, type CpuUse } from './lib/cpu.ts';
import { machineSpeed } from './lib/speed.ts';
import { redact } from './lib/db.ts';
import { DbCostMeter } from './lib/dbcost.ts';
import { runLoad, runLoop, type LoadResult, type LoadSettings } from './lib/load.ts';
import { dbCostTable, ratios, svgChart, table, targetChecks } from './lib/report.ts';
import {
  SkipScenario,
  type BenchContext,
  type RunningTarget,
  type Scenario,
  type ScenarioPlan,
  type ScenarioResult,
  type TargetName,
} from './lib/types.ts';
import { SCENARIOS, workerScenarios } from './scenarios.ts';
import { algsFromEnv, runInterleaved } from './interleaved.ts';
import { runSoak } from './soak.ts';
import { REPO_ROOT, startTarget } from './targets.ts';

const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');
/** other processes using more CPU than this during a run make its numbers unreliable */
const BUSY_CORES = 0.2;

function envInt(name: string, def: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new Error(`${name} must be a whole number from ${min} to ${max}`);
  return Number(raw);
}

function log(line: string): void {
  process.stderr.write(`· ${line}\n`);
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function packageVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function commandLine(): string {
  const vars = Object.keys(process.env)
    .filter((k) => k.startsWith('BENCH_') && process.env[k])
    .sort()
    .map((k) => `${k}=${k === 'BENCH_DATABASE_URL' ? redact(process.env[k]!) : process.env[k]}`);
  const cmd = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : `tsx ${path.relative(REPO_ROOT, process.argv[1] ?? 'bench/run.ts')}`;
  return [...vars, cmd].join(' ');
}

// ---------------------------------------------------------------- cleanup
const deferred: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (deferred.length > 0) {
      const fn = deferred.pop()!;
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup step failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`bench: ${sig}; stopping servers`);
    void cleanup().finally(() => process.exit(130));
  });
}

let load: LoadSettings;
const meters = new Map<TargetName, DbCostMeter>();
/** PostgreSQL 15's PGSTAT_IDLE_INTERVAL (10 s) and a margin */
const STATS_SETTLE_MS = 11_000;

/** the database-cost meter of a Gatehouse target (undefined for the baseline, or BENCH_DB_COST=0) */
async function meterOf(t: RunningTarget): Promise<DbCostMeter | undefined> {
  if (!t.databaseUrl || process.env.BENCH_DB_COST === '0') return undefined;
  let m = meters.get(t.name);
  if (!m) {
    m = new DbCostMeter(t.databaseUrl, t.statementsDir);
    await m.open();
    // PostgreSQL publishes an idle backend's counters (rows written) only after 10 s idle:
    // let the server's start-up and the fixtures' writes land before the first measured run
    log(`${t.name}: waiting ${STATS_SETTLE_MS / 1000} s for PostgreSQL's statistics of the start-up writes`);
    await new Promise((r) => setTimeout(r, STATS_SETTLE_MS));
    const opened = m;
    deferred.push(() => opened.close());
    meters.set(t.name, m);
  }
  return m;
}

/** One warm-up + measured run of a scenario; CPU and RSS read around it. */
async function measure(s: Scenario, t: RunningTarget, plan: ScenarioPlan, others: () => number[]): Promise<ScenarioResult> {
  let stopMeter: (() => CpuUse) | undefined;
  let measureFrom = 0;
  const meter = await meterOf(t);
  let dbBefore: Awaited<ReturnType<DbCostMeter['snapshot']>> | undefined;
  const beforeMeasure = async () => {
    if (meter) dbBefore = await meter.snapshot();
    measureFrom = Date.now();
    stopMeter = startCpuMeter(() => t.rss().map((p) => p.pid), others);
  };
  let r: LoadResult;
  if (plan.iteration) r = await runLoop(plan.iteration, load, beforeMeasure);
  else if (plan.request) r = await runLoad(t.url, plan.request, load, beforeMeasure);
  else throw new Error(`${s.name}: setup returned neither a request nor an iteration`);
  const cpu = stopMeter!();
  const measureTo = Date.now();
  const dbCost = meter && dbBefore ? meter.cost(dbBefore, await meter.snapshot(), r.total) : undefined;
  const since = (ms: number) => Math.round((ms - t.spawnedAt) / 100) / 10;
  const windowSec: [number, number] = [since(measureFrom), since(measureTo)];
  const rss = t.rss();
  t.assertAlive();
  return {
    name: s.name,
    target: s.target,
    compareKey: s.compareKey,
    requestsPerSec: Math.round(r.perSec * 10) / 10,
    totalRequests: r.total,
    durationSec: r.durationSec,
    windowSec,
    ...(plan.unit && { unit: plan.unit }),
    latencyMs: r.latency,
    ...(r.perSecond && { perSecond: r.perSecond }),
    ...(r.warmup && { warmup: r.warmup }),
    errors: r.non2xx + r.errors,
    errorDetail: { non2xx: r.non2xx, socketErrors: r.errors, timeouts: r.timeouts, statusCodes: r.statusCodes, ...(r.errorSamples?.length && { samples: r.errorSamples }) },
    rssMb: Math.round((rss.reduce((a, p) => a + p.rssKb, 0) / 1024) * 10) / 10,
    rssByProcess: rss.map((p) => ({ pid: p.pid, role: p.role, mb: Math.round((p.rssKb / 1024) * 10) / 10 })),
    cpu,
    ...(dbCost && { dbCost }),
    notes: [...(plan.notes ?? [])],
  };
}

/** BENCH_WORKERS_LIST (default 1,2); a lone BENCH_WORKERS=n (the older knob) means just n. */
function workersListFromEnv(): number[] {
  const raw = process.env.BENCH_WORKERS_LIST;
  if (!raw && process.env.BENCH_WORKERS) return [envInt('BENCH_WORKERS', 1, 1, 64)];
  const list = (raw || '1,2').split(',').map((x) => x.trim()).filter(Boolean);
  if (list.length === 0 || list.some((x) => !/^\d+$/.test(x) || Number(x) < 1 || Number(x) > 64)) {
    throw new Error('BENCH_WORKERS_LIST must be comma-separated whole numbers from 1 to 64');
  }
  return [...new Set(list.map(Number))];
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  load = {
    durationSec: envInt('BENCH_DURATION', 10, 1, 3600),
    warmupSec: envInt('BENCH_WARMUP', 2, 0, 600),
    warmupMaxSec: envInt('BENCH_WARMUP_MAX', 20, 0, 600),
    connections: envInt('BENCH_CONNECTIONS', 16, 1, 1024),
  };
  load.warmupMaxSec = Math.max(load.warmupSec, load.warmupMaxSec);
  const quietWaitSec = envInt('BENCH_QUIET_WAIT', 30, 0, 3600);
  const busyRetries = envInt('BENCH_BUSY_RETRIES', 2, 0, 10);
  const workersList = workersListFromEnv();
  const workers = workersList[0]!;
  const soakSec = envInt('BENCH_SOAK', 0, 0, 24 * 3600);
  const databaseServerUrl = process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
  const filter = (process.env.BENCH_SCENARIOS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // With several worker counts: the whole suite on the first ('gatehouse', names + [w1]),
  // a subset on each further one ('gatehouse-w2' …, names + [w2]).
  const multi = workersList.length > 1;
  const all: Scenario[] = [
    ...SCENARIOS.map((s) => (multi && s.target === 'gatehouse' ? { ...s, name: `${s.name} [w${workers}]` } : s)),
    ...workersList.slice(1).flatMap((w) => workerScenarios(`gatehouse-w${w}`).map((s) => ({ ...s, name: `${s.name} [w${w}]` }))),
  ];
  const scenarios = all.filter((s) => filter.length === 0 || filter.some((f) => s.name.includes(f)));
  const interleaved = process.argv.includes('--interleaved') || process.env.BENCH_INTERLEAVED === '1';
  if (scenarios.length === 0 && soakSec === 0 && !interleaved) throw new Error(`BENCH_SCENARIOS matches no scenario (known: ${all.map((s) => s.name).join(', ')})`);

  const startedAt = new Date();
  const loadAvgAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const stamp = startedAt.toISOString().replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  const sha = git(['rev-parse', '--short', 'HEAD']) ?? 'nogit';
  let cpuProfileDir: string | undefined;
  if (process.env.BENCH_CPU_PROF === '1') {
    cpuProfileDir = path.join(RESULTS_DIR, 'profiles', `${stamp}-${sha}`);
    mkdirSync(cpuProfileDir, { recursive: true });
  }
  const ctx: BenchContext = { databaseServerUrl, workers, cpuProfileDir, defer: (fn) => void deferred.push(fn), log };

  if (interleaved) {
    await runInterleaved(ctx, {
      rounds: envInt('BENCH_ROUNDS', 5, 1, 1000),
      roundSec: envInt('BENCH_ROUND_SEC', 6, 1, 600),
      warmupSec: load.warmupSec,
      connections: load.connections,
      algs: algsFromEnv(process.env.BENCH_INTERLEAVED_ALGS),
      resultsDir: RESULTS_DIR,
      stamp,
      sha,
      command: `${commandLine()} -- --interleaved`,
    });
    await cleanup();
    return;
  }

  if (soakSec > 0) {
    await runSoak(ctx, { seconds: soakSec, connections: load.connections, workers, resultsDir: RESULTS_DIR, stamp, sha, command: commandLine() });
    await cleanup();
    return;
  }

  // Start every target the chosen scenarios need, each in its own process.
  const running = new Map<TargetName, RunningTarget>();
  for (const name of new Set(scenarios.map((s) => s.target))) {
    log(`starting ${name}`);
    const t = await startTarget(name, ctx);
    running.set(name, t);
    log(`${name} ready at ${t.url} (pid ${t.pid})`);
  }

  const speedBefore = machineSpeed();
  log(`machine speed before: ${speedBefore} sha-256/s (1 KiB, one core)`);
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    const t = running.get(s.target)!;
    t.assertAlive();
    let plan;
    try {
      plan = await s.setup(t, load);
    } catch (err) {
      if (!(err instanceof SkipScenario)) throw err;
      log(`${s.name}: ${err.message}`);
      results.push({ name: s.name, target: s.target, compareKey: s.compareKey, skipped: err.message, notes: [err.message] });
      continue;
    }
    for (const n of plan.notes ?? []) log(`${s.name}: ${n}`);
    const pidsOf = (x: RunningTarget) => x.rss().map((p) => p.pid);
    const ours = () => [...running.values()].flatMap(pidsOf);
    const others = () => [...running.values()].filter((x) => x !== t).flatMap(pidsOf);
    // On a shared machine: wait for a quiet moment, and run again (keeping the
    // cleanest attempt) when other processes used CPU during the run.
    let best: ScenarioResult | undefined;
    let attempts = 0;
    for (let attempt = 1; attempt <= 1 + busyRetries; attempt++) {
      attempts = attempt;
      if (quietWaitSec > 0) {
        const waited = await waitForQuiet(ours, BUSY_CORES, quietWaitSec);
        if (waited === undefined) log(`${s.name}: machine still busy after ${quietWaitSec} s; measuring anyway`);
        else if (waited > 3) log(`${s.name}: waited ${waited} s for the machine to be quiet`);
      }
      const warm = plan.iteration || load.warmupMaxSec === load.warmupSec ? `${load.warmupSec} s` : `${load.warmupSec}–${load.warmupMaxSec} s (until steady)`;
      log(`${s.name}: ${warm} warm-up + ${load.durationSec} s × ${load.connections} connections${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      const result = await measure(s, t, plan, others);
      const cpu = result.cpu!;
      const w = result.warmup;
      log(
        `${s.name}: ${w ? `warm after ${w.sec} s${w.steady ? '' : ' (not steady)'}; ` : ''}${Math.round(result.requestsPerSec!)} req/s, p99 ${result.latencyMs!.p99} ms, ${result.errors} errors; ` +
          `CPU cores: server ${cpu.serverCores}, autocannon ${cpu.loadGeneratorCores}, others ${cpu.otherCores}`,
      );
      if (!best || cpu.otherCores < best.cpu!.otherCores) best = result;
      if (cpu.otherCores <= BUSY_CORES) break;
    }
    const result = best!;
    result.attempts = attempts;
    plan.after?.(result);
    if (result.errors! > 0) result.notes.push(`errors: ${JSON.stringify(result.errorDetail)}`);
    if (result.warmup && !result.warmup.steady) result.notes.push(`the rate was not steady after the longest warm-up (${result.warmup.sec} s): ${result.warmup.perSecond.join(' ')} per second`);
    if (result.cpu!.otherCores > BUSY_CORES) {
      result.notes.push(`machine busy: other processes used ${result.cpu!.otherCores} cores during the run; numbers are not reliable`);
    }
    results.push(result);
  }

  const speedAfter = machineSpeed();
  // ------------------------------------------------------------ report
  const rs = ratios(results);
  const checks = targetChecks(results, rs);
  const cpus = os.cpus();
  const machine = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemMb: Math.round(os.totalmem() / 1024 / 1024),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAvgAtStart,
    /** sha-256 of 1 KiB per second on one core, before and after the scenarios (bench/lib/speed.ts) */
    speed: { before: speedBefore, after: speedAfter },
  };
  const out: string[] = [];
  out.push(table(results), '');
  if (rs.length > 0) {
    out.push('Gatehouse ÷ baseline (req/s):');
    for (const r of rs) out.push(`  ${r.compareKey.padEnd(28)} ${r.ratio.toFixed(2)}×  (${Math.round(r.gatehouse)} / ${Math.round(r.baseline)})`);
    out.push('');
  }
  if (checks.length > 0) {
    out.push('Targets (issues 3, 4, 7):');
    for (const c of checks) out.push(`  ${c.met ? 'met   ' : 'MISSED'} ${c.what}: ${c.measured} (goal ${c.goal})`);
    out.push('');
  }
  const measured = results.filter((r) => r.cpu);
  if (measured.length > 0) {
    out.push('CPU cores used during each run (server / autocannon / other processes):');
    for (const r of measured) out.push(`  ${r.name.padEnd(Math.max(36, ...measured.map((m) => m.name.length)))} ${r.cpu!.serverCores.toFixed(2)} / ${r.cpu!.loadGeneratorCores.toFixed(2)} / ${r.cpu!.otherCores.toFixed(2)}`);
    out.push('');
  }
  const costed = results.filter((r) => r.dbCost);
  if (costed.length > 0) out.push(dbCostTable(costed), '');
  const notes = results.flatMap((r) => r.notes.map((n) => `${r.name}: ${n}`));
  if (notes.length > 0) out.push('Notes:', ...notes.map((n) => `  - ${n}`), '');
  out.push(
    `${load.connections} connections, ${load.durationSec} s per scenario after a warm-up of ${load.warmupSec} s${load.warmupMaxSec > load.warmupSec ? ` up to ${load.warmupMaxSec} s until steady (custom loops: ${load.warmupSec} s)` : ''}; Gatehouse WORKERS=${workersList.join(' and ')}; ` +
      `${machine.cpus} × ${machine.cpuModel}, node ${machine.node}; git ${sha}`,
    `machine speed: ${speedBefore} sha-256/s before, ${speedAfter} after (this VM drifts; compare absolute req/s only at similar speeds)`,
  );
  process.stdout.write(`\n${out.join('\n')}\n`);

  const record = {
    date: startedAt.toISOString(),
    git: { sha, dirty: (git(['status', '--porcelain']) ?? '') !== '' },
    command: commandLine(),
    machine,
    versions: { 'oidc-provider': packageVersion('oidc-provider'), autocannon: packageVersion('autocannon') },
    settings: { ...load, gatehouseWorkers: workersList, quietWaitSec, busyRetries, busyCoresThreshold: BUSY_CORES, database: redact(databaseServerUrl) },
    targets: Object.fromEntries([...running].map(([name, t]) => [name, t.info])),
    results,
    ratios: rs,
    checks,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const base = `${stamp}-${sha}`;
  const json = JSON.stringify(record, null, 2) + '\n';
  const svg = svgChart(results, `Gatehouse bench ${startedAt.toISOString().slice(0, 10)} (${sha})`, `req/s (login flow: flows/s), ${load.connections} connections, ${load.durationSec} s, WORKERS=${workersList.join(',')}, ${machine.cpus} CPUs, node ${machine.node}`);
  writeFileSync(path.join(RESULTS_DIR, `${base}.json`), json);
  writeFileSync(path.join(RESULTS_DIR, 'latest.json'), json);
  writeFileSync(path.join(RESULTS_DIR, `${base}.svg`), svg);
  writeFileSync(path.join(RESULTS_DIR, 'latest.svg'), svg);
  log(`wrote bench/results/${base}.json, .svg and latest.{json,svg}`);

  await cleanup();
  if (cpuProfileDir) {
    const files = readdirSync(cpuProfileDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.cpuprofile'));
    log(
      files.length > 0
        ? `CPU profiles (main thread = …0.001…): ${files.map((f) => path.relative(REPO_ROOT, path.join(cpuProfileDir, f))).join(', ')}; summarise with: npx tsx bench/profile-top.ts <file> --from/--to <windowSec>`
        : 'no CPU profile was written (did the servers exit cleanly?)',
    );
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await cleanup();
    console.error(`bench: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
    process.exit(1);
  },
);
