// A rotated refresh token whose answer never left the server may be presented
// once more, as a retry (src/oidc/refresh-rotation.ts); a rotated token whose
// answer was delivered stays strictly single-use.
//
// "The answer never left": the real app serves a real rotation, but the
// server destroys the connection where it would have written the answer, as
// an instance killed between rotating and answering does. The half-done case
// (the instance died after marking the token used, before storing its
// successor) is the adapter's consume() alone.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, basic, codeFlowTokens, createUser, createWebClient, refresh, type TestClient } from './flow.ts';

const OFFLINE = { scope: 'openid email offline_access', prompt: 'consent' };

interface Chain {
  grantId: string;
  first: string;
}

describe('refresh token retry after a lost answer', () => {
  let t: TestApp;
  let web: TestClient;
  let spa: TestClient;
  let other: TestClient;
  /** serves the same app, but every answer is lost: the connection is destroyed instead */
  let losing: http.Server;
  let n = 0;

  const prisma = () => t.gatehouse.db.prisma;
  const row = (id: string) => prisma().oidcPayload.findUnique({ where: { model_id: { model: 'RefreshToken', id } } });
  const unused = (grantId: string) => prisma().oidcPayload.findMany({ where: { model: 'RefreshToken', grantId, consumedAt: null } });
  const grantAlive = async (grantId: string) => (await prisma().oidcPayload.findUnique({ where: { model_id: { model: 'Grant', id: grantId } } })) !== null;

  /** a person signs in to `client` and gets a refresh token */
  async function chain(client: TestClient = web): Promise<Chain> {
    const email = `person${++n}@example.com`;
    await createUser(t, email);
    const tokens = await codeFlowTokens(new Browser(t), client, OFFLINE, { email });
    const first = tokens.refresh_token as string;
    const r = await row(first);
    return { grantId: r!.grantId!, first };
  }

  /** a real rotation of `rt` whose answer is lost; returns the successor the server stored */
  async function loseAnswer(client: TestClient, rt: string): Promise<string> {
    const req = supertest(losing).post('/token').type('form');
    if (client.secret) req.set('Authorization', basic(client.id, client.secret));
    const form = { grant_type: 'refresh_token', refresh_token: rt, ...(client.secret ? {} : { client_id: client.id }) };
    await expect(req.send(form)).rejects.toThrow(/socket hang up|ECONNRESET/);
    const used = await row(rt);
    expect(used?.consumedAt, 'the lost rotation marked the token used').not.toBeNull();
    expect(used?.deliveredAt).toBeNull();
    const successors = (await unused(used!.grantId!)).filter((r) => r.id !== rt);
    expect(successors).toHaveLength(1);
    return successors[0]!.id;
  }

  /** the delivery record is written after the answer; wait for it (bounded) */
  async function deliveredAt(id: string): Promise<Date | null> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const r = await row(id);
      if (r?.deliveredAt || Date.now() > deadline) return r?.deliveredAt ?? null;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function expectReuse(client: TestClient, rt: string, grantId: string): Promise<void> {
    const res = await refresh(t, client, rt);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(await grantAlive(grantId), 'reuse revokes the grant').toBe(false);
    expect(await prisma().oidcPayload.count({ where: { grantId } })).toBe(0);
  }

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    web = await createWebClient(t, { name: 'Web', firstParty: true });
    spa = await createWebClient(t, { name: 'SPA', public: true, firstParty: true });
    other = await createWebClient(t, { name: 'Other', firstParty: true });
    const handle = t.gatehouse.app.callback();
    losing = http.createServer((req, res) => {
      res.end = function loseTheAnswer(this: http.ServerResponse) {
        req.socket.destroy();
        return this;
      } as typeof res.end;
      void handle(req, res);
    });
    await new Promise<void>((resolve) => losing.listen(0, '127.0.0.1', resolve));
    expect((losing.address() as AddressInfo).port).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await new Promise((resolve) => losing?.close(resolve));
    await t?.close();
  });

  it('a delivered rotation stays single-use: reuse → invalid_grant, the grant is revoked', async () => {
    const c = await chain();
    const res = await refresh(t, web, c.first).expect(200);
    const next = res.body.refresh_token as string;
    expect(await deliveredAt(c.first)).toBeInstanceOf(Date);
    await expectReuse(web, c.first, c.grantId);
    expect((await refresh(t, web, next)).body.error).toBe('invalid_grant');
    await t.request.get('/me').set('Authorization', `Bearer ${res.body.access_token}`).expect(401);
    const reuse = await listAuditEvents(prisma(), { action: 'refresh_token.reuse' });
    expect(reuse.items.some((e) => (e.details as { grantId?: string }).grantId === c.grantId)).toBe(true);
    expect(JSON.stringify(reuse.items)).not.toContain(c.first);
  });

  it('answer lost: the old token works once (its undelivered successor is dropped), then it is reuse', async () => {
    const c = await chain();
    const lost = await loseAnswer(web, c.first);

    const retry = await refresh(t, web, c.first);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    const next = retry.body.refresh_token as string;
    expect(next).not.toBe(lost);
    expect(await row(lost), 'the successor nobody received is gone').toBeNull();
    expect((await unused(c.grantId)).map((r) => r.id)).toEqual([next]);
    expect((await row(c.first))?.retriedAt).toBeInstanceOf(Date);
    await t.request.get('/me').set('Authorization', `Bearer ${retry.body.access_token}`).expect(200);

    // the retry's successor is a normal refresh token
    const after = await refresh(t, web, next);
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    const newest = after.body.refresh_token as string;

    // a second retry is reuse: the grant and everything issued from it die
    await expectReuse(web, c.first, c.grantId);
    expect((await refresh(t, web, newest)).body.error).toBe('invalid_grant');

    const { items } = await listAuditEvents(prisma(), { action: 'refresh_token.retry' });
    const event = items.find((e) => (e.details as { grantId?: string }).grantId === c.grantId);
    expect(event).toMatchObject({ actorType: 'client', actorId: web.id, targetType: 'user', details: { undeliveredRemoved: 1 } });
    expect(JSON.stringify(items)).not.toContain(c.first);
  });

  it('half done (used, no successor stored): the old token works once, for a public client too', async () => {
    const c = await chain(spa);
    const Adapter = createAdapterFactory(t.gatehouse.db);
    await new Adapter('RefreshToken').consume(c.first);
    expect(await unused(c.grantId)).toEqual([]);

    const retry = await refresh(t, spa, c.first);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect((await unused(c.grantId)).map((r) => r.id)).toEqual([retry.body.refresh_token]);
    await refresh(t, spa, retry.body.refresh_token as string).expect(200);
    await expectReuse(spa, c.first, c.grantId);
  });

  it('after REFRESH_TOKEN_RETRY_SECONDS the old token is reuse', async () => {
    const c = await chain();
    await loseAnswer(web, c.first);
    await prisma().$executeRaw`UPDATE oidc_payloads SET consumed_at = now() - interval '61 seconds' WHERE model = 'RefreshToken' AND id = ${c.first}`;
    await expectReuse(web, c.first, c.grantId);
  });

  it('when a later token of the chain was used, the answer did arrive: the old token is reuse', async () => {
    const c = await chain();
    const lost = await loseAnswer(web, c.first);
    // whoever holds the successor got the answer (its delivery record is what went missing)
    await refresh(t, web, lost).expect(200);
    await expectReuse(web, c.first, c.grantId);
  });

  it('two concurrent retries of one undelivered token: exactly one succeeds', async () => {
    const c = await chain();
    await loseAnswer(web, c.first);
    const results = await Promise.all([refresh(t, web, c.first), refresh(t, web, c.first)]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses, JSON.stringify(results.map((r) => r.body))).toEqual([200, 400]);
    expect(results.find((r) => r.status === 400)!.body.error).toBe('invalid_grant');
    // the loser presented a used token whose retry was spent: reuse, the grant is revoked
    expect(await grantAlive(c.grantId)).toBe(false);
    const winner = results.find((r) => r.status === 200)!.body.refresh_token as string;
    expect((await refresh(t, web, winner)).body.error).toBe('invalid_grant');
    const { items } = await listAuditEvents(prisma(), { action: 'refresh_token.retry' });
    expect(items.filter((e) => (e.details as { grantId?: string }).grantId === c.grantId)).toHaveLength(1);
  });

  it('neither introspection nor another client spends the retry', async () => {
    const c = await chain();
    await loseAnswer(web, c.first);
    const introspected = await t.request
      .post('/token/introspection')
      .type('form')
      .set('Authorization', basic(web.id, web.secret!))
      .send({ token: c.first })
      .expect(200);
    expect(introspected.body).toEqual({ active: false });
    const wrongClient = await refresh(t, other, c.first);
    expect(wrongClient.status).toBe(400);
    expect(wrongClient.body.error).toBe('invalid_grant');
    expect((await row(c.first))?.retriedAt).toBeNull();
    expect(await grantAlive(c.grantId)).toBe(true);
    await refresh(t, web, c.first).expect(200);
  });
});

describe('refresh token retry turned off (REFRESH_TOKEN_RETRY_SECONDS=0)', () => {
  let t: TestApp;
  let web: TestClient;
  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000', REFRESH_TOKEN_RETRY_SECONDS: '0' } });
    web = await createWebClient(t, { name: 'Web', firstParty: true });
    await createUser(t, 'alice@example.com');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a used token is reuse even if its answer was lost; nothing records deliveries', async () => {
    const tokens = await codeFlowTokens(new Browser(t), web, OFFLINE, { email: 'alice@example.com' });
    const first = tokens.refresh_token as string;
    const rotated = await refresh(t, web, first).expect(200);
    const second = rotated.body.refresh_token as string;
    const prisma = t.gatehouse.db.prisma;
    // answer "lost" the simple way: the client never saw `second`
    const grantId = (await prisma.oidcPayload.findUniqueOrThrow({ where: { model_id: { model: 'RefreshToken', id: first } } })).grantId!;
    expect(await prisma.oidcPayload.count({ where: { model: 'RefreshToken', deliveredAt: { not: null } } })).toBe(0);
    const res = await refresh(t, web, first);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(await prisma.oidcPayload.count({ where: { grantId } })).toBe(0);
    expect((await refresh(t, web, second)).body.error).toBe('invalid_grant');
  });
});
