// The servers under load, each started as its own process so that the load
// generator never shares their event loop.
//
//   gatehouse  `node dist/cli/main.js serve` (as `npm start`) on a fresh database
//              (gh_bench_<random>) of the machine's PostgreSQL, WORKERS=n;
//              fixtures registered through the domains' store functions.
//   baseline   bench/baseline-server.ts: oidc-provider alone, in memory.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { insertPasskey, userHandleOf } from '../src/accounts/passkeys.ts';
import { createAccount } from '../src/accounts/store.ts';
import { SoftAuthenticator } from '../test/helpers/webauthn.ts';
import { createClient } from '../src/clients/store.ts';
import { openDb } from '../src/db/client.ts';
import { createResource } from '../src/resources/store.ts';
import { createBenchDatabase } from './lib/db.ts';
import { freePort, rssOf, spawnServer, waitUntilReady, type ServerProcess } from './lib/proc.ts';
import { ALGS, type Alg, type BenchContext, type Fixtures, type RunningTarget, type TargetDefinition, type TargetName, type WebFixtures } from './lib/types.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCOPE = 'bench.read bench.write';
const START_TIMEOUT_MS = 90_000;
/** accounts for the sign-in scenarios: enough that no one account is hammered */
const BENCH_USERS = 50;
const BENCH_REDIRECT_URI = 'https://app.bench.gatehouse.test/callback';

/** A small, explicit environment: nothing from the caller's shell leaks into the server's configuration. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // NODE_OPTIONS and MALLOC_ARENA_MAX pass through: runtime tuning, not Gatehouse configuration
  for (const k of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'NODE_OPTIONS', 'MALLOC_ARENA_MAX']) if (process.env[k]) env[k] = process.env[k];
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

/** What further Gatehouse instances on the same database share with the first (bench/multi.ts). */
export interface SharedGatehouse {
  database: { name: string; url: string };
  cookieSecrets: string;
  keyEncryptionKey: string;
  fixtures: Fixtures;
  name?: TargetName;
}

/** The bench's registry entries, through the same store functions the CLI and admin API use. */
async function registerFixtures(databaseUrl: string): Promise<Fixtures> {
  const handle = openDb({ url: databaseUrl, poolSize: 2 });
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
    const web = await createClient(handle.prisma, {
      name: 'bench web app',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: [BENCH_REDIRECT_URI],
      firstParty: true,
    });
    if (!web.clientSecret) throw new Error('gatehouse: createClient returned no secret for the web client');
    const password = randomBytes(12).toString('base64url');
    const users = Array.from({ length: BENCH_USERS }, (_, i) => `bench-user-${i}@bench.gatehouse.test`);
    for (let i = 0; i < users.length; i += 4) {
      await Promise.all(users.slice(i, i + 4).map((email) => createAccount(handle.prisma, { email, name: null, password, emailVerified: true })));
    }
    // passkey users: no password; a software ES256 authenticator each (test/helpers/webauthn.ts).
    // RP ID 127.0.0.1 on every instance; each assertion names the origin of the instance it goes to.
    const passkeyUsers: NonNullable<WebFixtures['passkeyUsers']> = [];
    for (let i = 0; i < BENCH_USERS; i++) {
      const email = `bench-passkey-${i}@bench.gatehouse.test`;
      const account = await createAccount(handle.prisma, { email, name: null, emailVerified: true });
      const authenticator = new SoftAuthenticator('127.0.0.1', 'http://127.0.0.1', userHandleOf(account.id));
      await insertPasskey(handle.prisma, {
        accountId: account.id,
        credentialId: authenticator.credentialId,
        publicKey: authenticator.cosePublicKey().toString('base64url'),
        counter: 0,
        transports: ['internal'],
        name: 'bench',
        backedUp: true,
        deviceType: 'multiDevice',
      });
      passkeyUsers.push({ email, authenticator });
    }
    const webFixtures: WebFixtures = { clientId: web.client.id, clientSecret: web.clientSecret, redirectUri: BENCH_REDIRECT_URI, users, password, passkeyUsers };
    return { clientId: client.id, clientSecret, resources, scope: SCOPE, web: webFixtures };
  } finally {
    await handle.close();
  }
}

const gatehouse: TargetDefinition & {
  start(ctx: BenchContext, workers?: number, shared?: SharedGatehouse): Promise<RunningTarget & { shared: SharedGatehouse }>;
} = {
  name: 'gatehouse',
  async start(ctx: BenchContext, workersOverride?: number, shared?: SharedGatehouse) {
    const workers = workersOverride ?? ctx.workers;
    let db: { name: string; url: string };
    if (shared) db = shared.database;
    else {
      const created = await createBenchDatabase(ctx.databaseServerUrl);
      ctx.defer(() => created.drop());
      db = created;
    }
    ctx.log(`gatehouse: database ${db.name}${shared ? ' (shared)' : ''}`);
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
      WORKERS: String(workers),
      // the sign-in scenarios only use correct passwords; keep the throttle out of the way anyway
      LOGIN_MAX_FAILURES: '1000',
      LOGIN_IP_MAX_FAILURES: '100000',
      COOKIE_SECRETS: shared?.cookieSecrets ?? randomBytes(32).toString('base64url'),
      KEY_ENCRYPTION_KEY: shared?.keyEncryptionKey ?? randomBytes(32).toString('base64'),
      DATA_DIR: dataDir,
    };
    // What `npm start` runs: the compiled CLI (npm run bench builds it first).
    // BENCH_FROM_SOURCE=1 runs the TypeScript sources through tsx instead.
    const fromSource = process.env.BENCH_FROM_SOURCE === '1';
    if (!fromSource && !existsSync(path.join(REPO_ROOT, 'dist/cli/main.js'))) {
      throw new Error('dist/cli/main.js is missing: run `npm run build` (npm run bench does) or set BENCH_FROM_SOURCE=1');
    }
    const nodeArgs = fromSource ? ['--import', 'tsx'] : [];
    // BENCH_NODE_ARGS: extra node flags for Gatehouse (e.g. --trace-gc, --max-semi-space-size=…)
    nodeArgs.push(...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean));
    if (ctx.cpuProfileDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', path.join(ctx.cpuProfileDir, 'gatehouse'));
    // statements per operation: counted through pg in the server processes (bench only; BENCH_DB_COST=0: off)
    let statementsDir: string | undefined;
    if (process.env.BENCH_DB_COST !== '0') {
      statementsDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-statements-'));
      const dir = statementsDir;
      ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
      env.BENCH_STATEMENTS_DIR = statementsDir;
      nodeArgs.push('--import', pathToFileURL(path.join(REPO_ROOT, 'bench/lib/count-statements.mjs')).href);
    }
    const entry = fromSource ? 'src/cli/main.ts' : 'dist/cli/main.js';
    const proc = spawnServer('gatehouse', process.execPath, [...nodeArgs, entry, 'serve'], env, REPO_ROOT);
    // SIGTERM drains and stops the workers; profiles are written on a clean exit.
    ctx.defer(async () => {
      const r = await proc.stop(30_000);
      if (r.killed) console.warn('bench: gatehouse did not stop within 30 s; killed its process group');
    });
    await waitUntilReady(`${url}/readyz`, proc, START_TIMEOUT_MS);

    // Fixtures: once per database (further instances on it share them)
    const fixtures = shared?.fixtures ?? (await registerFixtures(db.url));
    const name: TargetName = shared?.name ?? (workersOverride === undefined ? 'gatehouse' : `gatehouse-w${workers}`);
    return {
      ...running(name, proc, url, fixtures, { workers, database: 'postgresql (BENCH_DATABASE_URL)' }, workers > 1),
      databaseUrl: db.url,
      ...(statementsDir && { statementsDir }),
      shared: { database: db, cookieSecrets: env.COOKIE_SECRETS!, keyEncryptionKey: env.KEY_ENCRYPTION_KEY!, fixtures: fixtures },
    };
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

export const TARGETS = { gatehouse, baseline };

/** A further Gatehouse process (WORKERS=1) on the database, secrets and fixtures of a running one. */
export function startSharedGatehouse(ctx: BenchContext, shared: SharedGatehouse): Promise<RunningTarget & { shared: SharedGatehouse }> {
  return gatehouse.start(ctx, 1, shared);
}

/** 'gatehouse', 'baseline', or 'gatehouse-w<n>': a further Gatehouse with WORKERS=n (BENCH_WORKERS_LIST). */
export function startTarget(name: TargetName, ctx: BenchContext): Promise<RunningTarget> {
  if (name === 'gatehouse' || name === 'baseline') return TARGETS[name].start(ctx);
  const m = /^gatehouse-w(\d+)$/.exec(name);
  if (!m) throw new Error(`unknown target ${name}`);
  return gatehouse.start(ctx, Number(m[1]));
}
