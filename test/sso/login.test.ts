// The login form: CSRF, no account enumeration, disabled accounts, lockout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDisabled } from '../../src/accounts/store.ts';
import { accountThrottleKey, lockStatus } from '../../src/accounts/throttle.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import {
  Browser,
  PASSWORD,
  authorize,
  csrfOf,
  createUser,
  createWebClient,
  formAction,
  isLoginPage,
  page,
  pkce,
  redirect,
  submitLogin,
  type Page,
  type TestClient,
} from './flow.ts';

async function loginPage(b: Browser, client: TestClient): Promise<Page> {
  const { challenge } = pkce();
  const p = page(await authorize(b, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256' }));
  expect(isLoginPage(p)).toBe(true);
  return p;
}

/** Has this browser a signed-in session? (prompt=none answers with a code, or login_required) */
async function signedIn(b: Browser, client: TestClient): Promise<boolean> {
  const { challenge } = pkce();
  const r = redirect(await authorize(b, { client_id: client.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
  return r.searchParams.has('code');
}

/** Each login page carries a fresh passkey challenge (single use): the one part of two refusals that differs. */
const withoutChallenge = (html: string) => html.replace(/&quot;challenge&quot;:&quot;[A-Za-z0-9_-]+&quot;/g, '&quot;challenge&quot;:&quot;CHALLENGE&quot;');

describe('login form', () => {
  let t: TestApp;
  let client: TestClient;
  let alice: { id: string };

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    alice = await createUser(t, 'alice@example.com');
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('has the inputs the contract names: login, password and a hidden CSRF token', async () => {
    const p = await loginPage(new Browser(t), client);
    expect(p.html).toMatch(/<form method="post" action="\/interaction\/[A-Za-z0-9_-]+\/login"/);
    expect(p.html).toMatch(/<input id="login" name="login" type="email"/);
    expect(p.html).toMatch(/<input id="password" name="password" type="password"/);
    expect(csrfOf(p.html)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  describe('CSRF', () => {
    it('a POST without the token → 403 page, no login', async () => {
      const b = new Browser(t);
      const p = await loginPage(b, client);
      const res = await b.request('POST', formAction(p.html, '/login'), { login: 'alice@example.com', password: PASSWORD });
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.text).toContain('not accepted');
      expect(res.headers.location).toBeUndefined();
      expect(await signedIn(b, client)).toBe(false);
    });

    it('a wrong token, or the token of another interaction → 403, no login', async () => {
      const b = new Browser(t);
      const p = await loginPage(b, client);
      const other = await loginPage(new Browser(t), client);
      for (const csrf of ['x'.repeat(43), csrfOf(other.html), '', csrfOf(p.html).slice(0, 42)]) {
        const res = await b.request('POST', formAction(p.html, '/login'), { csrf, login: 'alice@example.com', password: PASSWORD });
        expect(res.status).toBe(403);
      }
      expect(await signedIn(b, client)).toBe(false);
      // the page itself still works with its own token
      redirect(await submitLogin(b, await loginPage(b, client), 'alice@example.com', PASSWORD));
      expect(await signedIn(b, client)).toBe(true);
    });

    it('the consent and cancel forms need it too', async () => {
      const b = new Browser(t);
      const p = await loginPage(b, client);
      const abort = formAction(p.html, '/abort');
      expect((await b.request('POST', abort, { csrf: 'nope' })).status).toBe(403);
      const consent = abort.replace(/\/abort$/, '/consent');
      expect((await b.request('POST', consent, { decision: 'approve' })).status).toBe(403);
      // with the token, cancel goes back to the application with access_denied
      const back = redirect(await b.post(abort, { csrf: csrfOf(p.html) }));
      expect(back.searchParams.get('error')).toBe('access_denied');
    });
  });

  it('a wrong email and a wrong password get the same answer', async () => {
    const b1 = new Browser(t);
    const b2 = new Browser(t);
    const p1 = await loginPage(b1, client);
    const p2 = await loginPage(b2, client);
    const wrongEmail = page(await submitLogin(b1, p1, 'nobody@example.com', PASSWORD));
    const wrongPassword = page(await submitLogin(b2, p2, 'alice@example.com', 'not the password'));
    expect(wrongEmail.status).toBe(400);
    expect(wrongPassword.status).toBe(wrongEmail.status);
    expect(wrongEmail.html).toContain('Email or password is incorrect');
    // Identical apart from what is specific to the interaction (its uid, CSRF token and passkey challenge) and the email typed.
    const normalize = (p: Page, uid: string, email: string) =>
      withoutChallenge(p.html.replaceAll(uid, 'UID').replaceAll(csrfOf(p.html), 'CSRF').replaceAll(email, 'EMAIL'));
    const uidOf = (p: Page) => /\/interaction\/([A-Za-z0-9_-]+)/.exec(p.url)![1]!;
    expect(normalize(wrongEmail, uidOf(p1), 'nobody@example.com')).toBe(normalize(wrongPassword, uidOf(p2), 'alice@example.com'));
    expect(wrongEmail.html).toContain('value="nobody@example.com"');
    expect(Object.keys(wrongEmail.res.headers).sort()).toEqual(Object.keys(wrongPassword.res.headers).sort());
  });

  it('empty fields re-show the form with a hint, without a login attempt', async () => {
    const b = new Browser(t);
    const p = await loginPage(b, client);
    const again = page(await submitLogin(b, p, '', ''));
    expect(again.status).toBe(400);
    expect(again.html).toContain('Enter your email address and your password');
    expect(isLoginPage(again)).toBe(true);
  });

  it('a disabled account cannot log in, and sees the generic message', async () => {
    const dave = await createUser(t, 'dave@example.com');
    await setDisabled(t.gatehouse.db.prisma, dave.id, true);
    const b = new Browser(t);
    const res = page(await submitLogin(b, await loginPage(b, client), 'dave@example.com', PASSWORD));
    expect(res.status).toBe(400);
    expect(res.html).toContain('Email or password is incorrect');
    expect(await signedIn(b, client)).toBe(false);
  });

  it('emails are case-insensitive; a successful login ends on the client with a code', async () => {
    const b = new Browser(t);
    const to = redirect(await submitLogin(b, await loginPage(b, client), '  Alice@Example.COM ', PASSWORD));
    expect(to.searchParams.get('code')).toBeTruthy();
    expect((await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(alice.id))).failures).toBe(0);
  });

  it('bad form submissions never yield a 5xx', async () => {
    const b = new Browser(t);
    const p = await loginPage(b, client);
    const action = formAction(p.html, '/login');
    const big = await b.request('POST', action, `csrf=${csrfOf(p.html)}&login=${'a'.repeat(20_000)}`);
    expect(big.status).toBe(413);
    const json = await t.request.post(action).set('Content-Type', 'application/json').send('{"login":"x"}');
    expect(json.status).toBe(415);
    const weird = await b.request('POST', action, `csrf=${csrfOf(p.html)}&login=%E0%A4%A&password=%00%ZZ`);
    expect(weird.status).toBe(400);
    const get = await b.request('GET', action);
    expect(get.status).toBe(405);
  });
});

describe('lockout', () => {
  let t: TestApp;
  let client: TestClient;
  let erin: { id: string };

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '300', LOGIN_IP_MAX_FAILURES: '1000' } });
    erin = await createUser(t, 'erin@example.com');
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('parallel wrong passwords lock the account; then the right password gets the same generic message', async () => {
    const b = new Browser(t);
    const p = await loginPage(b, client);
    const attempts = await Promise.all(Array.from({ length: 8 }, () => submitLogin(b, p, 'erin@example.com', 'wrong password')));
    const bodies = attempts.map((s) => page(s));
    for (const r of bodies) {
      expect(r.status).toBe(400);
      expect(r.html).toContain('Email or password is incorrect');
    }
    const status = await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(erin.id));
    expect(status.locked).toBe(true);
    expect(status.lockCount).toBe(1);

    const right = page(await submitLogin(b, p, 'erin@example.com', PASSWORD));
    expect(right.status).toBe(400);
    expect(right.html).toContain('Email or password is incorrect');
    // a locked response looks like any failure
    expect(withoutChallenge(right.html.replaceAll(csrfOf(right.html), ''))).toBe(withoutChallenge(bodies[0]!.html.replaceAll(csrfOf(bodies[0]!.html), '')));
    expect(await signedIn(b, client)).toBe(false);
  });
});
