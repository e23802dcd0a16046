// Authorization code flow with PKCE, end to end through the real app:
// /auth → login page → consent page → redirect with code → /token → /me.
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import {
  Browser,
  REDIRECT_URI,
  authorize,
  codeFlowTokens,
  createUser,
  createWebClient,
  exchangeCode,
  isConsentPage,
  isLoginPage,
  page,
  pkce,
  redirect,
  refresh,
  signIn,
  submitConsent,
  submitLogin,
  type TestClient,
} from './flow.ts';

const ISSUER = 'http://localhost:3000';

describe('authorization code flow with PKCE', () => {
  let t: TestApp;
  let alice: { id: string };
  let web: TestClient; // confidential, third-party (consent)
  let spa: TestClient; // public
  let portal: TestClient; // confidential, first-party (no consent screen)
  const jwks = async () => createLocalJWKSet((await t.request.get('/jwks')).body);

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER, LOGIN_IP_MAX_FAILURES: '1000' } });
    alice = await createUser(t, 'alice@example.com', { name: 'Alice Liddell' });
    web = await createWebClient(t, { name: 'Acme <Web> & Co' });
    spa = await createWebClient(t, { name: 'Acme SPA', public: true });
    portal = await createWebClient(t, { name: 'Portal', firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('confidential client: login, consent, code, tokens; the ID token is signed and carries the expected claims', async () => {
    const b = new Browser(t);
    const { verifier, challenge } = pkce();
    const params = { client_id: web.id, scope: 'openid profile email', state: 'st-123', nonce: 'nonce-456', code_challenge: challenge, code_challenge_method: 'S256' };

    const login = page(await authorize(b, params));
    expect(login.status).toBe(200);
    expect(login.url).toMatch(/^\/interaction\/[A-Za-z0-9_-]+$/);
    expect(isLoginPage(login)).toBe(true);
    expect(login.html).toContain('Acme &lt;Web&gt; &amp; Co'); // the client's name, escaped
    expect(login.html).toMatch(/<label for="login">/);
    expect(login.html).toMatch(/<label for="password">/);
    expect(login.html).toContain('name="viewport"');

    const consent = page(await submitLogin(b, login, 'alice@example.com', 'correct horse battery staple'));
    expect(isConsentPage(consent)).toBe(true);
    expect(consent.html).toContain('Acme &lt;Web&gt; &amp; Co');
    expect(consent.html).toContain('See your name');
    expect(consent.html).toContain('See your email address');
    expect(consent.html).toContain('alice@example.com');

    const callback = redirect(await submitConsent(b, consent, 'approve'));
    expect(`${callback.origin}${callback.pathname}`).toBe(REDIRECT_URI);
    expect(callback.searchParams.get('state')).toBe('st-123');
    expect(callback.searchParams.get('iss')).toBe(ISSUER);
    const code = callback.searchParams.get('code')!;
    expect(code).toBeTruthy();

    const res = await exchangeCode(t, web, code, verifier);
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('Bearer');
    expect(res.body.scope).toBe('openid profile email');
    expect(res.body.refresh_token).toBeUndefined(); // no offline_access

    const { payload, protectedHeader } = await jwtVerify(res.body.id_token, await jwks(), { issuer: ISSUER, audience: web.id });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(alice.id);
    expect(payload.nonce).toBe('nonce-456');
    expect(payload.amr).toEqual(['pwd']);
    expect(typeof payload.auth_time).toBe('number');
    expect(Math.abs((payload.auth_time as number) - Date.now() / 1000)).toBeLessThan(120);

    const me = await t.request.get('/me').set('Authorization', `Bearer ${res.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ sub: alice.id, name: 'Alice Liddell', email: 'alice@example.com', email_verified: true });

    // The same browser signs in again silently: the grant is remembered, no pages.
    const again = await signIn(b, { ...params, prompt: 'none', state: 'st-2' });
    expect(again.sawLogin).toBe(false);
    expect(again.sawConsent).toBe(false);
    expect(again.code).toBeTruthy();
  });

  it('public client: the whole flow with PKCE and no secret', async () => {
    const b = new Browser(t);
    const body = await codeFlowTokens(b, spa, { scope: 'openid email', state: 'x' }, { email: 'alice@example.com' });
    const { payload } = await jwtVerify(body.id_token as string, await jwks(), { issuer: ISSUER, audience: spa.id });
    expect(payload.sub).toBe(alice.id);
    const me = await t.request.get('/me').set('Authorization', `Bearer ${body.access_token}`);
    expect(me.body).toEqual({ sub: alice.id, email: 'alice@example.com', email_verified: true });
  });

  it('first-party client: no consent screen', async () => {
    const b = new Browser(t);
    const { verifier, challenge } = pkce();
    const r = await signIn(b, { client_id: portal.id, scope: 'openid profile', code_challenge: challenge, code_challenge_method: 'S256' }, { email: 'alice@example.com' });
    expect(r.sawLogin).toBe(true);
    expect(r.sawConsent).toBe(false);
    expect((await exchangeCode(t, portal, r.code!, verifier)).status).toBe(200);
  });

  it('userinfo answers per scope: openid → sub; profile → name; email → email, email_verified', async () => {
    const b = new Browser(t);
    const cases: [string, Record<string, unknown>][] = [
      ['openid', { sub: alice.id }],
      ['openid profile', { sub: alice.id, name: 'Alice Liddell' }],
      ['openid email', { sub: alice.id, email: 'alice@example.com', email_verified: true }],
    ];
    for (const [scope, expected] of cases) {
      const body = await codeFlowTokens(b, portal, { scope }, { email: 'alice@example.com' });
      const me = await t.request.get('/me').set('Authorization', `Bearer ${body.access_token}`).expect(200);
      const { updated_at: updatedAt, ...rest } = me.body as Record<string, unknown>;
      expect(rest).toEqual(expected);
      if (scope.includes('profile')) expect(typeof updatedAt).toBe('number');
      else expect(updatedAt).toBeUndefined();
    }
  });

  it('consent denied → access_denied at the redirect URI, with state', async () => {
    const b = new Browser(t);
    const { challenge } = pkce();
    const r = await signIn(
      b,
      { client_id: web.id, scope: 'openid profile email offline_access', prompt: 'consent', state: 'deny-me', code_challenge: challenge, code_challenge_method: 'S256' },
      { email: 'alice@example.com', consent: 'deny' },
    );
    expect(r.sawConsent).toBe(true);
    expect(r.code).toBeNull();
    expect(r.callback.searchParams.get('error')).toBe('access_denied');
    expect(r.callback.searchParams.get('state')).toBe('deny-me');
  });

  it('consent decisions are audit events', async () => {
    // earlier tests approved consent for this client; the one above denied it
    const db = t.gatehouse.db.prisma;
    const deadline = Date.now() + 5_000;
    let denied = await listAuditEvents(db, { action: 'consent.deny' });
    while (denied.items.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      denied = await listAuditEvents(db, { action: 'consent.deny' });
    }
    expect(denied.items[0]).toMatchObject({ actorType: 'user', actorId: alice.id, targetType: 'client', targetId: web.id });
    expect(denied.items[0]!.details).toMatchObject({ scope: 'openid profile email offline_access', automatic: false });
    const granted = await listAuditEvents(db, { action: 'consent.grant' });
    expect(granted.items.length).toBeGreaterThan(0);
    expect(granted.items.every((e) => e.targetId !== null)).toBe(true);
  });

  it('login_hint pre-fills the email field', async () => {
    const b = new Browser(t);
    const { challenge } = pkce();
    const p = page(await authorize(b, { client_id: web.id, login_hint: 'bob"<b>@example.com', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(isLoginPage(p)).toBe(true);
    expect(p.html).toContain('value="bob&quot;&lt;b&gt;@example.com"');
  });

  it('prompt=none without a session → login_required; prompt=login forces a new login', async () => {
    const b = new Browser(t);
    const { verifier, challenge } = pkce();
    const base = { client_id: portal.id, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' };
    const none = redirect(await authorize(b, { ...base, prompt: 'none', state: 'n' }));
    expect(none.searchParams.get('error')).toBe('login_required');
    expect(none.searchParams.get('state')).toBe('n');

    const first = await signIn(b, base, { email: 'alice@example.com' });
    const t1 = decodeJwt((await exchangeCode(t, portal, first.code!, verifier).expect(200)).body.id_token).auth_time as number;

    // With a session, a plain request needs no login ...
    expect((await signIn(b, base)).sawLogin).toBe(false);
    // ... but prompt=login shows the login form again.
    await new Promise((r) => setTimeout(r, 1100));
    const forced = await signIn(b, { ...base, prompt: 'login' }, { email: 'alice@example.com' });
    expect(forced.sawLogin).toBe(true);
    const t2 = decodeJwt((await exchangeCode(t, portal, forced.code!, verifier).expect(200)).body.id_token).auth_time as number;
    expect(t2).toBeGreaterThan(t1);

    // max_age=0 also forces it.
    expect((await signIn(b, { ...base, max_age: '0' }, { email: 'alice@example.com' })).sawLogin).toBe(true);
  });

  it('id_token_hint: prompt=none with the hint of the signed-in person succeeds', async () => {
    const b = new Browser(t);
    const body = await codeFlowTokens(b, portal, { scope: 'openid' }, { email: 'alice@example.com' });
    const { challenge } = pkce();
    const r = await signIn(b, { client_id: portal.id, prompt: 'none', id_token_hint: body.id_token as string, code_challenge: challenge, code_challenge_method: 'S256' });
    expect(r.code).toBeTruthy();
  });

  describe('errors', () => {
    it('an unregistered redirect_uri → an error page, no redirect', async () => {
      const b = new Browser(t);
      const { challenge } = pkce();
      const p = page(await authorize(b, { client_id: web.id, redirect_uri: 'https://evil.example.com/cb', code_challenge: challenge, code_challenge_method: 'S256' }));
      expect(p.status).toBe(400);
      expect(p.res.headers['content-type']).toMatch(/text\/html/);
      expect(p.html).toContain('Gatehouse');
      expect(p.html).toContain('redirect_uri');
      expect(p.html).not.toMatch(/at .*\.(js|ts):\d+/); // no stack trace
      // a redirect_uri that only differs by a trailing slash is not the same
      const p2 = page(await authorize(b, { client_id: web.id, redirect_uri: `${REDIRECT_URI}/`, code_challenge: challenge, code_challenge_method: 'S256' }));
      expect(p2.status).toBe(400);
    });

    it('an unknown client → an error page', async () => {
      const p = page(await authorize(new Browser(t), { client_id: 'nobody-at-all' }));
      expect(p.status).toBe(400);
      expect(p.html).toContain('invalid_client');
    });

    it('a public client without code_challenge is refused at /auth, before any login page', async () => {
      const b = new Browser(t);
      const res = await b.request('GET', `/auth?${new URLSearchParams({ client_id: spa.id, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 'p' })}`);
      expect(res.status).toBe(303);
      const to = new URL(res.headers.location as string);
      expect(`${to.origin}${to.pathname}`).toBe(REDIRECT_URI);
      expect(to.searchParams.get('error')).toBe('invalid_request');
      expect(to.searchParams.get('state')).toBe('p');
      expect(await t.gatehouse.db.prisma.oidcPayload.count({ where: { model: 'Interaction', payload: { path: ['params', 'state'], equals: 'p' } } })).toBe(0);
    });

    it('code_challenge_method=plain is refused', async () => {
      const r = redirect(await authorize(new Browser(t), { client_id: spa.id, code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }));
      expect(r.searchParams.get('error')).toBe('invalid_request');
    });

    it('a reused code → invalid_grant, and the tokens of its first use are revoked', async () => {
      const b = new Browser(t);
      const { verifier, challenge } = pkce();
      const r = await signIn(
        b,
        { client_id: web.id, scope: 'openid profile email offline_access', prompt: 'consent', code_challenge: challenge, code_challenge_method: 'S256' },
        { email: 'alice@example.com' },
      );
      const first = await exchangeCode(t, web, r.code!, verifier).expect(200);
      expect(first.body.refresh_token).toBeTruthy();
      await t.request.get('/me').set('Authorization', `Bearer ${first.body.access_token}`).expect(200);

      const second = await exchangeCode(t, web, r.code!, verifier);
      expect(second.status).toBe(400);
      expect(second.body.error).toBe('invalid_grant');

      const me = await t.request.get('/me').set('Authorization', `Bearer ${first.body.access_token}`);
      expect(me.status).toBe(401);
      const rt = await refresh(t, web, first.body.refresh_token);
      expect(rt.status).toBe(400);
      expect(rt.body.error).toBe('invalid_grant');
    });

    it('a code presented by another client → invalid_grant', async () => {
      const b = new Browser(t);
      const { verifier, challenge } = pkce();
      const r = await signIn(b, { client_id: portal.id, code_challenge: challenge, code_challenge_method: 'S256' }, { email: 'alice@example.com' });
      const res = await exchangeCode(t, web, r.code!, verifier);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('a wrong code_verifier → invalid_grant', async () => {
      const b = new Browser(t);
      const { challenge } = pkce();
      const r = await signIn(b, { client_id: portal.id, code_challenge: challenge, code_challenge_method: 'S256' }, { email: 'alice@example.com' });
      const res = await exchangeCode(t, portal, r.code!, pkce().verifier);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('a missing code_verifier (the code was issued with a challenge) → invalid_grant', async () => {
      const b = new Browser(t);
      const { challenge } = pkce();
      const r = await signIn(b, { client_id: portal.id, code_challenge: challenge, code_challenge_method: 'S256' }, { email: 'alice@example.com' });
      const res = await t.request.post('/token').type('form').set('Authorization', `Basic ${Buffer.from(`${portal.id}:${portal.secret}`).toString('base64')}`)
        .send({ grant_type: 'authorization_code', code: r.code!, redirect_uri: REDIRECT_URI });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('a redirect_uri at /token that differs from the one authorized → invalid_grant', async () => {
      const b = new Browser(t);
      const { verifier, challenge } = pkce();
      const r = await signIn(b, { client_id: portal.id, code_challenge: challenge, code_challenge_method: 'S256' }, { email: 'alice@example.com' });
      const res = await exchangeCode(t, portal, r.code!, verifier, 'https://app.example.com/other');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });
  });

  describe('pages', () => {
    it('are served with a strict CSP (no inline script or style), no framing, no caching', async () => {
      const b = new Browser(t);
      const { challenge } = pkce();
      const p = page(await authorize(b, { client_id: web.id, code_challenge: challenge, code_challenge_method: 'S256' }));
      const csp = String(p.res.headers['content-security-policy']);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(p.res.headers['x-frame-options']).toBe('DENY');
      expect(p.res.headers['cache-control']).toBe('no-store');
      // no inline script or style: the only scripts are Gatehouse's own files (passkeys), by src
      expect(p.html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
      for (const m of p.html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/gi)) {
        expect(m[1]).toMatch(/^ src="\/static\/[a-z]+\.js\?v=[\w-]+" defer$/);
        expect(m[2]).toBe('');
      }
      expect(p.html).toMatch(/<html lang="en">/);
    });

    it('the stylesheet is served with caching headers and the versioned URL the pages link', async () => {
      const b = new Browser(t);
      const { challenge } = pkce();
      const p = page(await authorize(b, { client_id: web.id, code_challenge: challenge, code_challenge_method: 'S256' }));
      const href = /<link rel="stylesheet" href="([^"]+)"/.exec(p.html)![1]!;
      expect(href).toMatch(/^\/static\/gatehouse\.css\?v=[A-Za-z0-9_-]+$/);
      const css = await t.request.get(href).expect(200);
      expect(css.headers['content-type']).toMatch(/text\/css/);
      expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      const etag = css.headers.etag as string;
      expect(etag).toBeTruthy();
      await t.request.get('/static/gatehouse.css').set('If-None-Match', etag).expect(304);
      expect((await t.request.get('/static/gatehouse.css')).headers['cache-control']).toBe('public, max-age=300');
    });

    it('an unknown or finished interaction → an HTML page saying it expired; unknown paths → 404', async () => {
      const res = await t.request.get('/interaction/doesnotexist').set('Accept', 'text/html');
      expect(res.status).toBe(400);
      expect(res.text).toContain('expired');
      const nf = await t.request.get('/interaction/a/b/c').set('Accept', 'text/html');
      expect(nf.status).toBe(404);
      const post = await t.request.post('/interaction/doesnotexist/login').type('form').send({ csrf: 'x', login: 'a@b.c', password: 'x' });
      expect(post.status).toBe(403);
    });

    it('a login form re-posted after the sign-in completed is refused', async () => {
      const b = new Browser(t);
      const { challenge } = pkce();
      const login = page(await authorize(b, { client_id: portal.id, code_challenge: challenge, code_challenge_method: 'S256' }));
      redirect(await submitLogin(b, login, 'alice@example.com', 'correct horse battery staple'));
      const replay = page(await submitLogin(b, login, 'alice@example.com', 'correct horse battery staple'));
      expect(replay.status).toBe(400);
      expect(replay.html).toContain('expired');
    });
  });
});
