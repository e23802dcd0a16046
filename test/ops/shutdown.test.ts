// SIGTERM to `gatehouse serve` under continuous load (8 client_credentials
// loops: half on keep-alive connections, half on a new connection per
// request). Every request the server took gets a complete response; the
// process exits 0 and the port is closed.
//
// "Took" is decided by the server's own access log (each request carries its
// own X-Request-Id): a request it logged must have been answered in full. A
// request it never logged was never taken: refused (ECONNREFUSED, the port is
// closed) or, in the instant of closing, reset before the server read it (a
// keep-alive connection closed while idle as the client reused it, or a
// connection still in the listen backlog). Those happen only after SIGTERM.
//
// Keep-alive connections that stay busy must not keep the server open: a
// response sent once shutdown has begun says `Connection: close`, so that
// the client opens a new connection (refused) for its next request, and the
// server drains by itself instead of cutting connections when its grace
// period ends.
import http from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { openDb } from '../../src/db/client.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/env.ts';
import { baseEnv, errorLines, freePort, killAll, portOpen, sleep, spawnGatehouse, until } from '../server/process.ts';
import { accessLogIds, basicAuth, runLoad, type Outcome } from './load.ts';

const API = 'https://orders.example.com';
/** logged by src/server.ts when it has to cut connections to finish shutting down */
const FORCED = /grace period over/;

async function seedClient(url: string): Promise<{ id: string; secret: string }> {
  const seed = openDb({ url, poolSize: 1 });
  try {
    await createResource(seed.prisma, { identifier: API, scopes: ['orders:read'] });
    const created = await createClient(seed.prisma, { name: 'load', grants: ['client_credentials'], resources: [API], scopes: ['orders:read'] });
    return { id: created.client.id, secret: created.clientSecret! };
  } finally {
    await seed.close();
  }
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function replyOf(req: http.ClientRequest): Promise<Reply> {
  const p = new Promise<Reply>((resolve, reject) => {
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  p.catch(() => {}); // awaited by the caller; no unhandled rejection meanwhile
  return p;
}

describe('SIGTERM under load', () => {
  const databases: TestDatabase[] = [];
  const freshDatabase = async () => {
    const db = await createTestDatabase();
    databases.push(db);
    return db;
  };
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    for (const db of databases) await db.drop();
  });

  it('answers every request it took in full, refuses the rest, and exits 0', async () => {
    const database = await freshDatabase();
    const client = await seedClient(database.url);

    const port = await freePort();
    // LOG_LEVEL=info: the access log (one line per request handled) on stdout
    const proc = spawnGatehouse(['serve'], baseEnv({ ...testEnv(database.url), LOG_LEVEL: 'info', PORT: String(port) }));
    await proc.waitForStdout(/^Gatehouse is running/);

    const load = runLoad(
      {
        port,
        path: '/token',
        headers: { authorization: basicAuth(client.id, client.secret) },
        body: () => new URLSearchParams({ grant_type: 'client_credentials', resource: API }).toString(),
      },
      { loops: 8, keepAlive: (i) => i % 2 === 0, deadlineMs: 30_000 },
    );
    // Under way: some answers in, then a little longer.
    const warmUp = Date.now() + 10_000;
    while (load.outcomes.filter((o) => o.kind === 'answered').length < 40 && Date.now() < warmUp) await sleep(20);
    await sleep(1_000);

    const sigtermAt = Date.now();
    proc.child.kill('SIGTERM');
    const exit = await proc.waitForExit(30_000);
    const stoppedAt = Date.now();
    // loops end on their first refusal; stop the rest (a request in flight finishes)
    load.stop();
    const outcomes = await load.finished;

    const logged = accessLogIds(proc.stdout());
    const byKind = (k: Outcome['kind']) => outcomes.filter((o) => o.kind === k);
    const summary = JSON.stringify({
      sent: outcomes.length,
      answered: byKind('answered').length,
      refused: byKind('refused').length,
      failed: byKind('failed').map((o) => ({ error: o.error, logged: logged.has(o.id), afterSigterm: o.endedAt >= sigtermAt })),
      logged: logged.size,
      answeredAfterSigterm: byKind('answered').filter((o) => o.startedAt < sigtermAt && o.endedAt >= sigtermAt).length,
    });

    expect(exit, proc.describe()).toEqual({ code: 0, signal: null });
    expect(errorLines(proc.stderr()), proc.describe()).toEqual([]);
    expect(proc.stdout(), 'drained by itself, no connection cut at the end of the grace period').not.toMatch(FORCED);
    expect(await portOpen(port)).toBe(false);

    // Every request the server handled was answered in full, with 200.
    const answered = new Map(byKind('answered').map((o) => [o.id, o]));
    for (const [id, status] of logged) {
      expect(answered.has(id), `${id} was handled (status ${status}) but not answered in full: ${summary}`).toBe(true);
      expect(status).toBe(200);
    }
    for (const o of answered.values()) {
      expect(o.status, o.body).toBe(200);
      expect(JSON.parse(o.body!)).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer' });
      expect(logged.get(o.id), `${o.id} answered but not in the access log`).toBe(200);
    }
    // Refused or reset requests were never taken, and only happened once the server was closing.
    for (const o of [...byKind('refused'), ...byKind('failed')]) {
      expect(logged.has(o.id), `a request the server handled failed: ${summary}`).toBe(false);
      expect(o.endedAt, `a request failed before SIGTERM: ${summary}`).toBeGreaterThanOrEqual(sigtermAt);
      expect(o.error, summary).toMatch(/^(ECONNREFUSED|ECONNRESET|EPIPE|socket hang up)$/);
    }
    // The load was real, and went on up to the signal.
    expect(answered.size, summary).toBeGreaterThan(40);
    expect(stoppedAt - sigtermAt).toBeLessThan(30_000);
    console.log(`shutdown under load: ${summary}`);
  }, 90_000);

  it('a keep-alive connection busy at SIGTERM gets its answer with Connection: close, and is not reused', async () => {
    const database = await freshDatabase();
    const client = await seedClient(database.url);
    const port = await freePort();
    const proc = spawnGatehouse(['serve'], baseEnv({ ...testEnv(database.url), LOG_LEVEL: 'warn', PORT: String(port) }));
    await proc.waitForStdout(/^Gatehouse is running/);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const form = new URLSearchParams({ grant_type: 'client_credentials', resource: API }).toString();
      const request = () =>
        http.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/token',
          agent,
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(client.id, client.secret) },
        });
      // the connection is open and has served a request already
      const first = request();
      const firstReply = replyOf(first);
      first.end(form);
      expect((await firstReply).headers.connection).toBe('keep-alive');

      // A request in flight on it (body still coming) when SIGTERM arrives.
      const req = request();
      req.setHeader('transfer-encoding', 'chunked');
      req.setHeader('expect', '100-continue');
      const reply = replyOf(req);
      const continued = new Promise<void>((resolve) => req.once('continue', () => resolve()));
      req.flushHeaders();
      await Promise.race([continued, reply]);
      req.write(form.slice(0, 10));
      proc.child.kill('SIGTERM');
      await until('the server to stop accepting connections', async () => !(await portOpen(port)));
      req.end(form.slice(10));
      const res = await reply;
      expect(res.status, res.body).toBe(200);
      expect(res.headers.connection, 'the client is told not to reuse the connection').toBe('close');

      // The next request cannot go on the old connection: nothing listens any more.
      const next = request();
      const nextReply = replyOf(next);
      next.end(form);
      await expect(nextReply).rejects.toMatchObject({ code: 'ECONNREFUSED' });

      const exit = await proc.waitForExit(20_000);
      expect(exit, proc.describe()).toEqual({ code: 0, signal: null });
      expect(proc.stdout()).not.toMatch(FORCED);
    } finally {
      agent.destroy();
    }
  }, 60_000);
});
