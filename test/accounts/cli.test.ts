import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmTotpEnrolment, newTotpSecret } from '../../src/accounts/mfa.ts';
import { authenticate } from '../../src/accounts/store.ts';
import type { LoginPolicy } from '../../src/accounts/throttle.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli, type CliResult } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { TEST_KEK } from '../helpers/env.ts';

const policy: LoginPolicy = { maxFailures: 100, lockSeconds: 1, maxLockSeconds: 1, ipMaxFailures: 1000 };
const PW = 'correct horse battery';

interface JsonAccount {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  disabled: boolean;
  mfaEnabled: boolean;
  createdAt: string;
  lastLoginAt: string | null;
}

let tdb: TestDatabase;
let handle: DbHandle;

beforeAll(async () => {
  tdb = await createTestDatabase();
  handle = openDb({ url: tdb.url });
});

afterAll(async () => {
  await handle?.close();
  await tdb?.drop();
});

const run = (args: string[], stdin?: string) => cli(tdb.url, args, stdin === undefined ? {} : { stdin });
const login = (email: string, pw: string) => authenticate(handle.prisma, email, pw, { policy });
const count = () => handle.prisma.account.count();

function expectOneLineError(r: CliResult, pattern: RegExp, code = 1) {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stderr).toMatch(/^gatehouse: /);
  expect(r.stderr).toMatch(pattern);
}

describe('gatehouse users', () => {
  it('create --password-stdin --json prints the account view; one trailing newline is dropped', async () => {
    const r = await run(['users', 'create', '--email', 'Ada@Example.com', '--name', 'Ada', '--password-stdin', '--json'], `${PW}\n`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const a = r.json<JsonAccount>();
    expect(Object.keys(a).sort()).toEqual(['createdAt', 'disabled', 'email', 'emailVerified', 'id', 'lastLoginAt', 'mfaEnabled', 'name']);
    expect(a).toMatchObject({ email: 'ada@example.com', name: 'Ada', emailVerified: false, disabled: false, mfaEnabled: false, lastLoginAt: null });
    expect(new Date(a.createdAt).toISOString()).toBe(a.createdAt);
    expect(r.stdout).not.toContain('argon2');
    expect((await login('ada@example.com', PW)).ok).toBe(true);
    expect((await login('ada@example.com', `${PW}\n`)).ok).toBe(false);
  });

  it('create without a password source makes an account without a password and says so', async () => {
    const r = await run(['users', 'create', '--email', 'nopw@example.com']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^created account nopw@example\.com \([0-9a-f-]{36}\)\n/);
    expect(r.stdout).toMatch(/no password set/);
    const show = await run(['users', 'show', 'nopw@example.com']);
    expect(show.stdout).toMatch(/password:\s+not set/);
    // with --json, stdout stays pure JSON and the note goes to stderr
    const j = await run(['users', 'create', '--email', 'nopw2@example.com', '--json']);
    expect(j.code).toBe(0);
    expect(j.json<JsonAccount>().email).toBe('nopw2@example.com');
    expect(j.stderr).toMatch(/no password set/);
  });

  it('create refuses bad input with one line and creates nothing', async () => {
    const before = await count();
    expectOneLineError(await run(['users', 'create']), /--email is required/);
    expectOneLineError(await run(['users', 'create', '--email']), /--email/, 2);
    expectOneLineError(await run(['users', 'create', '--email', 'not-an-email']), /invalid email: is not a valid address/);
    expectOneLineError(await run(['users', 'create', '--email', 'a b@example.com']), /invalid email: is not a valid address/);
    expectOneLineError(await run(['users', 'create', '--email', 'ADA@example.com']), /an account with this email already exists/);
    expectOneLineError(await run(['users', 'create', '--email', 'short@example.com', '--password-stdin'], 'short\n'), /invalid password: must be at least 8 characters/);
    expectOneLineError(await run(['users', 'create', '--email', 'long@example.com', '--password-stdin'], 'x'.repeat(1025)), /at most 1024 bytes/);
    expectOneLineError(await run(['users', 'create', '--email', 'empty@example.com', '--password-stdin'], ''), /standard input is empty/);
    expectOneLineError(await run(['users', 'create', '--email', 'multi@example.com', '--password-stdin'], `${PW}\nsecond line\n`), /single line/);
    // stdin is a terminal (readStdin gives undefined)
    expectOneLineError(await run(['users', 'create', '--email', 'tty@example.com', '--password-stdin']), /standard input is a terminal/);
    // a password is never accepted in argv
    expectOneLineError(await run(['users', 'create', '--email', 'argv@example.com', '--password', PW]), /--password/, 2);
    expectOneLineError(await run(['users', 'create', '--email', 'argv@example.com', PW]), /unexpected argument/, 2);
    expect(await count()).toBe(before);
  });

  it('list shows accounts, as text and JSON, with an email filter', async () => {
    await run(['users', 'create', '--email', 'listme@filter.example']);
    const text = await run(['users', 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ada@example\.com\s+enabled\s+[0-9a-f-]{36}\s+Ada$/m);
    const all = (await run(['users', 'list', '--json'])).json<JsonAccount[]>();
    expect(all.map((a) => a.email)).toEqual([...all.map((a) => a.email)].sort());
    expect(all.length).toBe(await count());
    const filtered = (await run(['users', 'list', '--email', 'FILTER.example', '--json'])).json<JsonAccount[]>();
    expect(filtered.map((a) => a.email)).toEqual(['listme@filter.example']);
    const none = await run(['users', 'list', '--email', 'nothing-matches']);
    expect(none.stdout).toBe('no accounts\n');
  });

  it('show finds an account by email (any case) or id', async () => {
    const byEmail = await run(['users', 'show', 'ADA@example.COM', '--json']);
    expect(byEmail.code).toBe(0);
    const a = byEmail.json<JsonAccount>();
    const byId = await run(['users', 'show', a.id, '--json']);
    expect(byId.json<JsonAccount>()).toEqual(a);
    const text = await run(['users', 'show', a.id]);
    expect(text.stdout).toMatch(/^id:\s+[0-9a-f-]{36}$/m);
    expect(text.stdout).toMatch(/^email:\s+ada@example\.com$/m);
    expect(text.stdout).toMatch(/^password:\s+set$/m);
  });

  it('unknown users and missing arguments fail with one line', async () => {
    for (const cmd of ['show', 'disable', 'enable', 'reset-mfa', 'delete']) {
      expectOneLineError(await run(['users', cmd, 'nobody@example.com']), /no account matches 'nobody@example\.com'/);
      expectOneLineError(await run(['users', cmd, '00000000-0000-0000-0000-000000000000']), /no account matches/);
      expectOneLineError(await run(['users', cmd]), /missing argument/, 2);
    }
    expectOneLineError(await run(['users', 'set-password', 'nobody@example.com', '--password-stdin'], `${PW}\n`), /no account matches/);
  });

  it('disable and enable', async () => {
    const d = await run(['users', 'disable', 'ada@example.com', '--json']);
    expect(d.code).toBe(0);
    expect(d.json<JsonAccount>().disabled).toBe(true);
    expect(await login('ada@example.com', PW)).toEqual({ ok: false, reason: 'disabled' });
    expect((await run(['users', 'list'])).stdout).toMatch(/^ada@example\.com\s+disabled/m);
    const e = await run(['users', 'enable', 'ada@example.com']);
    expect(e.code).toBe(0);
    expect(e.stdout).toBe('enabled ada@example.com\n');
    expect((await login('ada@example.com', PW)).ok).toBe(true);
  });

  it('set-password reads stdin and refuses without it', async () => {
    const ok = await run(['users', 'set-password', 'nopw@example.com', '--password-stdin'], 'a new password\r\n');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('password set for nopw@example.com\n');
    expect((await login('nopw@example.com', 'a new password')).ok).toBe(true);

    expectOneLineError(await run(['users', 'set-password', 'nopw@example.com']), /needs --password-stdin/);
    expectOneLineError(await run(['users', 'set-password', 'nopw@example.com', '--password-stdin']), /standard input is a terminal/);
    expectOneLineError(await run(['users', 'set-password', 'nopw@example.com', '--password-stdin'], 'short\n'), /at least 8 characters/);
    // the failed attempts changed nothing
    expect((await login('nopw@example.com', 'a new password')).ok).toBe(true);
  });

  it('reset-mfa turns two-step verification off: no TOTP secret, no recovery codes', async () => {
    const created = await run(['users', 'create', '--email', 'mfa@example.com', '--password-stdin', '--json'], `${PW}\n`);
    const id = created.json<JsonAccount>().id;
    const secret = newTotpSecret();
    const enrolled = await confirmTotpEnrolment(handle.prisma, { accountId: id, secret, code: await generate({ secret }) }, { kek: Buffer.from(TEST_KEK, 'base64') });
    expect(enrolled.ok).toBe(true);
    expect((await run(['users', 'show', 'mfa@example.com', '--json'])).json<JsonAccount>().mfaEnabled).toBe(true);
    expect((await run(['users', 'show', 'mfa@example.com'])).stdout).toMatch(/^mfa:\s+on/m);
    expect(await handle.prisma.recoveryCode.count({ where: { accountId: id } })).toBe(10);

    const r = await run(['users', 'reset-mfa', 'MFA@example.com']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^two-step verification reset for mfa@example\.com/);
    const row = await handle.prisma.account.findUniqueOrThrow({ where: { id } });
    expect(row.totpSecret).toBeNull();
    expect(row.totpEnabledAt).toBeNull();
    expect(await handle.prisma.recoveryCode.count({ where: { accountId: id } })).toBe(0);
    expect((await run(['users', 'show', id])).stdout).toMatch(/^mfa:\s+off$/m);
    // the password still works, and a second reset is harmless
    expect((await login('mfa@example.com', PW)).ok).toBe(true);
    const again = await run(['users', 'reset-mfa', id, '--json']);
    expect(again.code).toBe(0);
    expect(again.json<JsonAccount>()).toMatchObject({ email: 'mfa@example.com', mfaEnabled: false });
  });

  it('delete removes the account', async () => {
    const r = await run(['users', 'delete', 'nopw2@example.com', '--json']);
    expect(r.code).toBe(0);
    expect(r.json<JsonAccount>().email).toBe('nopw2@example.com');
    expectOneLineError(await run(['users', 'show', 'nopw2@example.com']), /no account matches/);
    expectOneLineError(await run(['users', 'delete', 'nopw2@example.com']), /no account matches/);
  });

  it('add-role, roles and remove-role manage a person\'s roles, and are audited', async () => {
    expect((await run(['resources', 'create', '--identifier', 'https://records.example', '--scope', 'records:read records:write', '--require-roles'])).code).toBe(0);
    expect((await run(['roles', 'create', '--name', 'nurse', '--resource', 'https://records.example', '--scope', 'records:read'])).code).toBe(0);
    expect((await run(['users', 'create', '--email', 'nurse.joy@example.com', '--password-stdin'], `${PW}\n`)).code).toBe(0);
    const add = await run(['users', 'add-role', 'Nurse.Joy@example.com', 'nurse', '--json']);
    expect(add.code).toBe(0);
    expect(add.json<{ added: boolean }>().added).toBe(true);
    expect((await run(['users', 'add-role', 'nurse.joy@example.com', 'nurse'])).stdout).toMatch(/already holds role nurse/);
    const roles = await run(['users', 'roles', 'nurse.joy@example.com', '--json']);
    expect(roles.json<{ name: string; scopes: string[] }[]>()).toEqual([{ name: 'nurse', resource: 'https://records.example', scopes: ['records:read'] }]);
    expectOneLineError(await run(['users', 'add-role', 'nurse.joy@example.com', 'surgeon']), /role 'surgeon' not found/);
    expectOneLineError(await run(['users', 'add-role', 'nobody@example.com', 'nurse']), /no account matches/);
    expectOneLineError(await run(['users', 'add-role', 'nurse.joy@example.com']), /missing argument/, 2);
    const removed = await run(['users', 'remove-role', 'nurse.joy@example.com', 'nurse', '--json']);
    expect(removed.json<{ removed: boolean }>().removed).toBe(true);
    expect((await run(['users', 'roles', 'nurse.joy@example.com'])).stdout).toMatch(/holds no roles/);
    const audit = await run(['audit', 'list', '--action', 'user.*', '--json']);
    const actions = audit.json<{ items: { action: string }[] }>().items.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['user.create', 'user.role_add', 'user.role_remove']));
    expect(audit.stdout).not.toContain(PW);
  });

  it('revoke-sessions signs a person out everywhere', async () => {
    const r = await run(['users', 'revoke-sessions', 'nurse.joy@example.com', '--json']);
    expect(r.code).toBe(0);
    expect(r.json<{ sessions: number; grants: number }>()).toMatchObject({ sessions: 0, grants: 0 });
  });

  it('help lists the users commands', async () => {
    const r = await run(['users', '--help']);
    expect(r.code).toBe(0);
    for (const c of ['create', 'list', 'show', 'disable', 'enable', 'set-password', 'reset-mfa', 'add-role', 'remove-role', 'roles', 'revoke-sessions', 'delete']) expect(r.stdout).toContain(`users ${c}`);
    const create = await run(['users', 'create', '--help']);
    expect(create.stdout).toMatch(/--password-stdin/);
  });
});
