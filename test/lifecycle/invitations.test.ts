// Invitations: CLI and admin API invite, the mailed 7-day single-use link,
// choosing a password (which verifies the email), two-step set-up in the
// same flow where an application requires MFA, resend, and what an inviter
// may not hand out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAccount, findAccountByEmail } from '../../src/accounts/store.ts';
import { ADMIN_RESOURCE } from '../../src/resources/store.ts';
import { adminClient, api, expectProblem, tokenFor } from '../admin/helpers.ts';
import { cli } from '../helpers/cli.ts';
import { linkIn } from '../helpers/smtp.ts';
import { createApi, createRoleFor } from '../security/fixtures.ts';
import { createWebClient, PASSWORD } from '../sso/flow.ts';
import { totp } from '../sso/mfa-flow.ts';
import { Browser, expectNoServerError, hiddenOf, mailApp, open, submit, textOf, type MailApp } from './helpers.ts';

let m: MailApp;
let writer: string;

beforeAll(async () => {
  m = await mailApp();
  writer = await tokenFor(m.t, await adminClient(m.t, ['gatehouse:users:write', 'gatehouse:users:read']));
  await createApi(m.t, { identifier: 'https://orders.example', scopes: ['orders:read'] });
  await createRoleFor(m.t, { name: 'orders-reader', resource: 'https://orders.example', scopes: ['orders:read'] });
  await createRoleFor(m.t, { name: 'user-admins', resource: ADMIN_RESOURCE, scopes: ['gatehouse:users:write'] });
});
afterAll(() => m.close());

const db = () => m.t.gatehouse.db.prisma;

describe('inviting through the admin API', () => {
  it('creates the person with their roles and mails them a 7-day link; the body never carries the link', async () => {
    const res = await api(m.t, writer, 'post', '/users/invitations').send({ email: 'Ann@Example.com', name: 'Ann', roles: ['orders-reader'] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ user: { email: 'ann@example.com', name: 'Ann', hasPassword: false, emailVerified: false }, roles: ['orders-reader'], mailed: true });
    expect(res.headers.location).toBe(`/admin/v1/users/${res.body.user.id}`);
    const days = (Date.parse(res.body.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThanOrEqual(7);
    const mail = await m.smtp.waitForMail('ann@example.com');
    expect(mail.subject).toBe('You are invited to sign in with Gatehouse');
    expect(mail.text).toContain('Hello Ann,');
    expect(mail.text).toContain('expires in 7 days');
    const link = linkIn(mail, '/invite/');
    expect(JSON.stringify(res.body)).not.toContain(link.split('/').pop());
    const audit = await db().auditEvent.findMany({ where: { targetId: res.body.user.id }, orderBy: { occurredAt: 'asc' } });
    expect(audit.map((e) => e.action)).toEqual(['user.create', 'user.role_add', 'user.invite']);
  });

  it('refuses a role carrying admin-API permissions the inviter lacks, and creates nothing', async () => {
    for (const role of ['gatehouse-admin', 'user-admins']) {
      const res = await api(m.t, writer, 'post', '/users/invitations').send({ email: `sneaky-${role}@example.com`, roles: ['orders-reader', role] });
      // user-admins carries gatehouse:users:write, which the writer holds: allowed
      if (role === 'user-admins') {
        expect(res.status).toBe(201);
        continue;
      }
      expectProblem(res, 403);
      expect(await findAccountByEmail(db(), `sneaky-${role}@example.com`)).toBeUndefined();
    }
    expect(m.smtp.unread('sneaky-gatehouse-admin@example.com')).toEqual([]);
  });

  it('answers bad input with problem+json: missing email, bad roles, unknown role, taken email', async () => {
    expectProblem(await api(m.t, writer, 'post', '/users/invitations').send({}), 422, 'email');
    expectProblem(await api(m.t, writer, 'post', '/users/invitations').send({ email: 'x@example.com', roles: 'orders-reader' }), 422, 'roles');
    expectProblem(await api(m.t, writer, 'post', '/users/invitations').send({ email: 'not an email' }), 422, 'email');
    expect((await api(m.t, writer, 'post', '/users/invitations').send({ email: 'y@example.com', roles: ['no-such-role'] })).status).toBe(404);
    expect(await findAccountByEmail(db(), 'y@example.com')).toBeUndefined();
    expectProblem(await api(m.t, writer, 'post', '/users/invitations').send({ email: 'ann@example.com' }), 409);
    const reader = await tokenFor(m.t, await adminClient(m.t, ['gatehouse:users:read']));
    expectProblem(await api(m.t, reader, 'post', '/users/invitations').send({ email: 'z@example.com' }), 403);
  });

  it('resend: a new link, the old one stops working; refused once a password is set', async () => {
    const res = await api(m.t, writer, 'post', '/users/invitations').send({ email: 'bo@example.com' });
    const first = linkIn(await m.smtp.waitForMail('bo@example.com'), '/invite/');
    const again = await api(m.t, writer, 'post', `/users/${res.body.user.id}/invitation:resend`);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ user: { email: 'bo@example.com' }, mailed: true });
    const second = linkIn(await m.smtp.waitForMail('bo@example.com'), '/invite/');
    expect(second).not.toBe(first);
    const b = new Browser(m.t);
    const old = await open(b, first);
    expect(old.status).toBe(410);
    const p = await open(b, second);
    expect((await submit(b, p, { password: PASSWORD, confirm: PASSWORD })).status).toBe(200);
    expectProblem(await api(m.t, writer, 'post', `/users/${res.body.user.id}/invitation:resend`), 409);
  });

  it('resend to a person holding admin-API permissions the caller lacks is refused', async () => {
    const op = await cli(m.t.database.url, ['users', 'invite', '--email', 'boss@example.com', '--role', 'gatehouse-admin', '--json'], { env: { SMTP_URL: m.smtp.url } });
    expect(op.code, op.stderr).toBe(0);
    await m.smtp.waitForMail('boss@example.com');
    const boss = (await findAccountByEmail(db(), 'boss@example.com'))!;
    expectProblem(await api(m.t, writer, 'post', `/users/${boss.id}/invitation:resend`), 403);
  });
});

describe('accepting an invitation', () => {
  it('sets the password and verifies the email; the link then says it was used', async () => {
    await api(m.t, writer, 'post', '/users/invitations').send({ email: 'cy@example.com' });
    const link = linkIn(await m.smtp.waitForMail('cy@example.com'), '/invite/');
    const b = new Browser(m.t);
    const form = await open(b, link);
    expect(form.status).toBe(200);
    expect(textOf(form.html)).toContain('You were invited as cy@example.com');
    // bad input: a clear message, the link not spent
    const mismatch = await submit(b, form, { password: PASSWORD, confirm: 'something else' });
    expect(mismatch.status).toBe(400);
    expect(textOf(mismatch.html)).toContain('The two passwords do not match');
    const short = await submit(b, form, { password: 'short', confirm: 'short' });
    expect(short.status).toBe(400);
    expect(textOf(short.html)).toMatch(/The password must be at least 8 characters/);
    const empty = await submit(b, form, {});
    expect(empty.status).toBe(400);
    const done = await submit(b, form, { password: PASSWORD, confirm: PASSWORD });
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain('Your account is ready');
    const a = (await findAccountByEmail(db(), 'cy@example.com'))!;
    expect(a).toMatchObject({ hasPassword: true, emailVerified: true, mfaEnabled: false });
    // no application requires MFA: the usual enrolment window opens now
    const row = await db().account.findUniqueOrThrow({ where: { id: a.id } });
    expect(row.mfaEnrolmentUntil!.getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    const used = await open(b, link);
    expect(used.status).toBe(410);
    expect(textOf(used.html)).toContain('This invitation was already used');
    expect(used.html).toContain('/reset'); // a way on
  });

  it('without the CSRF cookie the form is refused (403) and the link stays usable', async () => {
    await api(m.t, writer, 'post', '/users/invitations').send({ email: 'dee@example.com' });
    const link = linkIn(await m.smtp.waitForMail('dee@example.com'), '/invite/');
    const b = new Browser(m.t);
    const form = await open(b, link);
    const other = new Browser(m.t);
    const refused = await submit(other, form, { password: PASSWORD, confirm: PASSWORD });
    expect(refused.status).toBe(403);
    expect((await open(b, link)).status).toBe(200);
  });

  it('of 10 concurrent acceptances exactly one sets the password', async () => {
    await api(m.t, writer, 'post', '/users/invitations').send({ email: 'eve@example.com' });
    const link = linkIn(await m.smtp.waitForMail('eve@example.com'), '/invite/');
    const b = new Browser(m.t);
    const form = await open(b, link);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(b, form, { password: `${PASSWORD} ${i}`, confirm: `${PASSWORD} ${i}` })));
    results.forEach(expectNoServerError);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 410)).toHaveLength(9);
  });

  it('an expired invitation is refused with a page that says what to do', async () => {
    const res = await api(m.t, writer, 'post', '/users/invitations').send({ email: 'fay@example.com' });
    const link = linkIn(await m.smtp.waitForMail('fay@example.com'), '/invite/');
    await db().$executeRaw`UPDATE action_tokens SET expires_at = now() - interval '1 second' WHERE account_id = ${res.body.user.id}::uuid`;
    const p = await open(new Browser(m.t), link);
    expect(p.status).toBe(410);
    expect(textOf(p.html)).toContain('This invitation has expired');
    expect(textOf(p.html)).toContain('Ask the person who invited you to send a new invitation');
    expect((await open(new Browser(m.t), `${m.t.config.issuer}/invite/not-a-link`)).status).toBe(404);
  });

  it('where an application requires MFA, the person sets up an authenticator in the same flow (no enrolment window before)', async () => {
    const strict = await createWebClient(m.t, { name: 'Payroll', requireMfa: true });
    const res = await api(m.t, writer, 'post', '/users/invitations').send({ email: 'gus@example.com' });
    // invited: the enrolment window is closed; only the invitation lets them enrol
    expect((await db().account.findUniqueOrThrow({ where: { id: res.body.user.id } })).mfaEnrolmentUntil).toBeNull();
    const link = linkIn(await m.smtp.waitForMail('gus@example.com'), '/invite/');
    const b = new Browser(m.t);
    const enrol = await submit(b, await open(b, link), { password: PASSWORD, confirm: PASSWORD });
    expect(enrol.status).toBe(200);
    expect(textOf(enrol.html)).toContain('Set up two-step verification');
    const secret = /id="totp-secret">([^<]+)</.exec(enrol.html)![1]!.replace(/\s/g, '');
    const state = hiddenOf(enrol.html, 'state');
    const code = await totp(secret);
    const wrong = await submit(b, enrol, { state, code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    const done = await submit(b, wrong, { state, code });
    expect(done.status).toBe(200);
    expect(done.html).toContain('id="recovery-codes"');
    expect(await getAccount(db(), res.body.user.id)).toMatchObject({ mfaEnabled: true, hasPassword: true, emailVerified: true });
    // a tampered state is refused, never a 5xx
    const tampered = await submit(b, enrol, { state: `${state.slice(0, -2)}AA`, code });
    expect(tampered.status).toBe(410);
    await db().client.update({ where: { id: strict.id }, data: { requireMfa: false } });
  });
});

describe('inviting from the command line', () => {
  it('users invite --email --name --role mails the link; --json says so', async () => {
    const r = await cli(m.t.database.url, ['users', 'invite', '--email', 'hal@example.com', '--name', 'Hal', '--role', 'orders-reader', '--json'], {
      env: { SMTP_URL: m.smtp.url },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ email: 'hal@example.com', name: 'Hal', roles: ['orders-reader'], invitation: { mailed: true } });
    expect(linkIn(await m.smtp.waitForMail('hal@example.com'), '/invite/')).toMatch(/^http:\/\/localhost:3000\/invite\/[A-Za-z0-9_-]{43}$/);
  });

  it('users resend-invite EMAIL sends a new link', async () => {
    const r = await cli(m.t.database.url, ['users', 'resend-invite', 'hal@example.com'], { env: { SMTP_URL: m.smtp.url } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^invitation sent again to hal@example.com/);
    await m.smtp.waitForMail('hal@example.com');
  });

  it('bad input: one line, non-zero exit, nothing created', async () => {
    const missing = await cli(m.t.database.url, ['users', 'invite'], { env: { SMTP_URL: m.smtp.url } });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const role = await cli(m.t.database.url, ['users', 'invite', '--email', 'ivy@example.com', '--role', 'nope'], { env: { SMTP_URL: m.smtp.url } });
    expect(role.code).not.toBe(0);
    expect(role.stderr.trim().split('\n')).toHaveLength(1);
    expect(await findAccountByEmail(db(), 'ivy@example.com')).toBeUndefined();
  });

  it('without SMTP_URL (development) the mail is written to DATA_DIR/mail and the link printed on stderr', async () => {
    const { mkdtempSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dataDir = mkdtempSync(`${tmpdir()}/gh-invite-`);
    const r = await cli(m.t.database.url, ['users', 'invite', '--email', 'jo@example.com'], { env: { DATA_DIR: dataDir } });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(`${dataDir}/mail`)).toHaveLength(1);
    expect(r.stderr).toMatch(/"link":"http:\/\/localhost:3000\/invite\/[A-Za-z0-9_-]{43}"/);
  });
});
