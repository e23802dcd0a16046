// Refresh tokens: when they are issued, rotation on every use, reuse
// detection (the whole grant is revoked), lifetimes, and signing a person out
// everywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDisabled } from '../../src/accounts/store.ts';
import { updateClient } from '../../src/clients/store.ts';
import { endAccountSessions } from '../../src/oidc/sessions.ts';
import { grantNeedsExtension, grantTtl, refreshPolicyFor, refreshTokenTtl, SESSION_TTL_SECONDS } from '../../src/interactions/lifetimes.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, codeFlowTokens, createUser, createWebClient, pkce, redirect, refresh, type TestClient } from './flow.ts';

const OFFLINE = { scope: 'openid email offline_access', prompt: 'consent' };

describe('refresh tokens', () => {
  let t: TestApp;
  let web: TestClient;
  let spa: TestClient;
  let noRefresh: TestClient;

  const expiresIn = async (model: string, id: string) => {
    const row = await t.gatehouse.db.prisma.oidcPayload.findUniqueOrThrow({ where: { model_id: { model, id } } });
    return Math.round((row.expiresAt!.getTime() - Date.now()) / 1000);
  };

  beforeAll(async () => {
    t = await createTestApp({ env: { REFRESH_TOKEN_IDLE_SECONDS: '3600', REFRESH_TOKEN_LIFETIME_SECONDS: '86400', LOGIN_IP_MAX_FAILURES: '1000' } });
    await createUser(t, 'alice@example.com');
    web = await createWebClient(t, { name: 'Web', firstParty: true });
    spa = await createWebClient(t, { name: 'SPA', public: true, firstParty: true });
    noRefresh = await createWebClient(t, { name: 'No refresh', grants: ['authorization_code'], firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('are issued only with offline_access (asked with prompt=consent) to clients with the refresh_token grant', async () => {
    const b = new Browser(t);
    const plain = await codeFlowTokens(b, web, { scope: 'openid email' }, { email: 'alice@example.com' });
    expect(plain.refresh_token).toBeUndefined();
    // OpenID Connect: offline_access without prompt=consent is ignored.
    const noPrompt = await codeFlowTokens(b, web, { scope: 'openid email offline_access' });
    expect(noPrompt.refresh_token).toBeUndefined();
    expect(noPrompt.scope).toBe('openid email');
    const offline = await codeFlowTokens(b, web, OFFLINE);
    expect(offline.refresh_token).toEqual(expect.any(String));
    expect(offline.scope).toBe('openid email offline_access');
    const none = await codeFlowTokens(b, noRefresh, OFFLINE, { email: 'alice@example.com' });
    expect(none.refresh_token).toBeUndefined();
  });

  it('rotate on every use; each refresh gives a new access token and ID token', async () => {
    const b = new Browser(t);
    const first = await codeFlowTokens(b, web, OFFLINE, { email: 'alice@example.com' });
    let rt = first.refresh_token as string;
    const seen = new Set([rt]);
    for (let i = 0; i < 3; i++) {
      const res = await refresh(t, web, rt);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.refresh_token).toEqual(expect.any(String));
      expect(seen.has(res.body.refresh_token)).toBe(false);
      expect(res.body.id_token).toEqual(expect.any(String));
      expect(res.body.scope).toBe('openid email offline_access');
      await t.request.get('/me').set('Authorization', `Bearer ${res.body.access_token}`).expect(200);
      rt = res.body.refresh_token;
      seen.add(rt);
    }
  });

  it('reuse of a rotated token revokes the whole grant: the newest refresh token and access token die too', async () => {
    const b = new Browser(t);
    const first = await codeFlowTokens(b, spa, OFFLINE, { email: 'alice@example.com' });
    const r1 = first.refresh_token as string;
    const second = await refresh(t, spa, r1).expect(200);
    const r2 = second.body.refresh_token as string;
    await t.request.get('/me').set('Authorization', `Bearer ${second.body.access_token}`).expect(200);

    const reuse = await refresh(t, spa, r1);
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');

    const newest = await refresh(t, spa, r2);
    expect(newest.status).toBe(400);
    expect(newest.body.error).toBe('invalid_grant');
    await t.request.get('/me').set('Authorization', `Bearer ${second.body.access_token}`).expect(401);
  });

  it('a refresh token presented by another client → invalid_grant (and it keeps working for its own client)', async () => {
    const b = new Browser(t);
    const first = await codeFlowTokens(b, web, OFFLINE, { email: 'alice@example.com' });
    const res = await refresh(t, spa, first.refresh_token as string);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    await refresh(t, web, first.refresh_token as string).expect(200);
  });

  it('live for the idle time, within the absolute lifetime; a client may set its own lifetime', async () => {
    const b = new Browser(t);
    const first = await codeFlowTokens(b, web, OFFLINE, { email: 'alice@example.com' });
    const rt = await t.gatehouse.db.prisma.oidcPayload.findFirstOrThrow({ where: { model: 'RefreshToken' }, orderBy: { expiresAt: 'desc' } });
    expect(Math.abs((await expiresIn('RefreshToken', rt.id)) - 3600)).toBeLessThan(10);
    // the grant outlives the longest chain (the absolute lifetime, at least the session's 14 days)
    const grantId = rt.grantId!;
    expect(Math.abs((await expiresIn('Grant', grantId)) - SESSION_TTL_SECONDS)).toBeLessThan(10);
    expect(first.refresh_token).toBeTruthy();

    await updateClient(t.gatehouse.db.prisma, web.id, { refreshTokenTtl: 600 });
    t.gatehouse.clients.invalidate(web.id);
    const short = await codeFlowTokens(b, web, { ...OFFLINE, prompt: 'consent login' }, { email: 'alice@example.com' });
    const rows = await t.gatehouse.db.prisma.oidcPayload.findMany({ where: { model: 'RefreshToken', consumedAt: null }, orderBy: { expiresAt: 'asc' } });
    const ttls = await Promise.all(rows.map((r) => expiresIn('RefreshToken', r.id)));
    expect(ttls.some((s) => Math.abs(s - 600) < 10)).toBe(true);
    const rotated = await refresh(t, web, short.refresh_token as string).expect(200);
    expect(rotated.body.refresh_token).toBeTruthy();
    await updateClient(t.gatehouse.db.prisma, web.id, { refreshTokenTtl: null });
    t.gatehouse.clients.invalidate(web.id);
  });

  it('lifetime rules', () => {
    const policy = refreshPolicyFor({ lifetimeSeconds: 86_400, idleSeconds: 3600 }, undefined);
    const now = 1_000_000;
    expect(refreshTokenTtl(policy, now, now)).toBe(3600); // fresh chain: idle time
    expect(refreshTokenTtl(policy, now - 86_400 + 600, now)).toBe(600); // near the end: what is left
    expect(refreshTokenTtl(policy, now - 90_000, now)).toBe(1); // past the end: dead on arrival
    expect(refreshPolicyFor({ lifetimeSeconds: 86_400, idleSeconds: 3600 }, 600)).toEqual({ lifetimeSeconds: 600, idleSeconds: 600 });
    expect(grantTtl({ lifetimeSeconds: 60 * 86_400, idleSeconds: 3600 }, true)).toBe(60 * 86_400);
    expect(grantTtl({ lifetimeSeconds: 60 * 86_400, idleSeconds: 3600 }, false)).toBe(SESSION_TTL_SECONDS);
    expect(grantNeedsExtension(now + 10 * 86_400, 30 * 86_400, now)).toBe(true);
    expect(grantNeedsExtension(now + 30 * 86_400 - 3600, 30 * 86_400, now)).toBe(false);
  });

  it('endAccountSessions signs the person out everywhere and kills their refresh tokens', async () => {
    const bob = await createUser(t, 'bob@example.com');
    const laptop = new Browser(t);
    const phone = new Browser(t);
    const a = await codeFlowTokens(laptop, web, OFFLINE, { email: 'bob@example.com' });
    const p = await codeFlowTokens(phone, spa, OFFLINE, { email: 'bob@example.com' });
    // alice is not affected
    const aliceBrowser = new Browser(t);
    const al = await codeFlowTokens(aliceBrowser, web, OFFLINE, { email: 'alice@example.com' });

    const result = await endAccountSessions(t.gatehouse.db.prisma, bob.id);
    expect(result.sessions).toBe(2);
    expect(result.grants).toBe(2);

    for (const [browser, client] of [[laptop, web], [phone, spa]] as const) {
      const { challenge } = pkce();
      const r = redirect(await authorize(browser, { client_id: client.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
      expect(r.searchParams.get('error')).toBe('login_required');
    }
    expect((await refresh(t, web, a.refresh_token as string)).body.error).toBe('invalid_grant');
    expect((await refresh(t, spa, p.refresh_token as string)).body.error).toBe('invalid_grant');
    await t.request.get('/me').set('Authorization', `Bearer ${a.access_token}`).expect(401);

    await refresh(t, web, al.refresh_token as string).expect(200);
    expect(await endAccountSessions(t.gatehouse.db.prisma, 'not-a-uuid')).toEqual({ sessions: 0, grants: 0, records: 0, backchannel: [] });
  });

  it('a disabled account: refresh → invalid_grant, its session stops working (prompt=none → login_required)', async () => {
    const carol = await createUser(t, 'carol@example.com');
    const b = new Browser(t);
    const tokens = await codeFlowTokens(b, web, OFFLINE, { email: 'carol@example.com' });
    await setDisabled(t.gatehouse.db.prisma, carol.id, true);

    const res = await refresh(t, web, tokens.refresh_token as string);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    await t.request.get('/me').set('Authorization', `Bearer ${tokens.access_token}`).expect(401);

    const { challenge } = pkce();
    const r = redirect(await authorize(b, { client_id: web.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(r.searchParams.get('error')).toBe('login_required');
    // without prompt=none the person is asked to sign in again
    const step = await authorize(b, { client_id: web.id, code_challenge: challenge, code_challenge_method: 'S256' });
    expect(step.kind === 'page' && /name="password"/.test(step.page.html)).toBe(true);
  });
});
