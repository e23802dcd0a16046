// Password reset: the "Forgot password?" link, a request that answers the
// same for known and unknown addresses (body, status; medians printed), the
// limits per address and per account, the 30-minute single-use link, and a
// completed reset: every session ends, it is audited, a notice is mailed,
// and the second factor stays required.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, findAccountByEmail } from '../../src/accounts/store.ts';
import { linkIn } from '../helpers/smtp.ts';
import { authUrl, codeFlowTokens, createWebClient, formAction, isLoginPage, PASSWORD, refresh, type TestClient } from '../sso/flow.ts';
import { enrolledUser } from '../sso/mfa-flow.ts';
import { Browser, csrfOf, expectNoServerError, mailApp, open, submit, textOf, type MailApp } from './helpers.ts';

let m: MailApp;
let client: TestClient;
const NEW_PASSWORD = 'a brand new passphrase 2026';

beforeAll(async () => {
  m = await mailApp();
  client = await createWebClient(m.t, { name: 'Timesheets', firstParty: true, grants: ['authorization_code', 'refresh_token'] });
});
afterAll(() => m.close());

const db = () => m.t.gatehouse.db.prisma;

/** Asks for a reset of `email` from a fresh browser; returns the answer page. */
async function askReset(email: string, b = new Browser(m.t)) {
  const form = await open(b, '/reset');
  return submit(b, form, { email });
}

describe('the request', () => {
  it('the login page links to it, naming the application on the way', async () => {
    const b = new Browser(m.t);
    const login = await open(b, authUrl({ client_id: client.id }));
    expect(isLoginPage(login)).toBe(true);
    const href = /<a href="([^"]+)" id="forgot-password">Forgot password\?<\/a>/.exec(login.html)![1]!.replace(/&amp;/g, '&');
    expect(href).toBe(`/reset?client_id=${client.id}`);
    const form = await open(b, href);
    expect(form.status).toBe(200);
    expect(textOf(form.html)).toContain('for Timesheets');
  });

  it('answers the same body and status for known and unknown addresses (200 tries each, medians printed)', async () => {
    const n = 200;
    await db().account.createMany({ data: Array.from({ length: n }, (_, i) => ({ email: `known-${String(i).padStart(3, '0')}@example.com` })) });
    const b = new Browser(m.t);
    const form = await open(b, '/reset');
    const csrf = csrfOf(form.html);
    const times: Record<'known' | 'unknown', number[]> = { known: [], unknown: [] };
    const bodies: Record<'known' | 'unknown', Set<string>> = { known: new Set(), unknown: new Set() };
    const statuses: Record<'known' | 'unknown', Set<number>> = { known: new Set(), unknown: new Set() };
    for (let i = 0; i < n; i++) {
      // interleaved, so that drift affects both alike
      for (const kind of i % 2 ? (['known', 'unknown'] as const) : (['unknown', 'known'] as const)) {
        const email = `${kind === 'known' ? 'known' : 'other'}-${String(i).padStart(3, '0')}@example.com`;
        const start = performance.now();
        const res = await b.request('POST', '/reset', { csrf, email });
        times[kind].push(performance.now() - start);
        statuses[kind].add(res.status);
        bodies[kind].add(res.text.replace(email, 'EMAIL'));
      }
    }
    expect([...statuses.known]).toEqual([200]);
    expect([...statuses.unknown]).toEqual([200]);
    expect(bodies.known.size).toBe(1);
    expect([...bodies.known]).toEqual([...bodies.unknown]);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
    console.log(
      `reset request timing over ${n} tries each: known median ${median(times.known).toFixed(2)} ms (p90 ${p90(times.known).toFixed(2)}), unknown median ${median(times.unknown).toFixed(2)} ms (p90 ${p90(times.unknown).toFixed(2)})`,
    );
    // only the known addresses get mail, out of the request path
    await m.t.gatehouse.mailer.idle();
    await m.smtp.waitForMail('known-000@example.com');
    await m.smtp.waitForMail('known-199@example.com');
    expect(m.smtp.unread('other-000@example.com')).toEqual([]);
    expect(m.smtp.mails.filter((x) => x.to[0]!.startsWith('other-'))).toEqual([]);
  });

  it('bad input gets the form again with a clear message, never a 5xx', async () => {
    for (const [email, text] of [
      ['', 'Enter the email address of your account.'],
      ['not-an-address', 'Enter a valid email address'],
      [`${'a'.repeat(300)}@example.com`, 'Enter a valid email address'],
    ] as const) {
      const p = await askReset(email);
      expect(p.status).toBe(400);
      expect(textOf(p.html)).toContain(text);
    }
    const b = new Browser(m.t);
    const nocsrf = await b.request('POST', '/reset', { email: 'a@example.com' });
    expect(nocsrf.status).toBe(403);
    const json = await m.t.request.post('/reset').set('Content-Type', 'application/json').send('{"email":"a@example.com"}');
    expect(json.status).toBe(415);
    expect(json.headers['content-type']).toMatch(/text\/html/);
    const big = await b.request('POST', '/reset', `csrf=x&email=${'a'.repeat(20_000)}`);
    expect(big.status).toBe(413);
    expect((await m.t.request.put('/reset')).status).toBe(405);
    expect((await m.t.request.get('/reset/nope/more')).status).toBe(404);
  });

  it('is limited per address: the sixth request within the hour sends no mail, and answers the same', async () => {
    await createAccount(db(), { email: 'lim@example.com' });
    for (let i = 0; i < 6; i++) expect((await askReset('lim@example.com')).status).toBe(200);
    await m.t.gatehouse.mailer.idle();
    await new Promise((r) => setTimeout(r, 300));
    expect(m.smtp.unread('lim@example.com')).toHaveLength(5);
  });
});

describe('the link', () => {
  async function resetLinkFor(email: string): Promise<string> {
    await askReset(email);
    return linkIn(await m.smtp.waitForMail(email), '/reset/');
  }

  it('a completed reset ends every session (refresh tokens refused), is audited, mails a notice; the link works once', async () => {
    const a = await createAccount(db(), { email: 'pat@example.com', password: PASSWORD, emailVerified: false });
    const tokens = await codeFlowTokens(new Browser(m.t), client, { scope: 'openid offline_access', prompt: 'consent' }, { email: 'pat@example.com' });
    expect(tokens.refresh_token).toBeTruthy();
    const link = await resetLinkFor('pat@example.com');
    expect(new URL(link).pathname).toMatch(/^\/reset\/[A-Za-z0-9_-]{43}$/);
    const mail = m.smtp.mails.find((x) => x.text.includes(link))!;
    expect(mail.text).toContain('expires in 30 minutes');
    expect(mail.text + mail.html).not.toContain(PASSWORD);
    const b = new Browser(m.t);
    const form = await open(b, link);
    expect(form.status).toBe(200);
    expect(textOf(form.html)).toContain('pat@example.com');
    const mismatch = await submit(b, form, { password: NEW_PASSWORD, confirm: 'x' });
    expect(mismatch.status).toBe(400);
    const done = await submit(b, form, { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain('Your password is changed');
    // every session and grant ended
    expect((await refresh(m.t, client, tokens.refresh_token as string)).status).toBe(400);
    expect(await db().oidcPayload.count({ where: { model: 'Session', payload: { path: ['accountId'], equals: a.id } } })).toBe(0);
    const event = await db().auditEvent.findFirstOrThrow({ where: { action: 'user.password_reset', targetId: a.id } });
    expect(event.details).toMatchObject({ sessions: 1 });
    expect((await m.smtp.waitForMail('pat@example.com')).subject).toBe('Your Gatehouse password was changed');
    // the reset proved the address
    expect((await findAccountByEmail(db(), 'pat@example.com'))!.emailVerified).toBe(true);
    // used: refused with a way back
    const again = await open(new Browser(m.t), link);
    expect(again.status).toBe(410);
    expect(textOf(again.html)).toContain('This password reset link was already used');
    expect(again.html).toContain('href="/reset"');
    // the new password signs in
    await codeFlowTokens(new Browser(m.t), client, {}, { email: 'pat@example.com', password: NEW_PASSWORD });
  });

  it('of 10 concurrent completions exactly one changes the password', async () => {
    await createAccount(db(), { email: 'quin@example.com', password: PASSWORD });
    const link = await resetLinkFor('quin@example.com');
    const b = new Browser(m.t);
    const form = await open(b, link);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(b, form, { password: `${NEW_PASSWORD} ${i}`, confirm: `${NEW_PASSWORD} ${i}` })));
    results.forEach(expectNoServerError);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 410)).toHaveLength(9);
  });

  it('expires after 30 minutes: refused with a page offering a new link', async () => {
    const a = await createAccount(db(), { email: 'rae@example.com', password: PASSWORD });
    const link = await resetLinkFor('rae@example.com');
    const row = await db().actionToken.findFirstOrThrow({ where: { accountId: a.id, purpose: 'reset' } });
    expect((row.expiresAt.getTime() - row.createdAt.getTime()) / 60_000).toBeCloseTo(30, 1);
    await db().$executeRaw`UPDATE action_tokens SET expires_at = now() - interval '1 second' WHERE id = ${row.id}::uuid`;
    const p = await open(new Browser(m.t), link);
    expect(p.status).toBe(410);
    expect(textOf(p.html)).toContain('This password reset link has expired');
    expect(textOf(p.html)).toContain('Request a new password reset link');
  });

  it('never bypasses the second factor: after a reset, signing in still asks for the code', async () => {
    const strict = await createWebClient(m.t, { name: 'Payroll', requireMfa: true, firstParty: true });
    await enrolledUser(m.t, strict, 'sam@example.com');
    const link = await resetLinkFor('sam@example.com');
    const b = new Browser(m.t);
    const done = await submit(b, await open(b, link), { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expect(textOf(done.html)).toContain('You will still be asked for a code from your authenticator app.');
    expect((await findAccountByEmail(db(), 'sam@example.com'))!.mfaEnabled).toBe(true);
    const login = await open(b, authUrl({ client_id: client.id }));
    const next = await b.post(formAction(login.html, '/login'), { csrf: csrfOf(login.html), login: 'sam@example.com', password: NEW_PASSWORD });
    expect(next.kind).toBe('page');
    if (next.kind === 'page') expect(next.page.html).toContain('name="code"');
  });
});
