// Three Gatehouse instances (A, B, C: separate apps, pools, caches, change
// feeds and providers) on one database behave as one server. A browser, a
// client or an operator may reach any of them at any step:
//
// - a login session made on A is honoured by B (prompt=none gives a code);
// - an authorization code issued by A is redeemed at B, once;
// - a refresh token from A rotates at B, then at C; reusing a rotated one at
//   any instance revokes the grant on all of them;
// - a client disabled through A is refused by B and C within a second;
// - a signing key rotated through A is published and used by B and C
//   without a restart;
// - their cleanup runs may overlap: each expired row is removed once.
//
// (test/oauth2/multi-instance.test.ts covers client and resource updates and
// revocation between two instances; test/db/migrate.test.ts concurrent
// migrations.)
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/clients/store.ts';
import { rotateSigningKey } from '../../src/keys/index.ts';
import { cleanupSteps } from '../../src/app.ts';
import { runCleanup, type CleanupResult } from '../../src/db/cleanup.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { sleep, until } from '../server/process.ts';
import {
  Browser,
  authorize,
  basic,
  codeFlowTokens,
  createUser,
  createWebClient,
  exchangeCode,
  pkce,
  redirect,
  refresh,
  signIn,
  type TestClient,
} from '../sso/flow.ts';

const ISSUER = 'http://localhost:3000';
const API = 'https://orders.example.com';
const OFFLINE = { scope: 'openid email offline_access', prompt: 'consent' };
/** PRODUCT.md: client changes reach every instance within one second */
const PROPAGATION_MS = 1_000;
const EMAIL = 'alice@example.com';

/** The same browser (cookie jar) pointed at another instance. */
function sameBrowserOn(browser: Browser, t: TestApp): Browser {
  const moved = new Browser(t);
  for (const [k, v] of browser.cookies) moved.cookies.set(k, { ...v });
  return moved;
}

describe('three instances on one database', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  let c: TestApp;
  let web: TestClient;
  let machine: TestClient;

  const clientCredentials = (t: TestApp, client: TestClient) =>
    t.request.post('/token').type('form').set('Authorization', basic(client.id, client.secret!)).send({ grant_type: 'client_credentials', resource: API });
  const me = (t: TestApp, accessToken: string) => t.request.get('/me').set('Authorization', `Bearer ${accessToken}`);

  beforeAll(async () => {
    database = await createTestDatabase();
    const env = { ISSUER, LOGIN_IP_MAX_FAILURES: '1000' };
    [a, b, c] = await Promise.all([createTestApp({ database, env }), createTestApp({ database, env }), createTestApp({ database, env })]);
    // every instance listens before anything changes
    await Promise.all([a, b, c].map((t) => t.gatehouse.feed.ready));
    await createUser(a, EMAIL);
    web = await createWebClient(a, { name: 'Web', firstParty: true });
    await createResource(a.gatehouse.db.prisma, { identifier: API, scopes: ['orders:read'] });
    const created = await createClient(a.gatehouse.db.prisma, { name: 'machine', grants: ['client_credentials'], resources: [API], scopes: ['orders:read'] });
    machine = { id: created.client.id, secret: created.clientSecret! };
  });

  afterAll(async () => {
    await Promise.all([a, b, c].map((t) => t?.close()));
    await database?.drop();
  });

  it('a login session made on A is honoured by B; A’s authorization code is redeemed at B, once', async () => {
    const onA = new Browser(a);
    const { verifier, challenge } = pkce();
    const login = await signIn(onA, { client_id: web.id, code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid email' }, { email: EMAIL });
    expect(login.sawLogin).toBe(true);
    expect(login.code).toBeTruthy();

    // A's code at B
    const fromB = await exchangeCode(b, web, login.code!, verifier);
    expect(fromB.status, JSON.stringify(fromB.body)).toBe(200);
    const sub = decodeJwt(fromB.body.id_token as string).sub;
    await me(c, fromB.body.access_token as string).expect(200);
    // and not a second time, anywhere
    const again = await exchangeCode(c, web, login.code!, verifier);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');

    // The browser, now talking to B: no login page, straight back with a code.
    const onB = sameBrowserOn(onA, b);
    const silent = pkce();
    const step = await authorize(onB, { client_id: web.id, code_challenge: silent.challenge, code_challenge_method: 'S256', scope: 'openid email', prompt: 'none' });
    const callback = redirect(step);
    expect(callback.searchParams.get('error')).toBeNull();
    const code = callback.searchParams.get('code');
    expect(code).toBeTruthy();
    const fromC = await exchangeCode(c, web, code!, silent.verifier);
    expect(fromC.status, JSON.stringify(fromC.body)).toBe(200);
    expect(decodeJwt(fromC.body.id_token as string).sub).toBe(sub);

    // A browser without the session cookies gets login_required on B.
    const stranger = await authorize(new Browser(b), { client_id: web.id, code_challenge: silent.challenge, code_challenge_method: 'S256', prompt: 'none' });
    expect(redirect(stranger).searchParams.get('error')).toBe('login_required');
  });

  it('a refresh token from A rotates at B, then at C; reuse of a rotated one at A revokes the grant everywhere', async () => {
    const first = await codeFlowTokens(new Browser(a), web, OFFLINE, { email: EMAIL });
    const r1 = first.refresh_token as string;
    expect(r1).toEqual(expect.any(String));

    const atB = await refresh(b, web, r1);
    expect(atB.status, JSON.stringify(atB.body)).toBe(200);
    const r2 = atB.body.refresh_token as string;
    const atC = await refresh(c, web, r2);
    expect(atC.status, JSON.stringify(atC.body)).toBe(200);
    const r3 = atC.body.refresh_token as string;
    expect(new Set([r1, r2, r3]).size).toBe(3);
    await me(a, atC.body.access_token as string).expect(200);

    // r1 was rotated at B: presenting it to A is reuse
    const reuse = await refresh(a, web, r1);
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    // the whole grant is gone, on every instance
    for (const t of [a, b, c]) {
      const newest = await refresh(t, web, r3);
      expect(newest.status).toBe(400);
      expect(newest.body.error).toBe('invalid_grant');
      await me(t, atC.body.access_token as string).expect(401);
    }
  });

  it('a client disabled through A is refused by B and C within a second', async () => {
    const created = await createClient(a.gatehouse.db.prisma, { name: 'soon disabled', grants: ['client_credentials'], resources: [API], scopes: ['orders:read'] });
    const victim = { id: created.client.id, secret: created.clientSecret! };
    // B and C have it cached
    for (const t of [b, c]) expect((await clientCredentials(t, victim)).status).toBe(200);

    await updateClient(a.gatehouse.db.prisma, victim.id, { disabled: true });
    const deadline = Date.now() + PROPAGATION_MS;
    for (const t of [b, c]) {
      let res = await clientCredentials(t, victim);
      while (res.status !== 401 && Date.now() < deadline) {
        await sleep(20);
        res = await clientCredentials(t, victim);
      }
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    }
  });

  it('a signing key rotated through A is published by B and C and signs their new tokens, without a restart', async () => {
    const before = decodeProtectedHeader((await clientCredentials(b, machine)).body.access_token as string).kid;
    const idBefore = (await codeFlowTokens(new Browser(c), web, { scope: 'openid' }, { email: EMAIL })).id_token as string;

    const rotated = await rotateSigningKey(a.gatehouse.db.prisma, a.config.keyEncryptionKey, { alg: 'RS256', leadSeconds: 0, maxTokenTtlSeconds: 3600 });
    expect(rotated.kid).not.toBe(before);

    for (const t of [a, b, c]) {
      await until(
        'the new key in /jwks',
        async () => ((await t.request.get('/jwks')).body.keys as { kid: string }[]).some((k) => k.kid === rotated.kid),
        5_000,
      );
      const kids = ((await t.request.get('/jwks')).body.keys as { kid: string }[]).map((k) => k.kid);
      expect(kids).toContain(before); // still published: tokens it signed stay verifiable
      const access = (await clientCredentials(t, machine)).body.access_token as string;
      expect(decodeProtectedHeader(access).kid).toBe(rotated.kid);
    }
    // ID tokens too, and an ID token signed before the rotation still names a published key
    const idAfter = (await codeFlowTokens(new Browser(b), web, { scope: 'openid' }, { email: EMAIL })).id_token as string;
    expect(decodeProtectedHeader(idAfter).kid).toBe(rotated.kid);
    expect(decodeProtectedHeader(idBefore).kid).toBe(before);
  });

  it('cleanup runs on all three at once: every expired row is removed exactly once, nothing live is touched', async () => {
    const db = a.gatehouse.db.prisma;
    const n = 1_500;
    await db.$executeRaw`
      INSERT INTO oidc_payloads (model, id, payload, expires_at)
      SELECT 'AccessToken', 'mi-expired-' || i, '{}'::jsonb, now() - interval '1 minute' FROM generate_series(1, ${n}::int) AS i`;
    await db.$executeRaw`
      INSERT INTO revoked_tokens (jti, expires_at)
      SELECT 'mi-expired-' || i, now() - interval '1 minute' FROM generate_series(1, ${n}::int) AS i`;
    await db.$executeRaw`
      INSERT INTO login_throttles (key, failures, updated_at)
      SELECT 'ip:mi-stale-' || i, 1, now() - interval '25 hours' FROM generate_series(1, ${n}::int) AS i`;
    const liveWhere = { OR: [{ expiresAt: null }, { expiresAt: { gt: new Date(Date.now() + 60_000) } }] };
    const live = await db.oidcPayload.findMany({ where: liveWhere, select: { model: true, id: true } });
    expect(live.length).toBeGreaterThan(0); // sessions, grants, refresh tokens of the tests above

    // small batches, so that the three runs interleave; traffic goes on meanwhile
    const results = await Promise.all([
      ...[a, b, c].map((t) => runCleanup(t.gatehouse.db.prisma, cleanupSteps(t.gatehouse.config), { batchSize: 50 })),
      ...[a, b, c].map(async (t) => {
        for (let i = 0; i < 5; i++) expect((await clientCredentials(t, machine)).status).toBe(200);
        return undefined;
      }),
    ]);
    type Counts = CleanupResult<ReturnType<typeof cleanupSteps>[number]['name']>;
    const runs = results.filter((r): r is Counts => r !== undefined);
    expect(runs).toHaveLength(3);
    const total = (k: keyof Counts) => runs.reduce((sum, r) => sum + r[k], 0);
    // the seeded rows plus whatever else had expired (codes, interactions of earlier tests)
    expect(total('oidcPayloads')).toBeGreaterThanOrEqual(n);
    expect(total('revokedTokens')).toBe(n);
    expect(total('loginThrottles')).toBe(n);

    expect(await db.oidcPayload.count({ where: { id: { startsWith: 'mi-expired-' } } })).toBe(0);
    expect(await db.revokedToken.count({ where: { jti: { startsWith: 'mi-expired-' } } })).toBe(0);
    expect(await db.loginThrottle.count({ where: { key: { startsWith: 'ip:mi-stale-' } } })).toBe(0);
    const still = await db.oidcPayload.findMany({ where: { OR: live.map((r) => ({ model: r.model, id: r.id })) }, select: { id: true } });
    expect(still).toHaveLength(live.length);
  });
});
