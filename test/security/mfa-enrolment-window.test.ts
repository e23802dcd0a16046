// Security: when a sign-in needs a second factor and the account has no
// authenticator yet, someone who knows only the password could set up their
// own authenticator and lock the owner out. A first enrolment with only a
// password is therefore possible only inside an enrolment window that an
// administrator opened: at account creation, or with `users reset-mfa`
// (7 days). Outside it the page says to ask an administrator. Enrolments
// and refusals are audited.
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAccount } from '../../src/accounts/store.ts';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { MIGRATIONS_DIR, migrate } from '../../src/db/migrate.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { Browser, createUser, createWebClient, page, redirect, type Page, type TestClient } from '../sso/flow.ts';
import {
  ACR_MFA,
  ACR_PWD,
  enrolledUser,
  idTokenOf,
  isCodesPage,
  isEnrolPage,
  passwordStep,
  secretOf,
  submitCode,
  submitContinue,
  totp,
} from '../sso/mfa-flow.ts';

const DAY_MS = 86_400_000;
const ASK_ADMIN = 'Ask your administrator to reset your two-step verification';

/** Audit rows of enrolment are written after the response; wait for them (bounded). */
async function events(t: TestApp, action: string, targetId: string, n = 1) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { items } = await listAuditEvents(t.gatehouse.db.prisma, { action, targetId });
    if (items.length >= n || Date.now() > deadline) return items;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectRefusalPage(p: Page): void {
  expect(p.status).toBe(403);
  expect(p.html).toContain('Two-step verification is not set up');
  expect(p.html).toContain(ASK_ADMIN);
  expect(p.res.headers['cache-control']).toBe('no-store');
  // no set-up form, no key, no QR code
  expect(isEnrolPage(p)).toBe(false);
  expect(p.html).not.toMatch(/totp-secret|class="qr"|name="code"/);
}

describe('first MFA enrolment needs an enrolment window', () => {
  let t: TestApp;
  let normal: TestClient;
  let strict: TestClient;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    normal = await createWebClient(t, { name: 'Wiki', firstParty: true });
    strict = await createWebClient(t, { name: 'Payroll', firstParty: true, requireMfa: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  const db = () => t.gatehouse.db.prisma;
  const windowOf = async (id: string) =>
    (await db().$queryRaw<{ until: Date | null }[]>`SELECT mfa_enrolment_until AS until FROM accounts WHERE id = ${id}::uuid`)[0]!.until;
  const closeWindow = (id: string, until: Date | null) => db().$executeRaw`UPDATE accounts SET mfa_enrolment_until = ${until} WHERE id = ${id}::uuid`;

  it('a new account gets a 7-day window; enrolling with the password inside it works, closes it and is audited', async () => {
    const before = Date.now();
    const { id } = await createUser(t, 'new@example.com');
    const until = await windowOf(id);
    expect(until).toBeInstanceOf(Date);
    expect(until!.getTime()).toBeGreaterThanOrEqual(before + 7 * DAY_MS - 60_000);
    expect(until!.getTime()).toBeLessThanOrEqual(Date.now() + 7 * DAY_MS + 60_000);

    const b = new Browser(t);
    const { step, verifier } = await passwordStep(b, strict, 'new@example.com');
    const enrol = page(step);
    expect(isEnrolPage(enrol)).toBe(true);
    const codes = page(await submitCode(b, enrol, '/enrol', await totp(secretOf(enrol))));
    expect(isCodesPage(codes)).toBe(true);
    expect((await idTokenOf(t, strict, redirect(await submitContinue(b, codes)), verifier)).acr).toBe(ACR_MFA);

    expect(await windowOf(id)).toBeNull();
    const [event] = await events(t, 'mfa.enrol', id);
    expect(event).toMatchObject({ actorType: 'user', actorId: id, targetType: 'user', targetId: id });
    expect(event!.details).toMatchObject({ method: 'totp', client: strict.id });
    expect(JSON.stringify(event)).not.toMatch(/[A-Z2-7]{32}/); // no secret
  });

  it('outside the window the password alone cannot enrol: the page says to ask an administrator, nothing is stored, the refusal is audited', async () => {
    const { id } = await createUser(t, 'late@example.com');
    await closeWindow(id, new Date(Date.now() - 1000));

    const b = new Browser(t);
    expectRefusalPage(page((await passwordStep(b, strict, 'late@example.com')).step));
    // the request asking for MFA (not the client) meets the same page
    const b2 = new Browser(t);
    expectRefusalPage(page((await passwordStep(b2, normal, 'late@example.com', { acr_values: ACR_MFA })).step));

    const row = await db().account.findUniqueOrThrow({ where: { id } });
    expect(row.totpSecret).toBeNull();
    expect(row.totpEnabledAt).toBeNull();
    const refusals = await events(t, 'mfa.enrol_refused', id, 2);
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatchObject({ actorType: 'user', actorId: id, targetType: 'user', targetId: id });
    expect(refusals.map((e) => (e.details as { client?: string }).client).sort()).toEqual([normal.id, strict.id].sort());
    expect(await events(t, 'mfa.enrol', id, 0)).toEqual([]);

    // where no second factor is needed, the password still signs in
    const b3 = new Browser(t);
    const plain = await passwordStep(b3, normal, 'late@example.com');
    expect((await idTokenOf(t, normal, redirect(plain.step), plain.verifier)).acr).toBe(ACR_PWD);
  });

  it('an account with no window at all (NULL) is refused the same way', async () => {
    const { id } = await createUser(t, 'none@example.com');
    await closeWindow(id, null);
    expectRefusalPage(page((await passwordStep(new Browser(t), strict, 'none@example.com')).step));
    expect((await getAccount(db(), id)).mfaEnabled).toBe(false);
  });

  it('the window closing between the set-up page and the confirmation refuses the confirmation', async () => {
    const { id } = await createUser(t, 'race@example.com');
    const b = new Browser(t);
    const enrol = page((await passwordStep(b, strict, 'race@example.com')).step);
    expect(isEnrolPage(enrol)).toBe(true);
    await closeWindow(id, new Date(Date.now() - 1000));
    expectRefusalPage(page(await submitCode(b, enrol, '/enrol', await totp(secretOf(enrol)))));
    const row = await db().account.findUniqueOrThrow({ where: { id } });
    expect(row.totpSecret).toBeNull();
    expect(row.totpEnabledAt).toBeNull();
    expect(await db().recoveryCode.count({ where: { accountId: id } })).toBe(0);
  });

  it('gatehouse users reset-mfa opens a new 7-day window, shown in its output', async () => {
    const ivy = await enrolledUser(t, strict, 'ivy@example.com');
    expect(await windowOf(ivy.id)).toBeNull();
    const before = Date.now();
    const r = await cli(t.database.url, ['users', 'reset-mfa', ivy.email, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.json<{ mfaEnabled: boolean; mfaEnrolmentUntil: string }>();
    expect(out.mfaEnabled).toBe(false);
    const until = await windowOf(ivy.id);
    expect(until!.getTime()).toBeGreaterThanOrEqual(before + 7 * DAY_MS - 60_000);
    expect(until!.getTime()).toBeLessThanOrEqual(Date.now() + 7 * DAY_MS + 60_000);
    expect(out.mfaEnrolmentUntil).toBe(until!.toISOString());
    const human = await cli(t.database.url, ['users', 'reset-mfa', ivy.email]);
    expect(human.stdout).toContain(`until ${(await windowOf(ivy.id))!.toISOString()}`);

    // an account whose window had passed may enrol again after the reset
    const { id } = await createUser(t, 'expired@example.com');
    await closeWindow(id, new Date(Date.now() - 1000));
    expectRefusalPage(page((await passwordStep(new Browser(t), strict, 'expired@example.com')).step));
    expect((await cli(t.database.url, ['users', 'reset-mfa', 'expired@example.com'])).code).toBe(0);
    const b = new Browser(t);
    const enrol = page((await passwordStep(b, strict, 'expired@example.com')).step);
    expect(isEnrolPage(enrol)).toBe(true);
    expect(isCodesPage(page(await submitCode(b, enrol, '/enrol', await totp(secretOf(enrol)))))).toBe(true);
  });
});

describe('the migration that adds the window', () => {
  it('gives existing accounts without an authenticator the window they would have had (created_at + 7 days), and none to the others', async () => {
    const tdb = await createTestDatabase({ empty: true });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-migrations-'));
    const c = new pg.Client({ connectionString: tdb.url });
    try {
      const names = readdirSync(MIGRATIONS_DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
      const mine = names.find((n) => n.endsWith('_mfa_enrolment_window'));
      expect(mine, 'the migration exists').toBeDefined();
      for (const n of names.filter((n) => n < mine!)) cpSync(path.join(MIGRATIONS_DIR, n), path.join(dir, n), { recursive: true });
      await migrate(tdb.url, dir);
      await c.connect();
      const ins = `INSERT INTO accounts (id, email, created_at, updated_at, totp_secret, totp_enabled_at) VALUES ($1, $2, $3, now(), $4, $5)`;
      const old = new Date(Date.now() - 30 * DAY_MS);
      const recent = new Date(Date.now() - 2 * DAY_MS);
      await c.query(ins, ['00000000-0000-4000-8000-000000000001', 'old@example.com', old, null, null]);
      await c.query(ins, ['00000000-0000-4000-8000-000000000002', 'recent@example.com', recent, null, null]);
      await c.query(ins, ['00000000-0000-4000-8000-000000000003', 'mfa@example.com', recent, 'v1.x.y.z', recent]);
      await c.query(`INSERT INTO login_throttles (key, failures) VALUES ('totp-step:00000000-0000-4000-8000-000000000003', 12345)`);
      await migrate(tdb.url);
      const { rows } = await c.query<{ email: string; until: Date | null; step: string | null }>(
        'SELECT email, mfa_enrolment_until AS until, totp_last_step::text AS step FROM accounts ORDER BY email',
      );
      const by = new Map(rows.map((r) => [r.email, r]));
      expect(by.get('old@example.com')!.until!.getTime()).toBe(old.getTime() + 7 * DAY_MS); // long closed
      expect(by.get('recent@example.com')!.until!.getTime()).toBe(recent.getTime() + 7 * DAY_MS); // still open
      expect(by.get('mfa@example.com')!.until).toBeNull();
      // the replay record of TOTP moves onto the account
      expect(by.get('mfa@example.com')!.step).toBe('12345');
      expect((await c.query(`SELECT count(*)::int AS n FROM login_throttles WHERE key LIKE 'totp-step:%'`)).rows[0].n).toBe(0);
    } finally {
      await c.end().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      await tdb.drop();
    }
  });
});
