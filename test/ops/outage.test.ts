// PostgreSQL outages, as one Gatehouse instance sees them through a TCP proxy
// the test can break (test/ops/proxy.ts; the shared database server itself is
// never touched):
//
// - down: sessions terminated by the server, connections reset, new ones
//   refused (a restart, a crash);
// - hang: nothing answers, nothing fails (a partition, a frozen server) until
//   it heals;
// - failover: the old connections stay silent for good, new ones work.
//
// In each: /healthz stays 200, /readyz says 503 quickly, a request that needs
// the database gets a clean 503 (`temporarily_unavailable`, Retry-After, no
// internals) within the configured timeouts, nothing crashes; afterwards
// everything resumes by itself, the change feed included.
//
// What works without the database: /jwks and discovery (keys are in memory),
// /metrics, and client_credentials for a client already in the cache (its JWT access
// token is not stored). A client not in the cache, or anything with a
// session or a grant, needs the database.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/clients/store.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createResource } from '../../src/resources/store.ts';
import { startHttpServer, type RunningServer } from '../../src/server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/env.ts';
import { sleep, until } from '../server/process.ts';
import { startDbProxy, type DbProxy } from './proxy.ts';

const API = 'https://orders.example.com';
const REDIRECT = 'https://app.example.com/callback';
/** configured for this test: short, so that outages are quick to observe */
const STATEMENT_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 3_000;
/** a request not answered this long after REQUEST_TIMEOUT_MS is a hang */
const SLACK_MS = 1_500;
/** PRODUCT.md: client changes reach every instance within one second */
const PROPAGATION_MS = 1_000;

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown> | undefined;
}

describe('database outage', () => {
  let database: TestDatabase;
  let proxy: DbProxy;
  /** a connection that bypasses the proxy: "another instance" making changes */
  let direct: DbHandle;
  let server: RunningServer;
  const logLines: string[] = [];
  const secrets: Record<string, string> = {};
  let clientCount = 0;

  /** GET/POST on the instance; fails the test if no answer comes within the deadline */
  const call = async (path: string, init: RequestInit = {}, deadlineMs = REQUEST_TIMEOUT_MS + SLACK_MS): Promise<Answer> => {
    let res: Response;
    try {
      res = await fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(deadlineMs) });
    } catch (err) {
      throw new Error(`${init.method ?? 'GET'} ${path}: no answer within ${deadlineMs} ms (${(err as Error).message})`);
    }
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const token = (id: string) =>
    call('/token', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${id}:${secrets[id]}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API }).toString(),
    });
  const authorize = (clientId: string) =>
    call(`/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })}`, {
      headers: { accept: 'text/html' },
      redirect: 'manual',
    });
  const newClient = async (grant: 'client_credentials' | 'authorization_code') => {
    const id = `c${++clientCount}-${grant === 'client_credentials' ? 'cc' : 'web'}`;
    const created = await createClient(
      direct.prisma,
      grant === 'client_credentials'
        ? { id, name: id, grants: ['client_credentials'], resources: [API], scopes: ['orders:read'] }
        : { id, name: id, grants: ['authorization_code'], redirectUris: [REDIRECT], public: true },
    );
    if (created.clientSecret) secrets[id] = created.clientSecret;
    return id;
  };

  /** a clean "try again later": 503, Retry-After, an OAuth error or an HTML page, no internals */
  const expectUnavailable = (a: Answer, what: string) => {
    expect.soft(a.status, `${what}: ${a.text.slice(0, 300)}`).toBe(503);
    expect.soft(String(a.headers.get('retry-after')), what).toMatch(/^\d+$/);
    expect.soft(a.text, what).not.toMatch(/\bat .*\.[jt]s:\d+|node_modules|prisma|ECONN|Invalid `/i);
    if (a.json) expect.soft(a.json.error, what).toBe('temporarily_unavailable');
    else expect.soft(a.headers.get('content-type'), what).toMatch(/^text\/html/);
  };

  const expectLiveButNotReady = async () => {
    expect((await call('/healthz', {}, 1_000)).status).toBe(200);
    // /readyz waits at most 1 s for the database
    const ready = await call('/readyz', {}, 2_000);
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'not ready', database: 'down' });
  };

  /**
   * Whether a client change made elsewhere reaches the instance within a
   * second: a client the instance has just cached is disabled through
   * another connection, and the instance must refuse it.
   */
  const changeReachesInstance = async (): Promise<boolean> => {
    const probe = await newClient('client_credentials');
    if ((await token(probe)).status !== 200) return false; // cached now
    await updateClient(direct.prisma, probe, { disabled: true });
    const deadline = Date.now() + PROPAGATION_MS;
    for (;;) {
      if ((await token(probe)).status === 401) return true;
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
  };

  /**
   * Everything works again by itself within `ms`: readiness, requests that
   * need the database, and the change feed. A reconnecting feed empties the
   * caches once, which alone could let one probe pass: two in a row must.
   */
  const expectRecovered = async (ms: number) => {
    await until('/readyz 200', async () => (await call('/readyz', {}, 2_000)).status === 200, ms);
    const cold = await newClient('client_credentials');
    expect((await token(cold)).status).toBe(200);
    const web = await newClient('authorization_code');
    expect((await authorize(web)).status).toBe(303);
    let passed = 0;
    await until('client changes to reach the instance again', async () => {
      passed = (await changeReachesInstance()) ? passed + 1 : 0;
      return passed >= 2;
    }, ms);
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    proxy = await startDbProxy(database.url);
    direct = openDb({ url: database.url, poolSize: 2 });
    const config = loadConfig(
      testEnv(proxy.url, {
        PORT: '0',
        HOST: '127.0.0.1',
        DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
        REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      }),
    );
    const logger = createLogger('warn', { write: (line: string) => void logLines.push(line) });
    server = await startHttpServer(config, proxy.url, logger);
    await createResource(direct.prisma, { identifier: API, scopes: ['orders:read'] });
  });

  beforeEach(async () => {
    // a failed test must not leave the next one without a database
    proxy.set('up');
    await until('/readyz 200', async () => (await call('/readyz', {}, 2_000)).status === 200, 20_000);
  }, 30_000);

  afterAll(async () => {
    await withDeadline(server?.shutdown() ?? Promise.resolve(), 10_000, 'shutdown').catch(() => {});
    await proxy?.close();
    await direct?.close();
    await database?.drop();
  });

  it('PostgreSQL restarts (sessions terminated, then connections refused): 503 at once, then resumes by itself', async () => {
    const warm = await newClient('client_credentials');
    const cold = await newClient('client_credentials');
    const web = await newClient('authorization_code');
    expect((await token(warm)).status).toBe(200); // now cached
    // a sign-in under way: the login page of its interaction, with its cookies
    const started = await authorize(await newClient('authorization_code'));
    expect(started.status).toBe(303);
    const loginPage = started.headers.get('location')!;
    const cookies = started.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    expect((await call(loginPage, { headers: { accept: 'text/html', cookie: cookies } })).status).toBe(200);

    // As in a restart: the server ends every session (57P01), then refuses connections.
    await direct.prisma.$queryRaw`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
    proxy.set('down');
    await expectLiveButNotReady();
    expectUnavailable(await token(cold), 'client_credentials for a client not in the cache');
    expectUnavailable(await authorize(web), '/auth for a client not in the cache');
    // The login page renders its own errors: a clean 503 page, no internals.
    const login = await call(loginPage, { headers: { accept: 'text/html', cookie: cookies } });
    expect(login.status).toBe(503);
    expect(login.headers.get('retry-after')).toBeTruthy();
    expect(login.text).not.toMatch(/\bat .*\.[jt]s:\d+|node_modules|prisma|ECONN|Invalid `/i);
    // no database needed:
    expect((await token(warm)).status, 'client_credentials for a cached client').toBe(200);
    expect((await call('/jwks')).status).toBe(200);
    expect((await call('/.well-known/openid-configuration')).status).toBe(200);
    expect((await call('/metrics')).status).toBe(200); // gauges that need the database keep their last value

    proxy.set('up');
    await expectRecovered(10_000);
  });

  it('network to PostgreSQL hangs: answers within the request timeout, resumes when it heals', async () => {
    const cold = await newClient('client_credentials');
    const web = await newClient('authorization_code');
    expect((await call('/readyz')).status).toBe(200);

    proxy.set('hang');
    await expectLiveButNotReady();
    // More requests than the pool has connections, all at once.
    const answers = await Promise.all([
      ...Array.from({ length: 12 }, () => call('/readyz', {}, 2_000)),
      token(cold),
      authorize(web),
      token(cold),
    ]);
    for (const a of answers.slice(0, 12)) expect(a.status).toBe(503);
    for (const a of answers.slice(12)) expectUnavailable(a, 'a request needing the database');

    // healed: the same connections carry on
    proxy.set('up');
    await expectRecovered(10_000);
  });

  it('failover: the old connections never answer again; the pool and the change feed replace them', async () => {
    const web = await newClient('authorization_code');
    // Fill the pool: every one of its connections is open when the network goes.
    const pool = server.gatehouse.db.pool;
    await Promise.all(Array.from({ length: server.gatehouse.config.dbPoolSize }, () => pool.query('SELECT pg_sleep(0.1)')));
    expect(pool.totalCount).toBe(server.gatehouse.config.dbPoolSize);

    proxy.set('hang');
    // every pooled connection gets a query that will never be answered
    const stuck = await Promise.all(Array.from({ length: 12 }, () => call('/readyz', {}, 2_000)));
    expect(stuck.map((a) => a.status)).toEqual(Array.from({ length: 12 }, () => 503));
    expectUnavailable(await authorize(web), '/auth while the network hangs');

    proxy.failover();
    // Bounded by the timeouts (statement + connection), not by TCP's hours.
    await expectRecovered(20_000);
  }, 60_000);

  it('nothing crashed: failures were logged as warnings or errors, none as fatal', () => {
    const levels = logLines.map((l) => (JSON.parse(l) as { level: number }).level);
    expect(levels.filter((l) => l >= 60)).toEqual([]);
    expect(levels.some((l) => l >= 40)).toBe(true);
  });

  it('a graceful shutdown still completes after all that', async () => {
    await withDeadline(server.shutdown(), 10_000, 'shutdown');
    expect(server.server.listening).toBe(false);
  });
});
