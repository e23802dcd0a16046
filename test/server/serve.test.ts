// `gatehouse serve` as a real child process on a real port: start-up output,
// the endpoints over real HTTP, SIGTERM (drain, exit 0), restarts, and every
// start-up failure as one line on stderr with a non-zero exit.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/env.ts';
import { baseEnv, errorLines, freePort, killAll, portOpen, spawnGatehouse, until, type Proc } from './process.ts';

const ISSUER = 'https://id.gatehouse.test';
const BANNER = /^Gatehouse is running\. Issuer: /;

const databases: TestDatabase[] = [];
async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

async function signingKids(url: string): Promise<string[]> {
  const rows = await query<{ kid: string }>(url, 'SELECT kid FROM signing_keys ORDER BY kid');
  return rows.map((r) => r.kid);
}

/** `gatehouse serve` on `databaseUrl`, listening on a free port of 127.0.0.1. */
async function serve(databaseUrl: string, extra: Record<string, string | undefined> = {}): Promise<{ proc: Proc; port: number; base: string }> {
  const port = await freePort();
  const proc = spawnGatehouse(['serve'], baseEnv({ ...testEnv(databaseUrl), LOG_LEVEL: 'warn', ISSUER, PORT: String(port), ...extra }));
  return { proc, port, base: `http://127.0.0.1:${port}` };
}

async function started(databaseUrl: string, extra: Record<string, string | undefined> = {}) {
  const s = await serve(databaseUrl, extra);
  await s.proc.waitForStdout(BANNER);
  return s;
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function jwksKids(base: string): Promise<string[]> {
  const { status, body } = await getJson(`${base}/jwks`);
  expect(status).toBe(200);
  return (body.keys as { kid: string }[]).map((k) => k.kid).sort();
}

/** A failed start: exit code, and Gatehouse's stderr lines. */
async function failedStart(proc: Proc): Promise<{ code: number | null; lines: string[] }> {
  const exit = await proc.waitForExit(20_000);
  expect(exit.signal, proc.describe()).toBeNull();
  const lines = errorLines(proc.stderr());
  for (const l of lines) expect(l, 'no stack trace').not.toMatch(/^\s+at /);
  expect(lines, proc.describe()).toHaveLength(1);
  expect(lines[0]).toMatch(/^gatehouse: /);
  return { code: exit.code, lines };
}

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  for (const db of databases) await db.drop();
});

describe('gatehouse serve (child process, DATABASE_URL)', () => {
  it('prints the issuer, serves discovery, JWKS and health over HTTP, and exits 0 on SIGTERM', async () => {
    const db = await freshDatabase();
    const { proc, port, base } = await serve(db.url);
    const line = await proc.waitForStdout(BANNER);
    expect(line).toBe(`Gatehouse is running. Issuer: ${ISSUER}`);

    const discovery = await getJson(`${base}/.well-known/openid-configuration`);
    expect(discovery.status).toBe(200);
    expect(discovery.body.issuer).toBe(ISSUER);
    expect(discovery.body.jwks_uri).toBe(`${ISSUER}/jwks`);
    expect(discovery.body.token_endpoint).toBe(`${ISSUER}/token`);

    const kids = await jwksKids(base);
    expect(kids).toHaveLength(3);
    expect(kids).toEqual(await signingKids(db.url));

    expect(await getJson(`${base}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
    const ready = await getJson(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', database: 'up' });

    proc.child.kill('SIGTERM');
    const exit = await proc.waitForExit(20_000);
    expect(exit, proc.describe()).toEqual({ code: 0, signal: null });
    expect(errorLines(proc.stderr()), proc.describe()).toEqual([]);
    expect(await portOpen(port)).toBe(false);
  });

  it('keeps the same signing keys across a restart on the same database', async () => {
    const db = await freshDatabase();
    const first = await started(db.url);
    const kids = await jwksKids(first.base);
    expect(kids).toHaveLength(3);
    first.proc.child.kill('SIGTERM');
    expect((await first.proc.waitForExit()).code, first.proc.describe()).toBe(0);

    const second = await started(db.url);
    expect(await jwksKids(second.base)).toEqual(kids);
    expect(await signingKids(db.url)).toEqual(kids);
    second.proc.child.kill('SIGTERM');
    expect((await second.proc.waitForExit()).code, second.proc.describe()).toBe(0);
  });

  it('SIGTERM lets an in-flight request finish with a complete response, then exits 0', async () => {
    const db = await freshDatabase();
    const { proc, port } = await started(db.url);

    // A token request whose body arrives slowly. `Expect: 100-continue` makes
    // the server confirm that it has read the headers: the request is in flight.
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/token',
      agent: false,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'transfer-encoding': 'chunked',
        expect: '100-continue',
      },
    });
    const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      req.once('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.once('error', reject);
      });
      req.once('error', reject);
    });
    response.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
    const continued = new Promise<void>((resolve) => req.once('continue', () => resolve()));
    req.flushHeaders();
    await Promise.race([continued, response]);
    req.write('grant_type=client_credentials&client_id=no-such-');

    proc.child.kill('SIGTERM');
    // The server has begun shutting down once it stops accepting connections.
    await until('the server to stop accepting connections', async () => !(await portOpen(port)));
    expect(proc.child.exitCode, 'still running while the request is open').toBeNull();

    req.end('client&client_secret=wrong');
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([
      response,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no response within 15 s')), 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.connection).toBe('close');
    expect((JSON.parse(res.body) as { error?: string }).error).toBe('invalid_client');

    const exit = await proc.waitForExit(20_000);
    expect(exit, proc.describe()).toEqual({ code: 0, signal: null });
  });
});

describe('gatehouse serve start-up failures: one line on stderr, non-zero exit', () => {
  const unreachable = 'postgresql://postgres@127.0.0.1:1/x';

  it('PORT=eighty', async () => {
    const { proc } = await serve(unreachable, { PORT: 'eighty' });
    const { code, lines } = await failedStart(proc);
    expect(code).not.toBe(0);
    expect(lines[0]).toMatch(/PORT/);
  });

  it('NODE_ENV=production without secrets', async () => {
    const { proc } = await serve(unreachable, { NODE_ENV: 'production', COOKIE_SECRETS: undefined, KEY_ENCRYPTION_KEY: undefined });
    const { code, lines } = await failedStart(proc);
    expect(code).not.toBe(0);
    expect(lines[0]).toMatch(/NODE_ENV=production/);
    expect(lines[0]).toMatch(/COOKIE_SECRETS/);
    expect(lines[0]).toMatch(/KEY_ENCRYPTION_KEY/);
  });

  it('KEY_ENCRYPTION_KEY of the wrong length', async () => {
    const { proc } = await serve(unreachable, { KEY_ENCRYPTION_KEY: randomBytes(16).toString('base64') });
    const { code, lines } = await failedStart(proc);
    expect(code).not.toBe(0);
    expect(lines[0]).toMatch(/KEY_ENCRYPTION_KEY/);
  });

  it('an unreachable database fails fast instead of hanging', async () => {
    const { proc } = await serve(unreachable);
    const { code, lines } = await failedStart(proc); // bounded: fails the test after 20 s
    expect(code).not.toBe(0);
    expect(lines[0]).toMatch(/database/);
    expect(lines[0]).toContain('127.0.0.1:1');
  });

  it('a wrong KEY_ENCRYPTION_KEY for existing keys is refused and creates no keys', async () => {
    const db = await freshDatabase();
    const first = await started(db.url, { KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
    first.proc.child.kill('SIGTERM');
    expect((await first.proc.waitForExit()).code, first.proc.describe()).toBe(0);
    const before = await signingKids(db.url);
    expect(before).toHaveLength(3);

    const { proc } = await serve(db.url, { KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
    const { code, lines } = await failedStart(proc);
    expect(code).not.toBe(0);
    expect(lines[0]).toMatch(/KEY_ENCRYPTION_KEY/);
    expect(await signingKids(db.url)).toEqual(before);
  });

  it('a port already in use is named', async () => {
    const db = await freshDatabase();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const { proc } = await serve(db.url, { PORT: String(port) });
      const { code, lines } = await failedStart(proc);
      expect(code).not.toBe(0);
      expect(lines[0]).toMatch(new RegExp(`port ${port}\\b`));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('a half-applied migration stops start-up and nothing is written', async () => {
    const db = await freshDatabase();
    await query(
      db.url,
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
       VALUES ($1, $2, '20990101000000_half_applied', now(), NULL, 0)`,
      [randomBytes(16).toString('hex'), 'f'.repeat(64)],
    );
    const { proc } = await serve(db.url);
    const { code, lines } = await failedStart(proc);
    expect(code).not.toBe(0);
    expect(lines[0]).toMatch(/20990101000000_half_applied/);
    expect(await signingKids(db.url)).toEqual([]);
  });
});
