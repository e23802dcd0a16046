// The servers under load, each started as its own process so that the load
// generator never shares their event loop.
//
//   gatehouse  `node --import tsx src/cli/main.ts serve` on a fresh database
//              (gh_bench_<random>) of the machine's PostgreSQL, WORKERS=n;
//              fixtures registered through the domains' store functions.
//   baseline   bench/baseline-server.ts: oidc-provider alone, in memory.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '../src/clients/store.ts';
import { openDb } from '../src/db/client.ts';
import { createResource } from '../src/resources/store.ts';
import { createBenchDatabase } from './lib/db.ts';
import { freePort, rssOf, spawnServer, waitUntilReady, type ServerProcess } from './lib/proc.ts';
import { ALGS, type Alg, type BenchContext, type Fixtures, type RunningTarget, type TargetDefinition, type TargetName } from './lib/types.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCOPE = 'bench.read bench.write';
const START_TIMEOUT_MS = 90_000;

/** A small, explicit environment: nothing from the caller's shell leaks into the server's configuration. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k];
  return env;
}

function running(
  name: TargetName,
  proc: ServerProcess,
  url: string,
  fixtures: Fixtures,
  info: RunningTarget['info'],
  withWorkers: boolean,
): RunningTarget {
  return {
    name,
    url,
    pid: proc.pid,
    spawnedAt: proc.spawnedAt,
    fixtures,
    info,
    rss: () => rssOf(proc.pid, name, withWorkers),
    assertAlive: () => proc.assertAlive(),
  };
}

const gatehouse: TargetDefinition = {
  name: 'gatehouse',
  async start(ctx: BenchContext) {
    const db = await createBenchDatabase(ctx.databaseServerUrl);
    ctx.defer(() => db.drop());
    ctx.log(`gatehouse: database ${db.name}`);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
    ctx.defer(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = {
      ...baseEnv(),
      DATABASE_URL: db.url,
      ISSUER: url,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      WORKERS: String(ctx.workers),
      COOKIE_SECRETS: randomBytes(32).toString('base64url'),
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      DATA_DIR: dataDir,
    };
    const nodeArgs = ['--import', 'tsx'];
    if (ctx.cpuProfileDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.join(ctx.cpuProfileDir, 'gatehouse'));
    const proc = spawnServer('gatehouse', process.execPath, [...nodeArgs, 'src/cli/main.ts', 'serve'], env, REPO_ROOT);
    // SIGTERM drains and stops the workers; profiles are written on a clean exit.
    ctx.defer(async () => {
      const r = await proc.stop(30_000);
      if (r.killed) console.warn('bench: gatehouse did not stop within 30 s; killed its process group');
    });
    await waitUntilReady(`${url}/readyz`, proc, START_TIMEOUT_MS);

    // Fixtures, through the same store functions the CLI and admin API use.
    const handle = openDb({ url: db.url, poolSize: 2 });
    let fixtures: Fixtures;
    try {
      const resources = {} as Record<Alg, string>;
      for (const alg of ALGS) {
        const identifier = `https://api-${alg.toLowerCase()}.bench.gatehouse.test`;
        await createResource(handle.prisma, { identifier, name: `bench ${alg}`, scopes: SCOPE.split(' '), signingAlg: alg, accessTokenTtl: 3600 });
        resources[alg] = identifier;
      }
      const { client, clientSecret } = await createClient(handle.prisma, {
        name: 'bench client_credentials',
        grants: ['client_credentials'],
        scopes: SCOPE.split(' '),
        resources: Object.values(resources),
      });
      if (!clientSecret) throw new Error('gatehouse: createClient returned no secret for a client_secret_basic client');
      fixtures = { clientId: client.id, clientSecret, resources, scope: SCOPE };
    } finally {
      await handle.close();
    }
    return running('gatehouse', proc, url, fixtures, { workers: ctx.workers, database: 'postgresql (BENCH_DATABASE_URL)' }, ctx.workers > 1);
  },
};

const baseline: TargetDefinition = {
  name: 'baseline',
  async start(ctx: BenchContext) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const resources = Object.fromEntries(ALGS.map((alg) => [alg, `https://api-${alg.toLowerCase()}.bench.baseline.test`])) as Record<Alg, string>;
    const fixtures: Fixtures = { clientId: 'bench-baseline', clientSecret: randomBytes(32).toString('base64url'), resources, scope: SCOPE };
    const env: NodeJS.ProcessEnv = {
      ...baseEnv(),
      PORT: String(port),
      BENCH_CLIENT_ID: fixtures.clientId,
      BENCH_CLIENT_SECRET: fixtures.clientSecret,
      BENCH_RESOURCES: JSON.stringify(resources),
      BENCH_SCOPE: SCOPE,
    };
    const nodeArgs = ['--import', 'tsx'];
    if (ctx.cpuProfileDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.join(ctx.cpuProfileDir, 'baseline'));
    const proc = spawnServer('baseline', process.execPath, [...nodeArgs, 'bench/baseline-server.ts'], env, REPO_ROOT);
    ctx.defer(async () => {
      const r = await proc.stop(10_000);
      if (r.killed) console.warn('bench: baseline did not stop within 10 s; killed its process group');
    });
    await waitUntilReady(`${url}/.well-known/openid-configuration`, proc, START_TIMEOUT_MS);
    return running('baseline', proc, url, fixtures, { storage: 'memory' }, false);
  },
};

export const TARGETS: Record<TargetName, TargetDefinition> = { gatehouse, baseline };
