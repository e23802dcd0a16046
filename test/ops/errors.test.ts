// The pieces that turn an outage into a clean 503 (src/http/errors.ts,
// src/http/deadline.ts, put in order by src/http/edge.ts), on a small Koa app with real database errors: a
// server that refuses connections, a statement timeout, and, for contrast,
// an error that is not an outage (a bug stays a 500).
import Koa from 'koa';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { edge } from '../../src/http/edge.ts';
import { isDatabaseUnavailable } from '../../src/http/errors.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { freePort, sleep } from '../server/process.ts';

describe('database outage errors → 503', () => {
  let database: TestDatabase;
  let db: DbHandle;
  let nowhere: DbHandle;
  let lateFailure: Promise<void> | undefined;

  const app = new Koa();
  app.silent = true;
  app.use(edge({ logger: createLogger('silent'), hsts: false, deadlineMs: 300 }));
  app.use(async (ctx) => {
    switch (ctx.path) {
      case '/refused':
        await nowhere.prisma.$queryRaw`SELECT 1`;
        break;
      case '/slow-statement':
        await db.prisma.$queryRaw`SELECT pg_sleep(2)`;
        break;
      case '/bug':
        await db.prisma.$queryRaw`SELECT * FROM no_such_table`;
        break;
      case '/late': {
        // sets a cookie, then takes longer than the deadline, then fails
        ctx.cookies.set('half', 'done');
        ctx.set('Location', '/somewhere');
        lateFailure = sleep(600).then(() => {
          ctx.status = 302;
          ctx.body = 'too late';
          throw new Error('failed after the answer');
        });
        await lateFailure;
        break;
      }
      default:
        ctx.body = { ok: true };
    }
  });
  const request = supertest(app.callback());

  beforeAll(async () => {
    database = await createTestDatabase();
    db = openDb({ url: database.url, poolSize: 2, statementTimeoutMs: 100 });
    nowhere = openDb({ url: `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`, poolSize: 1, connectTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await nowhere?.close();
    await db?.close();
    await database?.drop();
  });

  it('an unreachable database: 503 temporarily_unavailable with Retry-After, no internals', async () => {
    const res = await request.get('/refused').set('Accept', 'application/json');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect(res.text).not.toMatch(/prisma|ECONNREFUSED|Invalid `/i);
    const page = await request.get('/refused').set('Accept', 'text/html');
    expect(page.status).toBe(503);
    expect(page.type).toBe('text/html');
  });

  it('a statement timeout: 503 as well', async () => {
    const res = await request.get('/slow-statement');
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('temporarily_unavailable');
  });

  it('a database error that is not an outage stays a 500 server_error', async () => {
    const res = await request.get('/bug');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'server_error', error_description: 'internal error' });
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('the request deadline: 503 with only the headers set before it; the late work is dropped', async () => {
    const res = await request.get('/late').set('X-Request-Id', 'req-1');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['x-request-id']).toBe('req-1');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers.location).toBeUndefined();
    expect(res.body.error).toBe('temporarily_unavailable');
    // the late failure happens after the answer and goes nowhere (no unhandled rejection)
    await expect(lateFailure).rejects.toThrow('failed after the answer');
    expect((await request.get('/')).body).toEqual({ ok: true });
  });

  it('isDatabaseUnavailable looks through the wrappers, and only at outages', async () => {
    const refused = await nowhere.prisma.$queryRaw`SELECT 1`.catch((e: unknown) => e);
    expect(isDatabaseUnavailable(refused)).toBe(true);
    const bug = await db.prisma.$queryRaw`SELECT * FROM no_such_table`.catch((e: unknown) => e);
    expect(isDatabaseUnavailable(bug)).toBe(false);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Cannot read properties of undefined'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});
