// SIGNUP=off|invite|open, email verification before the first token, the
// email_verified claim, and email change (new address verified, old one told).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, findAccountByEmail } from '../../src/accounts/store.ts';
import { requestEmailChange, selfActor } from '../../src/lifecycle/writes.ts';
import { createTestApp } from '../helpers/app.ts';
import { linkIn } from '../helpers/smtp.ts';
import { authUrl, codeFlowTokens, createWebClient, csrfOf as loginCsrf, formAction, isLoginPage, PASSWORD, type TestClient } from '../sso/flow.ts';
import { Browser, expectNoServerError, mailApp, open, submit, textOf, type MailApp } from './helpers.ts';

/** The claims userinfo (/me) answers for a token response's access token. */
async function userinfo(m: MailApp, tokens: Record<string, unknown>): Promise<Record<string, unknown>> {
  const me = await m.t.request.get('/me').set('Authorization', `Bearer ${String(tokens.access_token)}`);
  expect(me.status).toBe(200);
  return me.body as Record<string, unknown>;
}

describe('SIGNUP=off (the default) and SIGNUP=invite', () => {
  it('off: no sign-up page, no link on the login page', async () => {
    const t = await createTestApp();
    try {
      expect(t.config.signup).toBe('off');
      const res = await t.request.get('/signup');
      expect(res.status).toBe(404);
      expect((await t.request.post('/signup').type('form').send({ email: 'a@example.com' })).status).toBe(404);
      const client = await createWebClient(t);
      const login = await open(new Browser(t), authUrl({ client_id: client.id }));
      expect(login.html).not.toContain('Create an account');
    } finally {
      await t.close();
    }
  });

  it('invite: the page says accounts are by invitation only; nothing can be submitted', async () => {
    const t = await createTestApp({ env: { SIGNUP: 'invite' } });
    try {
      const res = await t.request.get('/signup');
      expect(res.status).toBe(403);
      expect(textOf(res.text)).toContain('Accounts here are by invitation only');
      expect((await t.request.post('/signup').type('form').send({ email: 'a@example.com', name: 'A', password: PASSWORD })).status).toBe(403);
      expect(await findAccountByEmail(t.gatehouse.db.prisma, 'a@example.com')).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});

describe('SIGNUP=open', () => {
  let m: MailApp;
  let client: TestClient;
  beforeAll(async () => {
    m = await mailApp({ SIGNUP: 'open' });
    client = await createWebClient(m.t, { name: 'Forum', firstParty: true });
  });
  afterAll(() => m.close());
  const db = () => m.t.gatehouse.db.prisma;

  async function signUp(email: string, name = 'Uma', password = PASSWORD) {
    const b = new Browser(m.t);
    const form = await open(b, `/signup?client_id=${client.id}`);
    return submit(b, form, { email, name, password });
  }

  it('sign-up → verification mail → no token before verification → confirm → sign in, email_verified true', async () => {
    const b = new Browser(m.t);
    const login = await open(b, authUrl({ client_id: client.id }));
    const href = /<a href="([^"]+)" id="create-account">/.exec(login.html)![1]!.replace(/&amp;/g, '&');
    const form = await open(b, href);
    expect(textOf(form.html)).toContain('to continue to Forum');
    const sent = await submit(b, form, { email: 'Uma@Example.com', name: 'Uma', password: PASSWORD });
    expect(sent.status).toBe(200);
    expect(textOf(sent.html)).toContain('Check your email');
    const mail = await m.smtp.waitForMail('uma@example.com');
    expect(mail.subject).toBe('Confirm your email address for Gatehouse');
    expect(mail.text).toContain('for Forum');
    expect(mail.text + mail.html).not.toContain(PASSWORD);
    // nothing exists yet: sign-in is refused with the hint to verify
    expect(await findAccountByEmail(db(), 'uma@example.com')).toBeUndefined();
    const refused = await b.post(formAction(login.html, '/login'), { csrf: loginCsrf(login.html), login: 'uma@example.com', password: PASSWORD });
    expect(refused.kind === 'page' && refused.page.status).toBe(400);
    if (refused.kind === 'page') expect(textOf(refused.page.html)).toContain('verify your email first');
    // the link's GET only shows a button (mail scanners open links)
    const link = linkIn(mail, '/signup/');
    const confirm = await open(b, link);
    expect(confirm.status).toBe(200);
    expect(await findAccountByEmail(db(), 'uma@example.com')).toBeUndefined();
    const done = await submit(b, confirm, {});
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain('Your account is ready');
    expect(await findAccountByEmail(db(), 'uma@example.com')).toMatchObject({ name: 'Uma', emailVerified: true, hasPassword: true });
    const tokens = await codeFlowTokens(new Browser(m.t), client, { scope: 'openid email profile' }, { email: 'uma@example.com' });
    expect(await userinfo(m, tokens)).toMatchObject({ email: 'uma@example.com', email_verified: true, name: 'Uma' });
    expect((await open(new Browser(m.t), link)).status).toBe(410);
  });

  it('bad input on the form: a clear message per field, never a 5xx, nothing mailed', async () => {
    for (const [email, name, password, text] of [
      ['', 'A', PASSWORD, 'Email address is required'],
      ['nope', 'A', PASSWORD, 'Email address is not a valid address'],
      ['v@example.com', '', PASSWORD, 'Your name is required'],
      ['v@example.com', 'A', 'short', 'Password must be at least 8 characters'],
      ['v@example.com', 'x'.repeat(201), PASSWORD, 'Your name must be at most 200 characters'],
    ] as const) {
      const p = await signUp(email, name, password);
      expect(p.status, textOf(p.html)).toBe(400);
      expect(textOf(p.html)).toContain(text);
    }
    expect(m.smtp.unread('v@example.com')).toEqual([]);
    const nocsrf = await new Browser(m.t).request('POST', '/signup', { email: 'w@example.com', name: 'W', password: PASSWORD });
    expect(nocsrf.status).toBe(403);
  });

  it('an address that has an account: the same answer, and its owner gets a notice instead of a link', async () => {
    await createAccount(db(), { email: 'owner@example.com', password: PASSWORD });
    const p = await signUp('owner@example.com');
    expect(p.status).toBe(200);
    expect(textOf(p.html)).toContain('Check your email');
    const mail = await m.smtp.waitForMail('owner@example.com');
    expect(mail.subject).toBe('Someone tried to sign up with your email address');
    expect(mail.text).not.toContain('/signup/');
  });

  it('a confirmation link is single-use under 10 concurrent uses, and expires', async () => {
    await signUp('xena@example.com');
    const link = linkIn(await m.smtp.waitForMail('xena@example.com'), '/signup/');
    const b = new Browser(m.t);
    const confirm = await open(b, link);
    const results = await Promise.all(Array.from({ length: 10 }, () => submit(b, confirm, {})));
    results.forEach(expectNoServerError);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 410)).toHaveLength(9);
    await signUp('yann@example.com');
    const late = linkIn(await m.smtp.waitForMail('yann@example.com'), '/signup/');
    await db().$executeRaw`UPDATE action_tokens SET expires_at = now() - interval '1 second' WHERE email = 'yann@example.com'`;
    const p = await open(new Browser(m.t), late);
    expect(p.status).toBe(410);
    expect(textOf(p.html)).toContain('This confirmation link has expired');
    expect(p.html).toContain('href="/signup"');
  });
});

describe('email change and email_verified', () => {
  let m: MailApp;
  let client: TestClient;
  beforeAll(async () => {
    m = await mailApp();
    client = await createWebClient(m.t, { name: 'Wiki', firstParty: true });
  });
  afterAll(() => m.close());
  const db = () => m.t.gatehouse.db.prisma;

  it('email_verified is false for an unverified account, and true once a new address is confirmed; the old address is told', async () => {
    const a = await createAccount(db(), { email: 'zoe@example.com', password: PASSWORD });
    const before = await codeFlowTokens(new Browser(m.t), client, { scope: 'openid email' }, { email: 'zoe@example.com' });
    expect(await userinfo(m, before)).toMatchObject({ email: 'zoe@example.com', email_verified: false });
    const deps = { db: db(), mailer: m.t.gatehouse.mailer, issuer: m.t.config.issuer };
    await requestEmailChange(deps, selfActor(a.id), a.id, 'Zoe.New@Example.com');
    const notice = await m.smtp.waitForMail('zoe@example.com');
    expect(notice.subject).toBe('Your Gatehouse email address is being changed');
    expect(notice.text).toContain('zoe.new@example.com');
    const link = linkIn(await m.smtp.waitForMail('zoe.new@example.com'), '/verify-email/');
    const b = new Browser(m.t);
    const confirm = await open(b, link);
    expect(textOf(confirm.html)).toContain('zoe.new@example.com');
    expect((await findAccountByEmail(db(), 'zoe@example.com'))!.email).toBe('zoe@example.com');
    const done = await submit(b, confirm, {});
    expect(done.status).toBe(200);
    expect(await findAccountByEmail(db(), 'zoe.new@example.com')).toMatchObject({ id: a.id, emailVerified: true });
    const after = await codeFlowTokens(new Browser(m.t), client, { scope: 'openid email' }, { email: 'zoe.new@example.com' });
    expect(await userinfo(m, after)).toMatchObject({ email: 'zoe.new@example.com', email_verified: true });
    expect((await open(new Browser(m.t), link)).status).toBe(410);
    const events = await db().auditEvent.findMany({ where: { targetId: a.id, action: { startsWith: 'user.email_change' } }, orderBy: { occurredAt: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['user.email_change_request', 'user.email_change']);
  });

  it('users change-email (CLI) mails the new address a link and tells the old one', async () => {
    const { cli } = await import('../helpers/cli.ts');
    await createAccount(db(), { email: 'cli-old@example.com', password: PASSWORD });
    const r = await cli(m.t.database.url, ['users', 'change-email', 'cli-old@example.com', 'cli-new@example.com'], { env: { SMTP_URL: m.smtp.url } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^confirmation link mailed to cli-new@example.com/);
    expect(linkIn(await m.smtp.waitForMail('cli-new@example.com'), '/verify-email/')).toMatch(/\/verify-email\/[A-Za-z0-9_-]{43}$/);
    expect((await m.smtp.waitForMail('cli-old@example.com')).subject).toBe('Your Gatehouse email address is being changed');
    const bad = await cli(m.t.database.url, ['users', 'change-email', 'cli-old@example.com', 'nope'], { env: { SMTP_URL: m.smtp.url } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a bad or unchanged address, and another person asking without authority', async () => {
    const a = await createAccount(db(), { email: 'amy@example.com', password: PASSWORD });
    const deps = { db: db(), mailer: m.t.gatehouse.mailer, issuer: m.t.config.issuer };
    await expect(requestEmailChange(deps, selfActor(a.id), a.id, 'not an address')).rejects.toThrow(/invalid email/);
    await expect(requestEmailChange(deps, selfActor(a.id), a.id, 'AMY@example.com')).rejects.toThrow(/already the address/);
    const other = await createAccount(db(), { email: 'mallory@example.com', password: PASSWORD });
    const { addRoleToAccount } = await import('../../src/resources/roles.ts');
    await addRoleToAccount(db(), a.id, 'gatehouse-admin');
    await expect(requestEmailChange(deps, selfActor(other.id), a.id, 'mallory2@example.com')).rejects.toThrow(/gatehouse:admin/);
  });

  it('a link that lost the race to another account taking the address: a clear 409 page, the email unchanged', async () => {
    const a = await createAccount(db(), { email: 'ben@example.com', password: PASSWORD });
    const deps = { db: db(), mailer: m.t.gatehouse.mailer, issuer: m.t.config.issuer };
    await requestEmailChange(deps, selfActor(a.id), a.id, 'taken@example.com');
    const link = linkIn(await m.smtp.waitForMail('taken@example.com'), '/verify-email/');
    await createAccount(db(), { email: 'taken@example.com' });
    const b = new Browser(m.t);
    const p = await submit(b, await open(b, link), {});
    expect(p.status).toBe(409);
    expect(textOf(p.html)).toContain('This address belongs to another account');
    expect((await findAccountByEmail(db(), 'ben@example.com'))!.id).toBe(a.id);
    expect(isLoginPage).toBeDefined();
  });
});
