// Signing in through an upstream identity provider, end to end: the real
// Gatehouse app (supertest) and a second identity provider, a bare
// oidc-provider on 127.0.0.1, started here. First sign-in, linking by
// verified email (and not without), email-domain routing, disabled and
// locked accounts, forged / replayed / raced callbacks, and an upstream outage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { setDisabled } from '../../src/accounts/store.ts';
import { accountThrottleKey } from '../../src/accounts/throttle.ts';
import { createIdp, type IdpView } from '../../src/federation/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import {
  authorize,
  Browser,
  createUser,
  createWebClient,
  csrfOf,
  exchangeCode,
  formAction,
  isConsentPage,
  page,
  pkce,
  redirect,
  submitConsent,
  submitLogin,
  type Step,
  type TestClient,
} from '../sso/flow.ts';
import { startUpstream, UpstreamBrowser, type Upstream } from './upstream.ts';

describe('federation: sign in through an upstream OpenID provider', () => {
  let t: TestApp;
  let upstream: Upstream;
  let client: TestClient;
  let open: IdpView;
  let corp: IdpView;
  const db = () => t.gatehouse.db.prisma;

  beforeAll(async () => {
    t = await createTestApp();
    upstream = await startUpstream(`${t.config.issuer}/federation/callback`);
    const kek = t.config.keyEncryptionKey;
    open = await createIdp(db(), kek, { name: 'Upstream', issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret });
    corp = await createIdp(db(), kek, { name: 'Corp', issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, domains: ['corp.example'] });
    client = await createWebClient(t, { scopes: ['openid', 'email', 'profile'] });
  });
  afterAll(async () => {
    await upstream?.stop().catch(() => {});
    await t?.close();
  });

  /** /auth at Gatehouse: the login page. */
  async function loginPage(browser: Browser, challenge: string) {
    const p = page(await authorize(browser, { client_id: client.id, scope: 'openid email', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(p.status).toBe(200);
    return p;
  }

  /** Click "Continue with <idp>": the redirect to the upstream. */
  async function continueWith(browser: Browser, html: string, idp: IdpView): Promise<Step> {
    return browser.post(formAction(html, '/federate'), { csrf: csrfOf(html), idp: idp.id });
  }

  /** Through the upstream (signed in as `subject`): the callback URL on Gatehouse. */
  async function atUpstream(step: Step, subject: string): Promise<URL> {
    const to = redirect(step);
    expect(to.origin).toBe(upstream.issuer);
    upstream.next = subject;
    return new UpstreamBrowser().through(to.href, upstream.issuer);
  }

  /** The rest of the Gatehouse side: consent if asked, back to the client. */
  async function finish(browser: Browser, step: Step): Promise<Step> {
    if (step.kind === 'page' && isConsentPage(step.page)) return submitConsent(browser, step.page, 'approve');
    return step;
  }

  async function federatedSignIn(subject: string, idp: IdpView = open) {
    const browser = new Browser(t);
    const { verifier, challenge } = pkce();
    const p = await loginPage(browser, challenge);
    const callback = await atUpstream(await continueWith(browser, p.html, idp), subject);
    const end = await finish(browser, await browser.get(`${callback.pathname}${callback.search}`));
    return { browser, end, verifier, callback };
  }

  async function tokensOf(end: Step, verifier: string) {
    const back = redirect(end);
    const code = back.searchParams.get('code');
    expect(code, back.href).toBeTruthy();
    const res = await exchangeCode(t, client, code!, verifier);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { id_token: string; access_token: string };
  }

  it('the login page offers "Continue with …" for each enabled provider; the password may stay empty when domains are routed', async () => {
    const p = await loginPage(new Browser(t), pkce().challenge);
    expect(p.html).toContain('Continue with Upstream');
    expect(p.html).toContain('Continue with Corp');
    expect(p.html).not.toMatch(/name="password"[^>]* required/);
  });

  it('first sign-in creates an account, links it (audited) and gets Gatehouse tokens, never upstream ones', async () => {
    upstream.users.set('u-new', { email: 'New.Person@elsewhere.example', email_verified: true, name: 'New Person' });
    const { end, verifier, callback } = await federatedSignIn('u-new');
    expect(callback.pathname).toBe('/federation/callback');
    // the upstream request: code flow with PKCE S256, state and nonce
    const asked = upstream.requests.at(-1)!;
    expect(asked.get('response_type')).toBe('code');
    expect(asked.get('code_challenge_method')).toBe('S256');
    expect(asked.get('state')).toBeTruthy();
    expect(asked.get('nonce')).toBeTruthy();
    expect(asked.get('redirect_uri')).toBe(`${t.config.issuer}/federation/callback`);

    const tokens = await tokensOf(end, verifier);
    const account = await db().account.findUniqueOrThrow({ where: { email: 'new.person@elsewhere.example' } });
    expect(account).toMatchObject({ name: 'New Person', emailVerified: true, passwordHash: null });
    const idToken = decodeJwt(tokens.id_token);
    expect(idToken.iss).toBe(t.config.issuer);
    expect(idToken.sub).toBe(account.id);
    expect(idToken.amr).toEqual(['fed']);
    expect(tokens.access_token).not.toContain(upstream.issuer);
    expect(await db().upstreamIdpLink.count({ where: { accountId: account.id, idpId: open.id, subject: 'u-new' } })).toBe(1);
    await expect.poll(() => db().auditEvent.count({ where: { action: 'login.success', actorId: account.id, details: { path: ['idp'], equals: 'Upstream' } } })).toBe(1);
    const linked = await db().auditEvent.findFirstOrThrow({ where: { action: 'account.linked', targetId: account.id } });
    expect(linked.details).toMatchObject({ idp: 'Upstream', subject: 'u-new', reason: 'new_account', via: 'federation:Upstream' });
    // the upstream request is spent: nothing of it stays usable
    expect(await db().federationRequest.count({ where: { consumedAt: null, interactionUid: callback.searchParams.get('state') ?? '' } })).toBe(0);

    // the next sign-in finds the link: same account, no new link
    const again = await federatedSignIn('u-new');
    expect(decodeJwt((await tokensOf(again.end, again.verifier)).id_token).sub).toBe(account.id);
    expect(await db().upstreamIdpLink.count({ where: { accountId: account.id } })).toBe(1);
  });

  it('links to an existing account when the upstream asserts email_verified: true', async () => {
    const alice = await createUser(t, 'alice@elsewhere.example');
    upstream.users.set('u-alice', { email: 'alice@elsewhere.example', email_verified: true });
    const { end, verifier } = await federatedSignIn('u-alice');
    expect(decodeJwt((await tokensOf(end, verifier)).id_token).sub).toBe(alice.id);
    const ev = await db().auditEvent.findFirstOrThrow({ where: { action: 'account.linked', targetId: alice.id } });
    expect(ev.details).toMatchObject({ reason: 'verified_email', idp: 'Upstream', subject: 'u-alice' });
    expect(await db().account.count({ where: { email: 'alice@elsewhere.example' } })).toBe(1);
  });

  it('does not link when the upstream does not assert a verified email: a clear page, nothing created', async () => {
    const bob = await createUser(t, 'bob@elsewhere.example');
    upstream.users.set('u-bob', { email: 'bob@elsewhere.example', email_verified: false });
    const { end } = await federatedSignIn('u-bob');
    const p = page(end);
    expect(p.status).toBe(409);
    expect(p.html).toContain('An account with this email address already exists');
    expect(p.html).toContain('Sign in with your email and password instead');
    expect(await db().upstreamIdpLink.count({ where: { accountId: bob.id } })).toBe(0);
    expect(await db().upstreamIdpLink.count({ where: { subject: 'u-bob' } })).toBe(0);
    expect(await db().account.count({ where: { email: 'bob@elsewhere.example' } })).toBe(1);

    // an unverified email that no account has: a new account, its email not verified
    upstream.users.set('u-dora', { email: 'dora@elsewhere.example', email_verified: false });
    const dora = await federatedSignIn('u-dora');
    await tokensOf(dora.end, dora.verifier);
    expect(await db().account.findUniqueOrThrow({ where: { email: 'dora@elsewhere.example' } })).toMatchObject({ emailVerified: false });
  });

  it('routes an email whose domain a provider serves to that provider, without a password', async () => {
    upstream.users.set('u-carol', { email: 'carol@corp.example', email_verified: true });
    const browser = new Browser(t);
    const { verifier, challenge } = pkce();
    const p = await loginPage(browser, challenge);
    const step = await submitLogin(browser, p, 'Carol@Corp.example', '');
    const to = redirect(step);
    expect(to.origin).toBe(upstream.issuer);
    expect(to.searchParams.get('login_hint')).toBe('Carol@Corp.example');
    upstream.next = 'u-carol';
    const callback = await new UpstreamBrowser().through(to.href, upstream.issuer);
    const end = await finish(browser, await browser.get(`${callback.pathname}${callback.search}`));
    await tokensOf(end, verifier);
    const carol = await db().account.findUniqueOrThrow({ where: { email: 'carol@corp.example' } });
    expect(await db().upstreamIdpLink.count({ where: { accountId: carol.id, idpId: corp.id } })).toBe(1);

    // a provider with routed domains does not vouch for other domains
    upstream.users.set('u-eve', { email: 'eve@elsewhere.example', email_verified: true });
    const eve = await federatedSignIn('u-eve', corp);
    expect(page(eve.end).status).toBe(403);
    expect(page(eve.end).html).toContain('This account cannot sign in here');
    expect(await db().account.count({ where: { email: 'eve@elsewhere.example' } })).toBe(0);

    // other emails still sign in with a password
    const local = await createUser(t, 'frank@elsewhere.example');
    const b2 = new Browser(t);
    const p2 = await loginPage(b2, pkce().challenge);
    const done = await finish(b2, await submitLogin(b2, p2, 'frank@elsewhere.example', 'correct horse battery staple'));
    expect(redirect(done).searchParams.get('code')).toBeTruthy();
    expect(local.id).toBeTruthy();
  });

  it('a disabled or locked linked account is refused', async () => {
    upstream.users.set('u-gina', { email: 'gina@elsewhere.example', email_verified: true });
    const first = await federatedSignIn('u-gina');
    await tokensOf(first.end, first.verifier);
    const gina = await db().account.findUniqueOrThrow({ where: { email: 'gina@elsewhere.example' } });

    await setDisabled(db(), gina.id, true);
    const refused = await federatedSignIn('u-gina');
    expect(page(refused.end).status).toBe(403);
    expect(page(refused.end).html).toContain('Your account is disabled');
    await setDisabled(db(), gina.id, false);

    await db().loginThrottle.create({ data: { key: accountThrottleKey(gina.id), failures: 0, lockCount: 1, lockedUntil: new Date(Date.now() + 600_000) } });
    const locked = await federatedSignIn('u-gina');
    expect(page(locked.end).status).toBe(429);
    expect(page(locked.end).html).toContain('Sign-in is paused');
    await db().loginThrottle.delete({ where: { key: accountThrottleKey(gina.id) } });
    const ok = await federatedSignIn('u-gina');
    await tokensOf(ok.end, ok.verifier);
  });

  it('bad callbacks get a clear page, never a 5xx: no state, forged state, missing code, upstream error, replay', async () => {
    const browser = new Browser(t);
    const cases: [string, number, RegExp][] = [
      ['/federation/callback', 400, /not valid/],
      ['/federation/callback?code=abc', 400, /not valid/],
      ['/federation/callback?code=abc&state=forged-state', 400, /cannot be used/],
      [`/federation/callback?code=abc&state=${'x'.repeat(5000)}`, 400, /cannot be used/],
    ];
    for (const [url, status, text] of cases) {
      const p = page(await browser.get(url));
      expect(p.status, url).toBe(status);
      expect(p.html, url).toMatch(text);
    }
    const post = await browser.request('POST', '/federation/callback', { code: 'x' });
    expect(post.status).toBe(405);

    // a real state without a code, and one with error=access_denied
    for (const [extra, status, text] of [
      ['', 400, /carries no authorization code/],
      ['&error=access_denied', 403, /was cancelled/],
    ] as const) {
      const b = new Browser(t);
      const lp = await loginPage(b, pkce().challenge);
      const to = redirect(await continueWith(b, lp.html, open));
      const state = to.searchParams.get('state')!;
      const p = page(await b.get(`/federation/callback?state=${encodeURIComponent(state)}${extra}`));
      expect(p.status).toBe(status);
      expect(p.html).toMatch(text);
      expect(p.html).toContain('Back to sign-in');
    }

    // a forged code with a real state: the exchange fails at the upstream
    const b = new Browser(t);
    const lp = await loginPage(b, pkce().challenge);
    const to = redirect(await continueWith(b, lp.html, open));
    const forged = page(await b.get(`/federation/callback?code=forged&state=${encodeURIComponent(to.searchParams.get('state')!)}&iss=${encodeURIComponent(upstream.issuer)}`));
    expect(forged.status).toBe(400);
    expect(forged.html).toContain('could not be verified');

    // replay: a callback used once is refused the second time
    upstream.users.set('u-hal', { email: 'hal@elsewhere.example', email_verified: true });
    const first = await federatedSignIn('u-hal');
    await tokensOf(first.end, first.verifier);
    const replay = page(await first.browser.get(`${first.callback.pathname}${first.callback.search}`));
    expect(replay.status).toBe(400);
    expect(replay.html).toContain('cannot be used');

    // a callback URL opened in another browser (login CSRF) ends without a sign-in
    upstream.users.set('u-ivy', { email: 'ivy@elsewhere.example', email_verified: true });
    const victim = new Browser(t);
    const b3 = new Browser(t);
    const lp3 = await loginPage(b3, pkce().challenge);
    const cb = await atUpstream(await continueWith(b3, lp3.html, open), 'u-ivy');
    const elsewhere = page(await victim.get(`${cb.pathname}${cb.search}`));
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.html).toContain('This sign-in request has expired');

    // an unknown or disabled provider on the form: the login form with a message
    const b4 = new Browser(t);
    const lp4 = await loginPage(b4, pkce().challenge);
    const unknown = page(await b4.post(formAction(lp4.html, '/federate'), { csrf: csrfOf(lp4.html), idp: 'nope' }));
    expect(unknown.status).toBe(400);
    expect(unknown.html).toContain('That sign-in option is not available');
    const noCsrf = page(await b4.post(formAction(lp4.html, '/federate'), { idp: open.id }));
    expect(noCsrf.status).toBe(403);
  });

  it('a callback raced 10 times at once signs in once', async () => {
    upstream.users.set('u-jo', { email: 'jo@elsewhere.example', email_verified: true });
    const browser = new Browser(t);
    const lp = await loginPage(browser, pkce().challenge);
    const cb = await atUpstream(await continueWith(browser, lp.html, open), 'u-jo');
    const results = await Promise.all(Array.from({ length: 10 }, () => browser.request('GET', `${cb.pathname}${cb.search}`)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([303, ...Array<number>(9).fill(400)]);
    for (const r of results.filter((x) => x.status === 400)) expect(r.text).toContain('cannot be used');
    expect(await db().upstreamIdpLink.count({ where: { subject: 'u-jo' } })).toBe(1);
    expect(await db().account.count({ where: { email: 'jo@elsewhere.example' } })).toBe(1);
  });

  it('a client that requires MFA asks a federated person for a second factor, like after a password', async () => {
    const strict = await createWebClient(t, { scopes: ['openid', 'email'], requireMfa: true });
    upstream.users.set('u-lee', { email: 'lee@elsewhere.example', email_verified: true });
    const browser = new Browser(t);
    const lp = page(await authorize(browser, { client_id: strict.id, scope: 'openid email', code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
    const cb = await atUpstream(await continueWith(browser, lp.html, open), 'u-lee');
    const next = page(await browser.get(`${cb.pathname}${cb.search}`));
    expect(next.status).toBe(200);
    expect(next.html).toContain('Set up two-step verification');
  });

  it('the upstream iss in the callback is checked: a forged one is refused', async () => {
    upstream.users.set('u-max', { email: 'max@elsewhere.example', email_verified: true });
    const browser = new Browser(t);
    const lp = await loginPage(browser, pkce().challenge);
    const cb = await atUpstream(await continueWith(browser, lp.html, open), 'u-max');
    expect(cb.searchParams.get('iss')).toBe(upstream.issuer);
    cb.searchParams.set('iss', 'https://evil.example');
    const p = page(await browser.get(`${cb.pathname}${cb.search}`));
    expect(p.status).toBe(400);
    expect(p.html).toContain('could not be verified');
    expect(await db().account.count({ where: { email: 'max@elsewhere.example' } })).toBe(0);
  });

  it('upstream calls go through the outbound guard: a loopback provider not in OUTBOUND_ALLOWLIST is unavailable', async () => {
    const guarded = await createTestApp({ env: { OUTBOUND_ALLOWLIST: '' } });
    try {
      const idp = await createIdp(guarded.gatehouse.db.prisma, guarded.config.keyEncryptionKey, { name: 'Loopback', issuer: upstream.issuer, clientId: 'x', clientSecret: 'y' });
      const c = await createWebClient(guarded, { scopes: ['openid'] });
      const browser = new Browser(guarded);
      const lp = page(await authorize(browser, { client_id: c.id, code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
      const before = upstream.requests.length;
      const p = page(await browser.post(formAction(lp.html, '/federate'), { csrf: csrfOf(lp.html), idp: idp.id }));
      expect(p.status).toBe(503);
      expect(p.html).toContain('Loopback cannot be reached right now');
      expect(upstream.requests.length).toBe(before);
    } finally {
      await guarded.close();
    }
  });

  it('an upstream outage shows a clear page while local sign-in keeps working', async () => {
    await upstream.stop();
    const user = await createUser(t, 'kim@elsewhere.example');
    const browser = new Browser(t);
    const { verifier, challenge } = pkce();
    const lp = await loginPage(browser, challenge);
    const down = page(await continueWith(browser, lp.html, open));
    expect(down.status).toBe(503);
    expect(down.html).toContain('Upstream cannot be reached right now');
    expect(down.html).toContain('sign in with your email and password');
    // the same interaction: the password still works
    const again = page(await browser.get(down.url.replace(/\/federate$/, '')));
    expect(again.html).toContain('name="password"');
    const end = await finish(browser, await submitLogin(browser, again, 'kim@elsewhere.example', 'correct horse battery staple'));
    const tokens = await tokensOf(end, verifier);
    expect(decodeJwt(tokens.id_token).sub).toBe(user.id);
  });
});
