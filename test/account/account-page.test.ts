// The account page (/account) through the real app and database: signing in
// through Gatehouse's own pages (built-in client, code + PKCE), and what
// people do there — password, recovery codes, passkeys, sessions, grants —
// each behind its CSRF token, each audited, bad input answered with a message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userHandleOf } from '../../src/accounts/passkeys.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { SoftAuthenticator, pageOptions } from '../helpers/webauthn.ts';
import {
  Browser,
  PASSWORD,
  authorize,
  codeFlowTokens,
  createUser,
  createWebClient,
  csrfOf,
  formAction,
  isLoginPage,
  page,
  pkce,
  redirect,
  refresh,
  submitLogin,
  type Page,
  type TestClient,
} from '../sso/flow.ts';
import { isVerifyPage, recoveryCodesOf, secretOf, submitCode, totp, wrongCode } from '../sso/mfa-flow.ts';

let t: TestApp;
let web: TestClient;

/** Opens /account in `b`, signing in with the password when asked. */
async function openAccount(b: Browser, email: string, password = PASSWORD): Promise<Page> {
  let p = page(await b.get('/account'));
  if (isLoginPage(p)) p = page(await submitLogin(b, p, email, password));
  expect(p.status, p.html.slice(0, 400)).toBe(200);
  expect(p.html).toContain('Your account');
  return p;
}

function post(b: Browser, p: Page, action: string, fields: Record<string, string> = {}) {
  return b.post(formAction(p.html, `/account/${action}`), { csrf: csrfOf(p.html), ...fields });
}

const audits = (action: string, targetId: string) => t.gatehouse.db.prisma.auditEvent.findMany({ where: { action, targetId } });

beforeAll(async () => {
  t = await createTestApp();
  web = await createWebClient(t, { name: 'Acme Notes', firstParty: true, scopes: ['openid', 'email', 'offline_access'] });
});
afterAll(() => t?.close());

describe('the account page', () => {
  it('signs in through the sign-in pages (built-in client, code + PKCE) and shows the account', async () => {
    await createUser(t, 'page@example.com');
    const b = new Browser(t);
    const first = await b.request('GET', '/account');
    expect(first.status).toBe(303);
    const auth = new URL(first.headers.location as string, t.config.issuer);
    expect(auth.pathname).toBe('/auth');
    expect(auth.searchParams.get('client_id')).toBe('gatehouse-account');
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    const p = await openAccount(b, 'page@example.com');
    expect(p.html).toContain('page@example.com');
    expect(p.html).toContain('this device');
    // the built-in client is not listed as an application with access
    expect(p.html).not.toContain('Your Gatehouse account</strong>');
  });

  it('refuses a callback it did not start, and a replayed one', async () => {
    await createUser(t, 'replay@example.com');
    const b = new Browser(t);
    const start = await b.request('GET', '/account');
    let step = await b.follow(start, '/account');
    const login = page(step);
    const res = await b.request('POST', formAction(login.html, '/login'), { csrf: csrfOf(login.html), login: 'replay@example.com', password: PASSWORD });
    // follow to the callback by hand
    step = await b.follow(res, '/login');
    expect(page(step).html).toContain('Your account');
    // a callback without the login cookie (another browser) is refused
    const other = new Browser(t);
    const cb = await other.request('GET', '/account/callback?code=abc&state=xyz');
    expect(cb.status).toBe(400);
    expect(cb.text).toContain('Sign-in expired');
  });

  it('every form needs its CSRF token; without a session the forms answer 401', async () => {
    await createUser(t, 'csrf@example.com');
    const b = new Browser(t);
    const p = await openAccount(b, 'csrf@example.com');
    const res = await b.request('POST', formAction(p.html, '/account/sessions-end'), { csrf: 'x'.repeat(43) });
    expect(res.status).toBe(403);
    expect((await b.request('POST', formAction(p.html, '/account/sessions-end'), {})).status).toBe(403);
    expect((await new Browser(t).request('POST', '/account/sessions-end', { csrf: csrfOf(p.html) })).status).toBe(401);
    // still signed in: nothing was done
    expect(page(await b.get('/account')).html).toContain('this device');
  });

  it('changes the password only with the current one', async () => {
    const { id } = await createUser(t, 'pw@example.com');
    const b = new Browser(t);
    let p = await openAccount(b, 'pw@example.com');
    p = page(await post(b, p, 'password', { current: 'wrong password!', password: 'a new password 1', confirm: 'a new password 1' }));
    expect(p.status).toBe(400);
    expect(p.html).toContain('Your current password is not right.');
    p = page(await post(b, p, 'password', { current: PASSWORD, password: 'a new password 1', confirm: 'different' }));
    expect(p.html).toContain('not the same');
    p = page(await post(b, p, 'password', { current: PASSWORD, password: 'short', confirm: 'short' }));
    expect(p.status).toBe(400);
    expect(p.html).toContain('at least 8 characters');
    p = page(await post(b, p, 'password', { current: PASSWORD, password: 'a new password 1', confirm: 'a new password 1' }));
    expect(p.html).toContain('Your password is changed.');
    expect(await audits('user.set_password', id)).toHaveLength(1);
    const fresh = new Browser(t);
    await openAccount(fresh, 'pw@example.com', 'a new password 1');
  });

  it('asks to change the email (current password needed): a link to the new address, audited', async () => {
    const { id } = await createUser(t, 'mail@example.com');
    const b = new Browser(t);
    let p = await openAccount(b, 'mail@example.com');
    expect(p.html).toContain('New email address');
    p = page(await post(b, p, 'email', { email: 'new@example.com', current: 'wrong password!' }));
    expect(p.status).toBe(400);
    expect(p.html).toContain('Your current password is not right.');
    p = page(await post(b, p, 'email', { email: 'not an address', current: PASSWORD }));
    expect(p.status).toBe(400);
    p = page(await post(b, p, 'email', { email: 'new@example.com', current: PASSWORD }));
    expect(p.html).toContain('We sent a confirmation link to the new address.');
    expect(await audits('user.email_change_request', id)).toHaveLength(1);
    // the address changes only when the link is opened
    expect((await t.gatehouse.db.prisma.account.findUniqueOrThrow({ where: { id } })).email).toBe('mail@example.com');
  });

  it('adds, renames and removes passkeys; never the last second factor; recovery codes', async () => {
    const { id } = await createUser(t, 'keys@example.com');
    const b = new Browser(t);
    let p = await openAccount(b, 'keys@example.com');
    expect(p.html).toContain('You have no passkeys yet.');
    const { hostname, origin } = new URL(t.config.issuer);
    const add = async (name: string) => {
      const auth = new SoftAuthenticator(hostname, origin, userHandleOf(id));
      const options = pageOptions(p.html, '/account/passkey-add');
      p = page(await post(b, p, 'passkey-add', { name, response: JSON.stringify(auth.register(options.challenge)) }));
      return auth;
    };
    const laptop = await add('Laptop');
    expect(p.html).toContain('Your passkey is added.');
    expect(p.html).toContain('Laptop');
    // the first factor closed the enrolment window; with a password-only sign-in behind the page no
    // further factor may be added: sign in with the second factor first (?mfa=1, a step-up)
    expect(p.html).toContain('To add a passkey, sign in again with your second factor.');
    expect(p.html).not.toContain('/account/passkey-add');
    const refused = page(await b.post('/account/passkey-add', { csrf: csrfOf(p.html), name: 'X', response: '{}' }));
    expect(refused.status).toBe(403);
    const [only] = await t.gatehouse.db.prisma.passkey.findMany({ where: { accountId: id } });
    const removal = page(await b.post('/account/passkey-remove', { csrf: csrfOf(p.html), id: only!.id }));
    expect(removal.status).toBe(403);
    expect(removal.html).toContain('sign in again with your second factor');
    const verify = page(await b.get('/account?mfa=1'));
    expect(verify.html).not.toContain('name="password"');
    p = page(await b.post(formAction(verify.html, '/mfa-passkey'), { csrf: csrfOf(verify.html), response: JSON.stringify(laptop.assert(pageOptions(verify.html, '/mfa-passkey').challenge)) }));
    expect(p.html).toContain('Your account');
    // a registration answer is single-use
    const again = page(await post(b, p, 'passkey-add', { name: 'Again', response: JSON.stringify(laptop.register(pageOptions(p.html, '/account/passkey-add').challenge)) }));
    expect(again.status).toBe(400);
    expect(again.html).toContain('registered already');
    p = again;
    const rows = await t.gatehouse.db.prisma.passkey.findMany({ where: { accountId: id } });
    expect(rows).toHaveLength(1);
    // rename: bad input gets a message
    p = page(await post(b, p, 'passkey-rename', { id: rows[0]!.id, name: '' }));
    expect(p.status).toBe(400);
    p = page(await post(b, p, 'passkey-rename', { id: rows[0]!.id, name: 'Work laptop' }));
    expect(p.html).toContain('<strong>Work laptop</strong>');
    // the last second factor cannot go
    p = page(await post(b, p, 'passkey-remove', { id: rows[0]!.id }));
    expect(p.status).toBe(409);
    expect(p.html).toContain('last second factor');
    await add('Phone');
    p = page(await post(b, p, 'passkey-remove', { id: rows[0]!.id }));
    expect(p.html).toContain('The passkey is removed.');
    expect(p.html).not.toContain('<strong>Work laptop</strong>');
    // an unknown passkey id: a message, not a 5xx
    p = page(await post(b, p, 'passkey-remove', { id: 'not-an-id' }));
    expect(p.status).toBe(404);
    // recovery codes, shown once
    p = page(await post(b, p, 'recovery-codes'));
    expect([...p.html.matchAll(/<li><code>([0-9a-z-]{14})<\/code><\/li>/g)]).toHaveLength(10);
    expect(p.html).toContain('id="copy-codes"');
    const actions = (await t.gatehouse.db.prisma.auditEvent.findMany({ where: { targetId: id } })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['passkey.add', 'passkey.rename', 'passkey.remove', 'user.recovery_codes_regenerate']));
  });

  it('a password-only sign-in cannot add a first factor once the enrolment window is closed', async () => {
    const { id } = await createUser(t, 'late@example.com');
    await t.gatehouse.db.prisma.account.update({ where: { id }, data: { mfaEnrolmentUntil: null } });
    const b = new Browser(t);
    const p = await openAccount(b, 'late@example.com');
    expect(p.html).toContain('Ask your administrator.');
    const res = page(await b.post('/account/passkey-add', { csrf: csrfOf(p.html), name: 'Mine', response: '{}' }));
    expect(res.status).toBe(403);
    expect(await t.gatehouse.db.prisma.passkey.count({ where: { accountId: id } })).toBe(0);
  });

  it('sets up an authenticator app inside the enrolment window: QR code, key, code, recovery codes; the next sign-in asks for it', async () => {
    const { id } = await createUser(t, 'app@example.com');
    const b = new Browser(t);
    let p = await openAccount(b, 'app@example.com');
    expect(p.html).toContain('Set up an authenticator app');
    expect(p.html).not.toContain('it is set up at your next sign-in');
    // the set-up form needs its CSRF token
    expect((await b.request('POST', formAction(p.html, '/account/totp-setup'), { csrf: 'x'.repeat(43) })).status).toBe(403);
    p = page(await post(b, p, 'totp-setup'));
    expect(p.status).toBe(200);
    expect(p.html).toMatch(/<img class="qr" src="data:image\/svg\+xml;base64,/);
    const secret = secretOf(p);
    const setup = /name="setup" value="([^"]+)"/.exec(p.html)![1]!;
    // the secret travels sealed, never in clear in the form
    expect(setup).not.toContain(secret);
    // the confirm form needs its CSRF token too
    const noCsrf = await b.request('POST', formAction(p.html, '/account/totp-confirm'), { csrf: 'x'.repeat(43), setup, code: await totp(secret) });
    expect(noCsrf.status).toBe(403);
    // a wrong code: the form again, with a message
    const wrong = page(await post(b, p, 'totp-confirm', { setup, code: await wrongCode(secret) }));
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('That code is not right.');
    expect(secretOf(wrong)).toBe(secret);
    // a sealed secret from another account-page session does not open here
    const other = new Browser(t);
    const otherPage = await openAccount(other, 'app@example.com');
    const foreign = page(await other.post('/account/totp-confirm', { csrf: csrfOf(otherPage.html), setup, code: await totp(secret) }));
    expect(foreign.status).toBe(400);
    expect(foreign.html).toContain('expired or is not valid');
    expect((await t.gatehouse.db.prisma.account.findUniqueOrThrow({ where: { id } })).totpEnabledAt).toBeNull();
    // the right code turns it on; the recovery codes are shown once with the copy/download tools
    const confirm = { csrf: csrfOf(wrong.html), setup, code: await totp(secret) };
    p = page(await b.post(formAction(wrong.html, '/account/totp-confirm'), confirm));
    expect(p.status).toBe(200);
    expect(p.html).toContain('The authenticator app is set up');
    expect(recoveryCodesOf(p)).toHaveLength(10);
    expect(p.html).toContain('id="copy-codes"');
    expect(p.html).toContain('Remove the authenticator app');
    expect(await audits('mfa.enrol', id)).toHaveLength(1);
    // the same form again does nothing: no second enrolment, no new codes
    const replay = page(await b.post(formAction(wrong.html, '/account/totp-confirm'), confirm));
    expect(replay.status).toBe(409);
    expect(replay.html).toContain('on already');
    expect(recoveryCodesOf(replay)).toHaveLength(0);
    expect(await audits('mfa.enrol', id)).toHaveLength(1);
    // the next sign-in asks for a code from the app
    const next = new Browser(t);
    const login = page(await next.get('/account'));
    const asked = page(await submitLogin(next, login, 'app@example.com', PASSWORD));
    expect(isVerifyPage(asked)).toBe(true);
    const signedIn = page(await submitCode(next, asked, '/mfa', await totp(secret, 1)));
    expect(signedIn.html).toContain('Your account');
  });

  it('replayed confirm forms racing: exactly one enrolment', async () => {
    const { id } = await createUser(t, 'race-app@example.com');
    const b = new Browser(t);
    const p = page(await post(b, await openAccount(b, 'race-app@example.com'), 'totp-setup'));
    const secret = secretOf(p);
    const setup = /name="setup" value="([^"]+)"/.exec(p.html)![1]!;
    const code = await totp(secret);
    const results = await Promise.all(Array.from({ length: 10 }, () => post(b, p, 'totp-confirm', { setup, code })));
    expect(results.map((r) => page(r).status).filter((s) => s === 200)).toHaveLength(1);
    expect(results.every((r) => page(r).status < 500)).toBe(true);
    expect(await audits('mfa.enrol', id)).toHaveLength(1);
    expect(await t.gatehouse.db.prisma.recoveryCode.count({ where: { accountId: id } })).toBe(10);
  });

  it('outside the enrolment window a password-only sign-in cannot set up an authenticator app', async () => {
    const { id } = await createUser(t, 'late-app@example.com');
    const b = new Browser(t);
    const inside = await openAccount(b, 'late-app@example.com');
    // a set-up shown while the window was open, confirmed after it closed: refused too
    const shown = page(await post(b, inside, 'totp-setup'));
    await t.gatehouse.db.prisma.account.update({ where: { id }, data: { mfaEnrolmentUntil: null } });
    const p = page(await b.get('/account'));
    expect(p.html).not.toContain('/account/totp-setup');
    expect(p.html).toContain('the window to set up the first one with only your password is closed. Ask your administrator.');
    const res = page(await b.post('/account/totp-setup', { csrf: csrfOf(p.html) }));
    expect(res.status).toBe(403);
    expect(res.html).toContain('Ask your administrator.');
    expect(res.html).not.toContain('id="totp-secret"');
    const secret = secretOf(shown);
    const late = page(await post(b, shown, 'totp-confirm', { setup: /name="setup" value="([^"]+)"/.exec(shown.html)![1]!, code: await totp(secret) }));
    expect(late.status).toBe(403);
    expect(late.html).toContain('Ask your administrator.');
    expect((await t.gatehouse.db.prisma.account.findUniqueOrThrow({ where: { id } })).totpEnabledAt).toBeNull();
  });

  it('a person with a passkey sets up an authenticator app only after signing in with the passkey', async () => {
    const { id } = await createUser(t, 'both@example.com');
    const b = new Browser(t);
    let p = await openAccount(b, 'both@example.com');
    const { hostname, origin } = new URL(t.config.issuer);
    const key = new SoftAuthenticator(hostname, origin, userHandleOf(id));
    p = page(await post(b, p, 'passkey-add', { name: 'Laptop', response: JSON.stringify(key.register(pageOptions(p.html, '/account/passkey-add').challenge)) }));
    expect(p.html).toContain('Your passkey is added.');
    // the window is closed now, and this session used only the password
    expect(p.html).toContain('To set up an authenticator app, sign in again with your second factor.');
    const refused = page(await b.post('/account/totp-setup', { csrf: csrfOf(p.html) }));
    expect(refused.status).toBe(403);
    expect(refused.html).not.toContain('id="totp-secret"');
    const verify = page(await b.get('/account?mfa=1'));
    p = page(await b.post(formAction(verify.html, '/mfa-passkey'), { csrf: csrfOf(verify.html), response: JSON.stringify(key.assert(pageOptions(verify.html, '/mfa-passkey').challenge)) }));
    p = page(await post(b, p, 'totp-setup'));
    const secret = secretOf(p);
    p = page(await post(b, p, 'totp-confirm', { setup: /name="setup" value="([^"]+)"/.exec(p.html)![1]!, code: await totp(secret) }));
    expect(p.html).toContain('The authenticator app is set up');
    expect(recoveryCodesOf(p)).toHaveLength(10);
    expect(await audits('mfa.enrol', id)).toHaveLength(1);
  });

  it("revokes an application's access: its refresh token is refused", async () => {
    await createUser(t, 'grants@example.com');
    const b = new Browser(t);
    const tokens = await codeFlowTokens(b, web, { scope: 'openid email offline_access', prompt: 'consent' }, { email: 'grants@example.com' });
    expect(tokens.refresh_token).toBeTruthy();
    let p = await openAccount(b, 'grants@example.com');
    expect(p.html).toContain('Acme Notes');
    expect(p.html).toContain('app.example.com');
    expect(p.html).toContain('<code>offline_access</code>');
    p = page(await post(b, p, 'grant-revoke', { grant: /name="grant" value="([^"]+)"/.exec(p.html)![1]! }));
    expect(p.html).toContain('The application&#39;s access is revoked.');
    const res = await refresh(t, web, tokens.refresh_token as string);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    // unknown grant: a message
    p = page(await b.post('/account/grant-revoke', { csrf: csrfOf(p.html), grant: 'nope' }));
    expect(p.status).toBe(404);
    expect(p.html).toContain('no such grant');
  });

  it('signs out another session; signing out everywhere ends the account page too', async () => {
    const { id } = await createUser(t, 'sessions@example.com');
    const phone = new Browser(t);
    await codeFlowTokens(phone, web, {}, { email: 'sessions@example.com' });
    const desk = new Browser(t);
    let p = await openAccount(desk, 'sessions@example.com');
    const uids = [...p.html.matchAll(/name="session" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(uids).toHaveLength(2);
    const current = /<strong>[^<]*<\/strong> <span class="badge">this device<\/span>[\s\S]*?name="session" value="([^"]+)"/.exec(p.html)![1]!;
    const other = uids.find((u) => u !== current)!;
    p = page(await post(desk, p, 'session-end', { session: other }));
    expect(p.html).toContain('That session is signed out.');
    const { challenge } = pkce();
    const silent = redirect(await authorize(phone, { client_id: web.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(silent.searchParams.get('error')).toBe('login_required');
    expect(await audits('user.session_end', id)).toHaveLength(1);
    // someone else's session id: not found, nothing ended
    p = page(await post(desk, p, 'session-end', { session: other }));
    expect(p.status).toBe(404);
    // everywhere
    p = page(await post(desk, p, 'sessions-end'));
    expect(p.html).toContain('signed out everywhere');
    const back = await desk.request('GET', '/account');
    expect(back.status).toBe(303);
    expect(back.headers.location).toMatch(/\/auth\?/);
  });
});
