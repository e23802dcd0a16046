// Two-step verification (TOTP + recovery codes) through the real pages:
// enrolment, the verify step, replay and lockout, acr/amr in the ID token,
// clients and requests that require MFA, and the administrator's reset.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoveryCodeDigest, totpUri } from '../../src/accounts/mfa.ts';
import { getAccount } from '../../src/accounts/store.ts';
import { accountThrottleKey, lockStatus } from '../../src/accounts/throttle.ts';
import { qrDataUri } from '../../src/interactions/mfa.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { Browser, PASSWORD, authorize, createUser, createWebClient, csrfOf, formAction, isLoginPage, page, pkce, redirect, submitLogin, type TestClient } from './flow.ts';
import {
  ACR_MFA,
  ACR_PWD,
  LOGIN_FAILED,
  MFA_FAILED,
  enrolledUser,
  idTokenOf,
  isCodesPage,
  isEnrolPage,
  isVerifyPage,
  passwordStep,
  qrSrcOf,
  recoveryCodesOf,
  secretOf,
  start,
  submitCode,
  submitContinue,
  totp,
  wrongCode,
} from './mfa-flow.ts';

describe('two-step verification', () => {
  let t: TestApp;
  let normal: TestClient; // first-party, no MFA requirement
  let strict: TestClient; // first-party, requireMfa

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000', LOGIN_MAX_FAILURES: '10' } });
    normal = await createWebClient(t, { name: 'Wiki', firstParty: true });
    strict = await createWebClient(t, { name: 'Payroll', firstParty: true, requireMfa: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  const db = () => t.gatehouse.db.prisma;

  it('discovery lists the acr values', async () => {
    const res = await t.request.get('/.well-known/openid-configuration');
    expect(res.body.acr_values_supported).toEqual([ACR_PWD, ACR_MFA]);
    expect(res.body.claims_supported).toEqual(expect.arrayContaining(['acr', 'amr']));
  });

  it('a person without MFA on a normal client: password only, amr ["pwd"], acr pwd', async () => {
    const { id } = await createUser(t, 'plain@example.com');
    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, normal, 'plain@example.com');
    const claims = await idTokenOf(t, normal, redirect(step), verifier);
    expect(claims.sub).toBe(id);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.acr).toBe(ACR_PWD);
    expect((await getAccount(db(), id)).mfaEnabled).toBe(false);
  });

  it('enrolment: QR code and setup key, a wrong code is refused, the right one turns MFA on, recovery codes shown once and stored as digests', async () => {
    const email = 'enrol@example.com';
    const { id } = await createUser(t, email);
    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, strict, email);
    const enrol = page(step);
    expect(enrol.status).toBe(200);
    expect(isEnrolPage(enrol)).toBe(true);
    expect(enrol.html).toContain('<strong>Payroll</strong> requires two-step verification');
    expect(csrfOf(enrol.html)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(enrol.res.headers['cache-control']).toBe('no-store');
    expect(enrol.res.headers['content-security-policy']).toContain("img-src 'self' data:");
    expect(enrol.html).not.toMatch(/\sstyle=|<script/);

    // The setup key, and a QR code (an SVG data: image) of its otpauth URI.
    const secret = secretOf(enrol);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const qr = qrSrcOf(enrol);
    expect(qr).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(Buffer.from(qr.split(',')[1]!, 'base64').toString('utf8')).toMatch(/^<svg /);
    const uri = totpUri(secret, email);
    // (SHA-1, 6 digits, 30 s: the defaults of the key URI format, left out)
    expect(uri).toBe(`otpauth://totp/Gatehouse:enrol%40example.com?secret=${secret}&issuer=Gatehouse`);
    expect(qr).toBe(await qrDataUri(uri));

    // Nothing is stored before the confirmation.
    const before = await db().account.findUniqueOrThrow({ where: { id } });
    expect(before.totpSecret).toBeNull();
    expect(before.totpEnabledAt).toBeNull();

    // Without the CSRF token: refused, nothing happens.
    const forged = await b.request('POST', formAction(enrol.html, '/enrol'), { code: await totp(secret) });
    expect(forged.status).toBe(403);

    // A wrong code: the same page again (same key), with a message; MFA still off.
    const wrong = page(await submitCode(b, enrol, '/enrol', await wrongCode(secret)));
    expect(wrong.status).toBe(400);
    expect(isEnrolPage(wrong)).toBe(true);
    expect(wrong.html).toContain('That code does not match');
    expect(secretOf(wrong)).toBe(secret);
    expect((await getAccount(db(), id)).mfaEnabled).toBe(false);

    // The right code: MFA on, ten recovery codes, shown on this response only.
    const done = page(await submitCode(b, wrong, '/enrol', await totp(secret)));
    expect(done.status).toBe(200);
    expect(isCodesPage(done)).toBe(true);
    expect(done.res.headers['cache-control']).toBe('no-store');
    const codes = recoveryCodesOf(done);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);

    const after = await db().account.findUniqueOrThrow({ where: { id } });
    expect(after.totpEnabledAt).toBeInstanceOf(Date);
    expect(after.totpSecret).toMatch(/^v1\./); // encrypted
    expect(after.totpSecret).not.toContain(secret);
    expect((await getAccount(db(), id)).mfaEnabled).toBe(true);
    const rows = await db().recoveryCode.findMany({ where: { accountId: id } });
    expect(rows).toHaveLength(10);
    for (const r of rows) {
      expect(r.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(r.usedAt).toBeNull();
    }
    expect(new Set(rows.map((r) => r.digest))).toEqual(new Set(codes.map((c) => recoveryCodeDigest(id, c))));
    const stored = JSON.stringify(await db().$queryRaw`SELECT * FROM recovery_codes`);
    for (const c of codes) {
      expect(stored).not.toContain(c);
      expect(stored).not.toContain(c.replace(/-/g, ''));
    }

    // Seen again (reload), the page no longer shows the codes.
    expect(done.url).toMatch(/^\/interaction\/[A-Za-z0-9_-]+\/enrol$/);
    const again = page(await b.get(done.url.replace(/\/enrol$/, '')));
    expect(isCodesPage(again)).toBe(true);
    expect(recoveryCodesOf(again)).toEqual([]);
    for (const c of codes) expect(again.html).not.toContain(c);

    // Continue: signed in with both factors.
    const claims = await idTokenOf(t, strict, redirect(await submitContinue(b, again)), verifier);
    expect(claims.sub).toBe(id);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe(ACR_MFA);
  });

  it('a pending second step is not a login: no session until the second factor', async () => {
    const alice = await enrolledUser(t, strict, 'pending@example.com');
    const b = new Browser(t);
    const { step } = await passwordStep(b, normal, alice.email);
    expect(isVerifyPage(page(step))).toBe(true);
    const { challenge } = pkce();
    const silent = redirect(await authorize(b, { client_id: normal.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(silent.searchParams.get('error')).toBe('login_required');
  });

  it('login with TOTP: the verify step after the password; amr and acr in the ID token; a reused code is refused', async () => {
    const bob = await enrolledUser(t, strict, 'bob@example.com');
    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, normal, bob.email);
    const verify = page(step);
    expect(verify.status).toBe(200);
    expect(isVerifyPage(verify)).toBe(true);
    expect(verify.res.headers['cache-control']).toBe('no-store');

    // The enrolment used the current step: log in with the next one (within the window).
    const code = await totp(bob.secret, 1);
    const claims = await idTokenOf(t, normal, redirect(await submitCode(b, verify, '/mfa', code)), verifier);
    expect(claims.sub).toBe(bob.id);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe(ACR_MFA);
    expect(typeof claims.auth_time).toBe('number');

    // The same code again (another browser, right password): refused like a wrong one.
    const b2 = new Browser(t);
    const replay = page(await submitCode(b2, page((await passwordStep(b2, normal, bob.email)).step), '/mfa', code));
    expect(replay.status).toBe(400);
    expect(isVerifyPage(replay)).toBe(true);
    expect(replay.html).toContain(MFA_FAILED);
    // and so is the current code: its step is before the one used
    const older = page(await submitCode(b2, replay, '/mfa', await totp(bob.secret, 0)));
    expect(older.status).toBe(400);
    expect(older.html).toContain(MFA_FAILED);
  });

  it('a wrong code: the generic message, and it counts as a failed login (a right password does not clear it)', async () => {
    const carol = await enrolledUser(t, strict, 'carol@example.com');
    const key = accountThrottleKey(carol.id);
    expect((await lockStatus(db(), key)).failures).toBe(0);
    const b = new Browser(t);
    const verify = page((await passwordStep(b, normal, carol.email)).step);
    const wrong = page(await submitCode(b, verify, '/mfa', await wrongCode(carol.secret)));
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain(MFA_FAILED);
    expect(isVerifyPage(wrong)).toBe(true);
    expect((await lockStatus(db(), key)).failures).toBe(1);
    // a malformed code is just as wrong
    const junk = page(await submitCode(b, wrong, '/mfa', 'not a code'));
    expect(junk.status).toBe(400);
    expect(junk.html).toContain(MFA_FAILED);
    expect((await lockStatus(db(), key)).failures).toBe(2);
    // Signing in again with the right password keeps the count.
    const b2 = new Browser(t);
    const { step } = await passwordStep(b2, normal, carol.email);
    expect((await lockStatus(db(), key)).failures).toBe(2);
    // a right code completes the login and resets it
    redirect(await submitCode(b2, page(step), '/mfa', await totp(carol.secret, 1)));
    expect((await lockStatus(db(), key)).failures).toBe(0);
    // the empty form re-shows the page without counting
    const b3 = new Browser(t);
    const empty = page(await submitCode(b3, page((await passwordStep(b3, normal, carol.email)).step), '/mfa', ''));
    expect(empty.status).toBe(400);
    expect(isVerifyPage(empty)).toBe(true);
    expect((await lockStatus(db(), key)).failures).toBe(0);
  });

  it('the verify form needs its CSRF token', async () => {
    const dan = await enrolledUser(t, strict, 'dan@example.com');
    const b = new Browser(t);
    const verify = page((await passwordStep(b, normal, dan.email)).step);
    const res = await b.request('POST', formAction(verify.html, '/mfa'), { code: await totp(dan.secret, 1) });
    expect(res.status).toBe(403);
    expect(res.headers.location).toBeUndefined();
    // the code was not spent: it still works with the token
    redirect(await submitCode(b, verify, '/mfa', await totp(dan.secret, 1)));
  });

  it('the second-factor forms do nothing without a password step first', async () => {
    const b = new Browser(t);
    const login = page((await start(b, normal)).step);
    for (const suffix of ['/mfa', '/enrol', '/continue']) {
      const action = formAction(login.html, '/login').replace(/\/login$/, suffix);
      const res = page(await b.post(action, { csrf: csrfOf(login.html), code: '123456' }));
      expect(res.status).toBe(400);
      expect(isLoginPage(res)).toBe(true);
      expect(res.html).toContain('That took too long. Sign in again.');
    }
    const { challenge } = pkce();
    const silent = redirect(await authorize(b, { client_id: normal.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(silent.searchParams.get('error')).toBe('login_required');
  });

  it('a recovery code works once, and only once', async () => {
    const erin = await enrolledUser(t, strict, 'erin@example.com');
    const [first, second] = erin.recoveryCodes;
    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, normal, erin.email);
    const claims = await idTokenOf(t, normal, redirect(await submitCode(b, page(step), '/mfa', first!)), verifier);
    expect(claims.sub).toBe(erin.id);
    expect(claims.amr).toEqual(['pwd', 'mfa']);
    expect(claims.acr).toBe(ACR_MFA);
    const used = await t.gatehouse.db.prisma.recoveryCode.findMany({ where: { accountId: erin.id, usedAt: { not: null } } });
    expect(used.map((r) => r.digest)).toEqual([recoveryCodeDigest(erin.id, first!)]);

    const b2 = new Browser(t);
    const again = page(await submitCode(b2, page((await passwordStep(b2, normal, erin.email)).step), '/mfa', first!));
    expect(again.status).toBe(400);
    expect(again.html).toContain(MFA_FAILED);
    // another one works, typed loosely (case, spaces)
    const loose = ` ${second!.toUpperCase().replace(/-/g, ' ')} `;
    redirect(await submitCode(b2, again, '/mfa', loose));
    expect(await t.gatehouse.db.prisma.recoveryCode.count({ where: { accountId: erin.id, usedAt: null } })).toBe(8);
  });

  it('a client with requireMfa: the verify step for a person with MFA', async () => {
    const fay = await enrolledUser(t, strict, 'fay@example.com');
    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, strict, fay.email);
    const verify = page(step);
    expect(isVerifyPage(verify)).toBe(true);
    expect(isEnrolPage(verify)).toBe(false);
    const claims = await idTokenOf(t, strict, redirect(await submitCode(b, verify, '/mfa', await totp(fay.secret, 1))), verifier);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.acr).toBe(ACR_MFA);
  });

  it('a client with requireMfa: a password-only session is not enough; the person sets up a second factor (step-up: no password again)', async () => {
    const { id } = await createUser(t, 'gus@example.com');
    const b = new Browser(t);
    const first = await passwordStep(b, normal, 'gus@example.com');
    expect((await idTokenOf(t, normal, redirect(first.step), first.verifier)).acr).toBe(ACR_PWD);

    // prompt=none cannot raise the level
    const { challenge } = pkce();
    const silent = redirect(await authorize(b, { client_id: strict.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(silent.searchParams.get('error')).toBe('login_required');

    // an interactive request asks only for the second factor: here its set-up, without the password again
    const { step, verifier } = await start(b, strict);
    const enrol = page(step);
    expect(isEnrolPage(enrol)).toBe(true);
    expect(enrol.html).not.toContain('name="password"');
    const codes = page(await submitCode(b, enrol, '/enrol', await totp(secretOf(enrol))));
    const claims = await idTokenOf(t, strict, redirect(await submitContinue(b, codes)), verifier);
    expect(claims.sub).toBe(id);
    expect(claims.acr).toBe(ACR_MFA);

    // now the session has the MFA level: silent sign-in works for the strict client
    const again = await start(b, strict, { prompt: 'none' });
    expect((await idTokenOf(t, strict, redirect(again.step), again.verifier)).acr).toBe(ACR_MFA);
  });

  it('acr_values=urn:gatehouse:acr:mfa forces the second factor (enrolment for a person without MFA); "pwd mfa" does not', async () => {
    await createUser(t, 'hal@example.com');
    const b = new Browser(t);
    const either = await passwordStep(b, normal, 'hal@example.com', { acr_values: `${ACR_PWD} ${ACR_MFA}` });
    expect((await idTokenOf(t, normal, redirect(either.step), either.verifier)).acr).toBe(ACR_PWD);

    const b2 = new Browser(t);
    const { step, verifier } = await passwordStep(b2, normal, 'hal@example.com', { acr_values: ACR_MFA });
    const enrol = page(step);
    expect(isEnrolPage(enrol)).toBe(true);
    expect(enrol.html).toContain('<strong>Wiki</strong> asks for two-step verification');
    const codes = page(await submitCode(b2, enrol, '/enrol', await totp(secretOf(enrol))));
    const claims = await idTokenOf(t, normal, redirect(await submitContinue(b2, codes)), verifier);
    expect(claims.acr).toBe(ACR_MFA);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('gatehouse users reset-mfa: MFA off, codes gone; the next sign-in that requires MFA enrols again', async () => {
    const ivy = await enrolledUser(t, strict, 'ivy@example.com');
    const r = await cli(t.database.url, ['users', 'reset-mfa', ivy.email, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json<{ mfaEnabled: boolean }>().mfaEnabled).toBe(false);
    expect((await getAccount(db(), ivy.id)).mfaEnabled).toBe(false);
    const row = await db().account.findUniqueOrThrow({ where: { id: ivy.id } });
    expect(row.totpSecret).toBeNull();
    expect(await db().recoveryCode.count({ where: { accountId: ivy.id } })).toBe(0);

    // a normal client: password only again
    const b = new Browser(t);
    const plain = await passwordStep(b, normal, ivy.email);
    expect((await idTokenOf(t, normal, redirect(plain.step), plain.verifier)).amr).toEqual(['pwd']);
    // the strict client: a new enrolment with a new key
    const b2 = new Browser(t);
    const enrol = page((await passwordStep(b2, strict, ivy.email)).step);
    expect(isEnrolPage(enrol)).toBe(true);
    expect(secretOf(enrol)).not.toBe(ivy.secret);
  });
});

describe('two-step verification lockout', () => {
  let t: TestApp;
  let normal: TestClient;
  let strict: TestClient;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '300', LOGIN_IP_MAX_FAILURES: '1000' } });
    normal = await createWebClient(t, { firstParty: true });
    strict = await createWebClient(t, { firstParty: true, requireMfa: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('wrong codes lock the account: then the right code, and the right password, get the generic message', async () => {
    const kim = await enrolledUser(t, strict, 'kim@example.com');
    const b = new Browser(t);
    let p = page((await passwordStep(b, normal, kim.email)).step);
    const wrong = await wrongCode(kim.secret);
    for (let n = 0; n < 3; n++) {
      p = page(await submitCode(b, p, '/mfa', wrong));
      expect(p.status).toBe(400);
      expect(p.html).toContain(MFA_FAILED);
    }
    const status = await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(kim.id));
    expect(status.locked).toBe(true);
    expect(status.lockCount).toBe(1);

    // locked: the right code looks like a wrong one
    const right = page(await submitCode(b, p, '/mfa', await totp(kim.secret, 1)));
    expect(right.status).toBe(400);
    expect(right.html.replaceAll(csrfOf(right.html), '')).toBe(p.html.replaceAll(csrfOf(p.html), ''));
    // and a recovery code too
    const rc = page(await submitCode(b, right, '/mfa', kim.recoveryCodes[0]!));
    expect(rc.html).toContain(MFA_FAILED);
    expect(await t.gatehouse.db.prisma.recoveryCode.count({ where: { accountId: kim.id, usedAt: null } })).toBe(10);

    // the password step is locked as well
    const b2 = new Browser(t);
    const login = page((await start(b2, normal)).step);
    const refused = page(await submitLogin(b2, login, kim.email, PASSWORD));
    expect(refused.status).toBe(400);
    expect(refused.html).toContain(LOGIN_FAILED);
  });

  it('parallel wrong codes cannot get past the limit', async () => {
    const lee = await enrolledUser(t, strict, 'lee@example.com');
    const b = new Browser(t);
    const p = page((await passwordStep(b, normal, lee.email)).step);
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => String(i).padStart(6, '0')));
    const valid = new Set(await Promise.all([-1, 0, 1].map((s) => totp(lee.secret, s))));
    const attempts = await Promise.all(codes.filter((c) => !valid.has(c)).map((c) => submitCode(b, p, '/mfa', c)));
    for (const s of attempts) expect(page(s).html).toContain(MFA_FAILED);
    const status = await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(lee.id));
    expect(status.locked).toBe(true);
    expect(status.lockCount).toBe(1);
  });
});
