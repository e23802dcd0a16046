// kill -9 of one of two `gatehouse serve` instances under load. Both run on
// one database. People got refresh tokens through the real code flow (login
// page, consent, code exchange) on either instance. Instance A is busy
// rotating refresh tokens and issuing client_credentials tokens, B is busy
// too, when A is SIGKILLed. Then:
//
// - B served every one of its requests, before, during and after the kill;
// - every refresh token a client holds (the last one it received) works at
//   B exactly once, then it is reuse (invalid_grant, the grant and the
//   successor die). That includes a token A was rotating when it died, even
//   if A had already marked it used (and perhaps stored its successor): the
//   answer never left A, so presenting it again is a retry, not reuse
//   (src/oidc/refresh-rotation.ts); the successor nobody received is dropped;
// - no account, grant or refresh token row is lost or left inconsistent.
import supertest from 'supertest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/store.ts';
import { createClient } from '../../src/clients/store.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { createResource } from '../../src/resources/store.ts';
import type { TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { testEnv } from '../helpers/env.ts';
import { baseEnv, freePort, killAll, sleep, spawnGatehouse, type Proc } from '../server/process.ts';
import { Browser, PASSWORD, REDIRECT_URI, codeFlowTokens } from '../sso/flow.ts';
import { basicAuth, post, runLoad, type Outcome, type Target } from './load.ts';

const ISSUER = 'http://localhost:3000';
const API = 'https://orders.example.com';
const OFFLINE = { scope: 'openid email offline_access', prompt: 'consent' };
/** users whose tokens A rotates under load, users whose tokens B rotates, users left idle */
const BUSY_ON_A = 4;
const BUSY_ON_B = 2;
const IDLE = 3;

interface Instance {
  proc: Proc;
  port: number;
  /** enough of a TestApp for test/sso/flow.ts: requests go to this instance */
  app: TestApp;
}

async function startInstance(databaseUrl: string): Promise<Instance> {
  const port = await freePort();
  const proc = spawnGatehouse(['serve'], baseEnv({ ...testEnv(databaseUrl), LOG_LEVEL: 'warn', PORT: String(port), ISSUER, LOGIN_IP_MAX_FAILURES: '1000' }));
  await proc.waitForStdout(/^Gatehouse is running/, 60_000);
  const app = { request: supertest(`http://127.0.0.1:${port}`), config: { issuer: ISSUER } } as unknown as TestApp;
  return { proc, port, app };
}

interface User {
  n: number;
  id: string;
  email: string;
  /** the last refresh token this user's client received */
  refreshToken: string;
  /** a rotation of refreshToken was sent and never answered */
  inFlight: boolean;
}

describe('kill -9 of one of two instances under load', () => {
  let database: TestDatabase | undefined;
  let db: DbHandle | undefined;
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await db?.close();
    await database?.drop();
  });

  it('loses no account, grant or refresh token; B keeps serving', async () => {
    database = await createTestDatabase();
    db = openDb({ url: database.url, poolSize: 2 });
    const prisma = db.prisma;
    await createResource(prisma, { identifier: API, scopes: ['orders:read'] });
    const cc = await createClient(prisma, { name: 'machine', grants: ['client_credentials'], resources: [API], scopes: ['orders:read'] });
    const machine = { id: cc.client.id, secret: cc.clientSecret! };
    const webCreated = await createClient(prisma, {
      name: 'Web',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
      firstParty: true,
    });
    const web = { id: webCreated.client.id, secret: webCreated.clientSecret! };

    const [a, b] = await Promise.all([startInstance(database.url), startInstance(database.url)]);

    // People sign in through the pages of either instance and get refresh tokens.
    const users: User[] = [];
    for (let n = 0; n < BUSY_ON_A + BUSY_ON_B + IDLE; n++) {
      const email = `user${n}@example.com`;
      const account = await createAccount(prisma, { email, password: PASSWORD, emailVerified: true });
      const via = n % 2 === 0 ? a : b;
      const tokens = await codeFlowTokens(new Browser(via.app), web, OFFLINE, { email });
      expect(tokens.refresh_token, JSON.stringify(tokens)).toEqual(expect.any(String));
      users.push({ n, id: account.id, email, refreshToken: tokens.refresh_token as string, inFlight: false });
    }
    const busyOnA = users.slice(0, BUSY_ON_A);
    const busyOnB = users.slice(BUSY_ON_A, BUSY_ON_A + BUSY_ON_B);
    const idle = users.slice(BUSY_ON_A + BUSY_ON_B);
    // idle users' tokens were last rotated by A, before the load
    for (const u of idle) {
      const o = await post(refreshTarget(a.port, u), false);
      expect(o.status, o.body).toBe(200);
      u.refreshToken = (JSON.parse(o.body!) as { refresh_token: string }).refresh_token;
    }
    const accountsBefore = await prisma.account.findMany({ orderBy: { id: 'asc' } });
    const grantIds = await grantsOf(prisma, users);
    expect(new Set(grantIds.values()).size).toBe(users.length);

    function refreshTarget(port: number, u: User): Target {
      return {
        port,
        path: '/token',
        headers: { authorization: basicAuth(web.id, web.secret) },
        body: () => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: u.refreshToken }).toString(),
      };
    }
    const ccTarget = (port: number): Target => ({
      port,
      path: '/token',
      headers: { authorization: basicAuth(machine.id, machine.secret) },
      body: () => new URLSearchParams({ grant_type: 'client_credentials', resource: API }).toString(),
    });

    /** a loop rotating one user's refresh token on `port` until stopped or the first failure */
    const rotations = (port: number, u: User, until: () => boolean) =>
      (async () => {
        const outcomes: Outcome[] = [];
        while (!until()) {
          u.inFlight = true;
          const o = await post(refreshTarget(port, u), false);
          outcomes.push(o);
          if (o.kind !== 'answered') break; // A is gone: the answer (if any) never came
          u.inFlight = false;
          if (o.status !== 200) break;
          u.refreshToken = (JSON.parse(o.body!) as { refresh_token: string }).refresh_token;
        }
        return outcomes;
      })();

    let stopA = false;
    let stopB = false;
    const aRotations = busyOnA.map((u) => rotations(a.port, u, () => stopA));
    const bRotations = busyOnB.map((u) => rotations(b.port, u, () => stopB));
    const aMachines = runLoad(ccTarget(a.port), { loops: 2, keepAlive: () => true, deadlineMs: 30_000 });
    const bMachines = runLoad(ccTarget(b.port), { loops: 2, keepAlive: () => true, deadlineMs: 30_000 });

    // Let the load run, then kill A in the middle of it.
    await sleep(1_500);
    const killedAt = Date.now();
    a.proc.child.kill('SIGKILL');
    expect(await a.proc.waitForExit(10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    // B goes on serving its load for a while after the kill.
    await sleep(1_000);
    stopA = true;
    stopB = true;
    aMachines.stop();
    bMachines.stop();
    const aOutcomes = (await Promise.all(aRotations)).flat().concat(await aMachines.finished);
    const bOutcomes = (await Promise.all(bRotations)).flat().concat(await bMachines.finished);

    // A was under load and died under it; B answered everything, before and after the kill.
    const answeredByA = aOutcomes.filter((o) => o.kind === 'answered');
    expect(answeredByA.length).toBeGreaterThan(10);
    expect(answeredByA.every((o) => o.status === 200), JSON.stringify(answeredByA.filter((o) => o.status !== 200))).toBe(true);
    expect(aOutcomes.filter((o) => o.kind !== 'answered').every((o) => o.endedAt >= killedAt)).toBe(true);
    const notOk = bOutcomes.filter((o) => o.kind !== 'answered' || o.status !== 200);
    expect(notOk, JSON.stringify(notOk.slice(0, 3))).toEqual([]);
    expect(bOutcomes.some((o) => o.startedAt > killedAt)).toBe(true);

    // Accounts: all there, unchanged.
    expect(await prisma.account.findMany({ orderBy: { id: 'asc' } })).toEqual(accountsBefore);

    // Rows, as A left them: each user's grant is there, of their account and
    // the client; its refresh tokens are its own; at most one is unused, and
    // the token the client holds is that one — or, when A died rotating it,
    // used, with the unused one (if A got to store it) newer.
    const halfDone: number[] = [];
    for (const u of users) {
      const grantId = grantIds.get(u.id)!;
      const grant = await prisma.oidcPayload.findUnique({ where: { model_id: { model: 'Grant', id: grantId } } });
      expect(grant, `user ${u.n}: grant lost`).not.toBeNull();
      expect(grant!.payload).toMatchObject({ accountId: u.id, clientId: web.id });
      const tokens = await prisma.oidcPayload.findMany({ where: { model: 'RefreshToken', grantId } });
      for (const t of tokens) expect(t.payload).toMatchObject({ accountId: u.id, clientId: web.id, grantId });
      const unused = tokens.filter((t) => t.consumedAt === null);
      expect(unused.length, `user ${u.n}: more than one unused refresh token`).toBeLessThanOrEqual(1);
      const held = tokens.find((t) => t.id === u.refreshToken);
      expect(held, `user ${u.n}: the refresh token the client holds is gone`).toBeDefined();
      if (held!.consumedAt === null) continue;
      expect(u.inFlight, `user ${u.n}: a token the client holds was used, but not by a request of its own`).toBe(true);
      if (unused.length === 0) halfDone.push(u.n); // A died between marking it used and storing its successor
    }

    // Each user's last refresh token at B: once, and only once — whether A
    // had left it unused, or used it as it died (then this is its one retry).
    const report: string[] = [];
    let retried = 0;
    for (const u of users) {
      const grantId = grantIds.get(u.id)!;
      const row = await prisma.oidcPayload.findUniqueOrThrow({ where: { model_id: { model: 'RefreshToken', id: u.refreshToken } } });
      const usedByA = row.consumedAt !== null;
      const what = usedByA
        ? `rotated by A as it died${halfDone.includes(u.n) ? ' before storing the successor' : ' (answer lost)'}`
        : u.inFlight
          ? 'rotation in flight at the kill: A had not used it'
          : 'at rest';
      const first = await post(refreshTarget(b.port, u), false);
      expect(first.status, `user ${u.n} (${what}): the refresh token the client holds does not work: ${first.body}`).toBe(200);
      const next = (JSON.parse(first.body!) as { refresh_token: string }).refresh_token;
      // after the retry, the grant has one unused refresh token: the one just received
      const unused = await prisma.oidcPayload.findMany({ where: { model: 'RefreshToken', grantId, consumedAt: null } });
      expect(unused.map((t) => t.id), `user ${u.n} (${what}): unused refresh tokens after it`).toEqual([next]);
      const reuse = await post(refreshTarget(b.port, u), false);
      expect(reuse.status, `user ${u.n} (${what}): a refresh token worked twice`).toBe(400);
      expect(JSON.parse(reuse.body!)).toMatchObject({ error: 'invalid_grant' });
      // reuse detection revoked the grant: the successor is dead too
      const successor = await post(refreshTarget(b.port, { ...u, refreshToken: next }), false);
      expect(successor.status).toBe(400);
      expect(JSON.parse(successor.body!)).toMatchObject({ error: 'invalid_grant' });
      if (usedByA) retried++;
      report.push(`user ${u.n}: worked once (${what})`);
    }
    // Nobody whose token was at rest when A died was in flight.
    for (const u of [...idle, ...busyOnB]) expect(u.inFlight).toBe(false);
    const inFlight = users.filter((u) => u.inFlight).length;
    console.log(
      `kill -9 under load: A answered ${answeredByA.length}, B answered ${bOutcomes.length}; ` +
        `${inFlight} rotation(s) in flight at the kill, ${retried} of them already used by A (retried at B), ${halfDone.length} half done; ` +
        report.join('; '),
    );
  }, 120_000);
});

/** user id → the id of the grant their refresh tokens belong to (one per user) */
async function grantsOf(prisma: DbHandle['prisma'], users: User[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const u of users) {
    const row = await prisma.oidcPayload.findUniqueOrThrow({ where: { model_id: { model: 'RefreshToken', id: u.refreshToken } } });
    out.set(u.id, row.grantId!);
  }
  return out;
}
