// Passkeys in the sign-in interaction, through the real app and database, with
// a software authenticator (test/helpers/webauthn.ts): passwordless sign-in,
// the second factor, step-up, amr/acr, single-use challenges (also under 10
// concurrent answers), counters (a clone is refused and audited), bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPasskey, userHandleOf } from '../../src/accounts/passkeys.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { SoftAuthenticator, pageOptions } from '../helpers/webauthn.ts';
import { Browser, createUser, createWebClient, csrfOf, formAction, isLoginPage, page, redirect, type Page, type TestClient } from '../sso/flow.ts';
import { ACR_MFA, idTokenOf, isVerifyPage, passwordStep, start } from '../sso/mfa-flow.ts';

const FAILED = 'That passkey could not be used';

let t: TestApp;
let client: TestClient;
let strict: TestClient;

async function withPasskey(email: string, opts: { deviceType?: string } = {}) {
  const account = await createUser(t, email);
  const { hostname, origin } = new URL(t.config.issuer);
  const auth = new SoftAuthenticator(hostname, origin, userHandleOf(account.id));
  const passkey = await insertPasskey(t.gatehouse.db.prisma, {
    accountId: account.id,
    credentialId: auth.credentialId,
    publicKey: auth.cosePublicKey().toString('base64url'),
    counter: 0,
    transports: ['internal'],
    name: 'Laptop',
    backedUp: false,
    deviceType: opts.deviceType ?? 'singleDevice',
  });
  return { account, auth, passkey };
}

function postAnswer(b: Browser, p: Page, action: string, answer: unknown) {
  return b.post(formAction(p.html, action), { csrf: csrfOf(p.html), response: JSON.stringify(answer) });
}

beforeAll(async () => {
  t = await createTestApp();
  client = await createWebClient(t, { firstParty: true, scopes: ['openid', 'email'] });
  strict = await createWebClient(t, { firstParty: true, requireMfa: true, scopes: ['openid'] });
});
afterAll(() => t?.close());

describe('passwordless sign-in with a passkey', () => {
  it('signs in without a password: acr mfa, amr hwk + user + mfa, the email field offers passkeys', async () => {
    const { account, auth } = await withPasskey('pk1@example.com');
    const b = new Browser(t);
    const s = await start(b, client, { acr_values: ACR_MFA });
    const login = page(s.step);
    expect(login.html).toMatch(/autocomplete="username webauthn"/);
    expect(login.html).toMatch(/<script src="[^"]*\/static\/webauthn\.js\?v=[\w-]+" defer><\/script>/);
    const options = pageOptions(login.html, '/passkey');
    const claims = await idTokenOf(t, client, redirect(await postAnswer(b, login, '/passkey', auth.assert(options.challenge))), s.verifier);
    expect(claims.sub).toBe(account.id);
    expect(claims.acr).toBe(ACR_MFA);
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    const row = await t.gatehouse.db.prisma.passkey.findUniqueOrThrow({ where: { credentialId: auth.credentialId } });
    expect(row.counter).toBe(1n);
    expect(row.lastUsedAt).not.toBeNull();
  });

  it('says swk for a synced passkey, and a client that requires MFA takes it', async () => {
    const { auth } = await withPasskey('pk-synced@example.com', { deviceType: 'multiDevice' });
    const b = new Browser(t);
    const s = await start(b, strict);
    const login = page(s.step);
    const claims = await idTokenOf(t, strict, redirect(await postAnswer(b, login, '/passkey', auth.assert(pageOptions(login.html, '/passkey').challenge))), s.verifier);
    expect(claims.amr).toEqual(['swk', 'user', 'mfa']);
  });

  it('refuses an answer without user verification', async () => {
    const { auth } = await withPasskey('pk-nouv@example.com');
    const b = new Browser(t);
    const login = page((await start(b, client)).step);
    const p = page(await postAnswer(b, login, '/passkey', auth.assert(pageOptions(login.html, '/passkey').challenge, { uv: false })));
    expect(p.status).toBe(400);
    expect(p.html).toContain(FAILED);
  });

  it('uses each challenge once: a replayed answer is refused', async () => {
    const { auth } = await withPasskey('pk-replay@example.com');
    const b = new Browser(t);
    const login = page((await start(b, client)).step);
    const answer = auth.assert(pageOptions(login.html, '/passkey').challenge);
    // a second interaction in another browser cannot use this page's challenge
    const other = new Browser(t);
    const otherLogin = page((await start(other, client)).step);
    const stolen = page(await postAnswer(other, otherLogin, '/passkey', answer));
    expect(stolen.status).toBe(400);
    expect(stolen.html).toContain(FAILED);
    // and it was not consumed by that attempt: the rightful page still works once
    redirect(await postAnswer(b, login, '/passkey', answer));
  });

  it('of 10 concurrent uses of one answer, exactly one signs in', async () => {
    const { auth } = await withPasskey('pk-race@example.com');
    const b = new Browser(t);
    const login = page((await start(b, client)).step);
    const answer = JSON.stringify(auth.assert(pageOptions(login.html, '/passkey').challenge));
    const action = formAction(login.html, '/passkey');
    const results = await Promise.all(Array.from({ length: 10 }, () => b.request('POST', action, { csrf: csrfOf(login.html), response: answer })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 303)).toHaveLength(1);
    expect(statuses.filter((s) => s === 400)).toHaveLength(9);
  });

  it('refuses a cloned authenticator (a counter that does not grow) and audits it', async () => {
    const { account, auth } = await withPasskey('pk-clone@example.com');
    const b = new Browser(t);
    let login = page((await start(b, client)).step);
    redirect(await postAnswer(b, login, '/passkey', auth.assert(pageOptions(login.html, '/passkey').challenge, { counter: 5 })));
    const b2 = new Browser(t);
    login = page((await start(b2, client)).step);
    const refused = page(await postAnswer(b2, login, '/passkey', auth.assert(pageOptions(login.html, '/passkey').challenge, { counter: 5 })));
    expect(refused.status).toBe(400);
    expect(refused.html).toContain(FAILED);
    const events = await t.gatehouse.db.prisma.auditEvent.findMany({ where: { action: 'passkey.clone_suspected', targetId: account.id } });
    expect(events).toHaveLength(1);
    expect(events[0]!.details).toMatchObject({ storedCounter: '5', presentedCounter: '5' });
    // a counter that goes down is refused too; one that grows is accepted
    const lower = page(await postAnswer(b2, refused, '/passkey', auth.assert(pageOptions(refused.html, '/passkey').challenge, { counter: 3 })));
    expect(lower.status).toBe(400);
    redirect(await postAnswer(b2, lower, '/passkey', auth.assert(pageOptions(lower.html, '/passkey').challenge, { counter: 6 })));
  });

  it('refuses a passkey of a disabled account, an unknown credential and a wrong origin', async () => {
    const { account, auth } = await withPasskey('pk-disabled@example.com');
    const stranger = new SoftAuthenticator(auth.rpId, auth.origin, userHandleOf(account.id));
    const b = new Browser(t);
    let p = page((await start(b, client)).step);
    p = page(await postAnswer(b, p, '/passkey', stranger.assert(pageOptions(p.html, '/passkey').challenge)));
    expect(p.html).toContain(FAILED);
    p = page(await postAnswer(b, p, '/passkey', auth.assert(pageOptions(p.html, '/passkey').challenge, { origin: 'https://evil.example' })));
    expect(p.html).toContain(FAILED);
    await t.gatehouse.db.prisma.account.update({ where: { id: account.id }, data: { disabled: true } });
    p = page(await postAnswer(b, p, '/passkey', auth.assert(pageOptions(p.html, '/passkey').challenge)));
    expect(p.status).toBe(400);
    expect(p.html).toContain(FAILED);
  });

  it('answers bad input with the login page and a message, never a 5xx', async () => {
    const b = new Browser(t);
    const login = page((await start(b, client)).step);
    const action = formAction(login.html, '/passkey');
    for (const response of ['', 'not json', '[]', '{"id":1}', JSON.stringify({ id: 'x', rawId: 'x', type: 'public-key', response: { clientDataJSON: '!!!' } }), 'x'.repeat(15_000)]) {
      const res = await b.request('POST', action, { csrf: csrfOf(login.html), response });
      expect(res.status, response.slice(0, 40)).toBe(400);
      expect(res.text).toContain(FAILED);
    }
    // without the CSRF token: refused before anything is looked at
    expect((await b.request('POST', action, { response: '{}' })).status).toBe(403);
  });
});

describe('a passkey as the second factor', () => {
  it('after the password, the verify page offers the passkey; amr pwd + hwk + mfa', async () => {
    const { auth } = await withPasskey('pk-2fa@example.com');
    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, client, 'pk-2fa@example.com');
    const verify = page(step);
    expect(isVerifyPage(verify)).toBe(true);
    expect(verify.html).toContain('Use a passkey');
    const options = pageOptions(verify.html, '/mfa-passkey');
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([auth.credentialId]);
    const claims = await idTokenOf(t, client, redirect(await postAnswer(b, verify, '/mfa-passkey', auth.assert(options.challenge, { uv: false }))), verifier);
    expect(claims.acr).toBe(ACR_MFA);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
  });

  it("refuses another person's passkey as the second factor", async () => {
    await withPasskey('pk-victim@example.com');
    const { auth: mine } = await withPasskey('pk-other@example.com');
    const b = new Browser(t);
    const verify = page((await passwordStep(b, client, 'pk-victim@example.com')).step);
    const p = page(await postAnswer(b, verify, '/mfa-passkey', mine.assert(pageOptions(verify.html, '/mfa-passkey').challenge)));
    expect(p.status).toBe(400);
    expect(p.html).toContain(FAILED);
    expect(isVerifyPage(p)).toBe(true);
  });
});

describe('step-up', () => {
  it('a person signed in with a password is asked only for the second factor', async () => {
    const account = await createUser(t, 'stepup@example.com');
    const b = new Browser(t);
    const first = await passwordStep(b, client, 'stepup@example.com');
    await idTokenOf(t, client, redirect(first.step), first.verifier);
    // a passkey is added afterwards (the account page); this session is still password-only
    const { hostname, origin } = new URL(t.config.issuer);
    const auth = new SoftAuthenticator(hostname, origin, userHandleOf(account.id));
    await insertPasskey(t.gatehouse.db.prisma, {
      accountId: account.id,
      credentialId: auth.credentialId,
      publicKey: auth.cosePublicKey().toString('base64url'),
      counter: 0,
      transports: [],
      name: 'Key',
      backedUp: false,
      deviceType: 'singleDevice',
    });
    const s = await start(b, strict);
    const verify = page(s.step);
    expect(isLoginPage(verify)).toBe(false);
    expect(verify.html).not.toContain('name="password"');
    expect(isVerifyPage(verify)).toBe(true);
    expect(verify.html).toContain('stepup@example.com');
    expect(verify.html).toContain('Not you?');
    const claims = await idTokenOf(t, strict, redirect(await postAnswer(b, verify, '/mfa-passkey', auth.assert(pageOptions(verify.html, '/mfa-passkey').challenge))), s.verifier);
    expect(claims.sub).toBe(account.id);
    expect(claims.acr).toBe(ACR_MFA);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
  });

  it('"Not you?" shows the login form for another person', async () => {
    await createUser(t, 'stepup2@example.com');
    const b = new Browser(t);
    const first = await passwordStep(b, client, 'stepup2@example.com');
    await idTokenOf(t, client, redirect(first.step), first.verifier);
    const s = await start(b, strict);
    const enrol = page(s.step);
    // no factor yet: the set-up, without the password
    expect(enrol.html).toContain('/enrol');
    expect(enrol.html).not.toContain('name="password"');
    expect(enrol.html).toContain('Not you?');
    const switched = page(await b.post(formAction(enrol.html, '/switch'), { csrf: csrfOf(enrol.html) }));
    expect(isLoginPage(switched)).toBe(true);
  });
});
