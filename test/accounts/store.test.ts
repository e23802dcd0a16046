import { hash as argon2Hash, type Algorithm } from '@node-rs/argon2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDirectory } from '../../src/accounts/cache.ts';
import { claimsFor, loadAccountForOidc } from '../../src/accounts/claims.ts';
import { ConflictError, NotFoundError, ValidationError, VersionMismatchError } from '../../src/kernel/errors.ts';
import {
  authenticate,
  createAccount,
  deleteAccount,
  findAccountByEmail,
  getAccount,
  listAccounts,
  recordLogin,
  resolveAccount,
  setDisabled,
  setPassword,
  updateAccount,
  type LoginEvent,
} from '../../src/accounts/store.ts';
import type { LoginPolicy } from '../../src/accounts/throttle.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const policy: LoginPolicy = { maxFailures: 10, lockSeconds: 300, maxLockSeconds: 3600, ipMaxFailures: 50 };
const PW = 'correct horse battery';

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

const db = () => handle.prisma;

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('accounts store', () => {
  it('creates an account with a normalised email and a view without secrets', async () => {
    const a = await createAccount(db(), { email: '  Ada@Example.COM ', name: ' Ada Lovelace ', password: PW });
    expect(a).toMatchObject({ email: 'ada@example.com', name: 'Ada Lovelace', emailVerified: false, disabled: false, hasPassword: true, version: 1, lastLoginAt: null });
    expect(Object.keys(a)).not.toContain('passwordHash');
    expect(Object.keys(a)).not.toContain('totpSecret');
    expect(JSON.stringify(a)).not.toContain('$argon2');
    const row = await db().account.findUniqueOrThrow({ where: { id: a.id } });
    expect(row.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await findAccountByEmail(db(), 'ADA@example.com')).toEqual(a);
    expect(await getAccount(db(), a.id)).toEqual(a);
    expect(await resolveAccount(db(), 'ada@EXAMPLE.com')).toEqual(a);
    expect(await resolveAccount(db(), a.id)).toEqual(a);
  });

  it('keeps emails unique case-insensitively', async () => {
    await createAccount(db(), { email: 'grace@example.com' });
    const err = await errorOf(createAccount(db(), { email: 'GRACE@Example.com', password: PW }));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toBe('an account with this email already exists');
    expect(await db().account.count({ where: { email: 'grace@example.com' } })).toBe(1);
  });

  it('refuses malformed input with a ValidationError naming the field', async () => {
    for (const email of ['', 'no-at-sign', 'two@@example.com', 'a@b@c', 'sp ace@example.com', '@example.com', 'x@', `${'a'.repeat(250)}@b.cd`]) {
      const err = await errorOf(createAccount(db(), { email }));
      expect(err, email).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('email');
      expect(err.message).not.toContain('\n');
    }
    const short = await errorOf(createAccount(db(), { email: 'short@example.com', password: 'short' }));
    expect((short as ValidationError).field).toBe('password');
    const name = await errorOf(createAccount(db(), { email: 'named@example.com', name: '   ' }));
    expect((name as ValidationError).field).toBe('name');
    expect(await findAccountByEmail(db(), 'short@example.com')).toBeUndefined();
    expect(await findAccountByEmail(db(), 'named@example.com')).toBeUndefined();
  });

  it('reports unknown accounts with NotFoundError', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', 'not-a-uuid']) {
      expect(await errorOf(getAccount(db(), id))).toBeInstanceOf(NotFoundError);
      expect(await errorOf(setDisabled(db(), id, true))).toBeInstanceOf(NotFoundError);
      expect(await errorOf(setPassword(db(), id, PW))).toBeInstanceOf(NotFoundError);
      expect(await errorOf(deleteAccount(db(), id))).toBeInstanceOf(NotFoundError);
      expect(await errorOf(resolveAccount(db(), id))).toBeInstanceOf(NotFoundError);
    }
    expect(await errorOf(resolveAccount(db(), 'nobody@example.com'))).toBeInstanceOf(NotFoundError);
  });

  it('updates with optimistic concurrency', async () => {
    const a = await createAccount(db(), { email: 'upd@example.com', emailVerified: true });
    const b = await updateAccount(db(), a.id, { name: 'Up Date' }, { expectedVersion: 1 });
    expect(b).toMatchObject({ name: 'Up Date', version: 2, emailVerified: true });
    const stale = await errorOf(updateAccount(db(), a.id, { name: 'Other' }, { expectedVersion: 1 }));
    expect(stale).toBeInstanceOf(VersionMismatchError);
    expect(stale).toBeInstanceOf(ConflictError);
    expect((stale as VersionMismatchError).currentVersion).toBe(2);
    // a new email is unverified; a taken one is a conflict
    const c = await updateAccount(db(), a.id, { email: 'Upd2@Example.com' });
    expect(c).toMatchObject({ email: 'upd2@example.com', emailVerified: false, version: 3 });
    await createAccount(db(), { email: 'taken@example.com' });
    expect(await errorOf(updateAccount(db(), a.id, { email: 'TAKEN@example.com' }))).toBeInstanceOf(ConflictError);
    expect((await getAccount(db(), a.id)).email).toBe('upd2@example.com');
    const d = await updateAccount(db(), a.id, { name: null });
    expect(d.name).toBeNull();
  });

  it('lists accounts by email, page by page, with a filter', async () => {
    for (const n of ['l1', 'l2', 'l3', 'l4', 'l5']) await createAccount(db(), { email: `${n}@list.example` });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listAccounts(db(), { limit: 2, email: '@LIST.example', ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((a) => a.email));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(['l1@list.example', 'l2@list.example', 'l3@list.example', 'l4@list.example', 'l5@list.example']);
    expect(await errorOf(listAccounts(db(), { cursor: '!!' }))).toBeInstanceOf(ValidationError);
    expect(await errorOf(listAccounts(db(), { limit: 0 }))).toBeInstanceOf(ValidationError);
  });

  it('disables, enables and deletes', async () => {
    const a = await createAccount(db(), { email: 'dis@example.com', password: PW });
    expect((await setDisabled(db(), a.id, true)).disabled).toBe(true);
    expect((await setDisabled(db(), a.id, false)).disabled).toBe(false);
    await deleteAccount(db(), a.id);
    expect(await findAccountByEmail(db(), 'dis@example.com')).toBeUndefined();
  });

  it('recordLogin sets lastLoginAt and only replaces the hash it was given', async () => {
    const a = await createAccount(db(), { email: 'rec@example.com', password: PW });
    const before = await db().account.findUniqueOrThrow({ where: { id: a.id } });
    await recordLogin(db(), a.id, { rehash: 'NEW-HASH', previousHash: 'SOMETHING-ELSE' });
    const after = await db().account.findUniqueOrThrow({ where: { id: a.id } });
    expect(after.lastLoginAt).toBeInstanceOf(Date);
    expect(after.passwordHash).toBe(before.passwordHash);
    expect(after.version).toBe(before.version);
  });
});

describe('authenticate', () => {
  it('logs in with the right password, any email case, and records lastLoginAt', async () => {
    const a = await createAccount(db(), { email: 'login@example.com', password: PW });
    const events: LoginEvent[] = [];
    const r = await authenticate(db(), ' LOGIN@example.com', PW, { policy, ip: '192.0.2.1', onEvent: (e) => void events.push(e) });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.account.id).toBe(a.id);
    expect(r.account.lastLoginAt).toBeInstanceOf(Date);
    expect(events).toEqual([{ type: 'login.success', accountId: a.id, email: 'login@example.com', ip: '192.0.2.1' }]);
  });

  it('gives the same result for a wrong password and an unknown email', async () => {
    await createAccount(db(), { email: 'same@example.com', password: PW });
    const events: LoginEvent[] = [];
    const onEvent = (e: LoginEvent) => void events.push(e);
    const wrongPassword = await authenticate(db(), 'same@example.com', 'not the password', { policy, onEvent });
    const unknownEmail = await authenticate(db(), 'nobody@example.com', PW, { policy, onEvent });
    const malformed = await authenticate(db(), 'not an email', PW, { policy, onEvent });
    expect(wrongPassword).toEqual({ ok: false, reason: 'invalid' });
    expect(unknownEmail).toEqual(wrongPassword);
    expect(malformed).toEqual(wrongPassword);
    expect(events.map((e) => e.type)).toEqual(['login.failure', 'login.failure', 'login.failure']);
    expect(events[0]!.accountId).toBeDefined();
    expect(events[1]!.accountId).toBeUndefined();
  });

  it('refuses an account without a password, and overlong passwords', async () => {
    await createAccount(db(), { email: 'nopw@example.com' });
    expect(await authenticate(db(), 'nopw@example.com', '', { policy })).toEqual({ ok: false, reason: 'invalid' });
    expect(await authenticate(db(), 'nopw@example.com', PW, { policy })).toEqual({ ok: false, reason: 'invalid' });
    await createAccount(db(), { email: 'long@example.com', password: PW });
    expect(await authenticate(db(), 'long@example.com', PW + 'x'.repeat(5000), { policy })).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses a disabled account even with the right password', async () => {
    const a = await createAccount(db(), { email: 'off@example.com', password: PW });
    await setDisabled(db(), a.id, true);
    const events: LoginEvent[] = [];
    expect(await authenticate(db(), 'off@example.com', PW, { policy, onEvent: (e) => void events.push(e) })).toEqual({ ok: false, reason: 'disabled' });
    expect(events[0]).toMatchObject({ type: 'login.failure', accountId: a.id, reason: 'disabled' });
    expect((await getAccount(db(), a.id)).lastLoginAt).toBeNull();
    await setDisabled(db(), a.id, false);
    expect((await authenticate(db(), 'off@example.com', PW, { policy })).ok).toBe(true);
  });

  it('upgrades a hash made with weaker parameters on a successful login', async () => {
    const a = await createAccount(db(), { email: 'legacy@example.com' });
    const weak = await argon2Hash('legacy pw', { algorithm: 2 as Algorithm /* Argon2id */, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    await db().account.update({ where: { id: a.id }, data: { passwordHash: weak } });
    // a wrong password changes nothing
    expect((await authenticate(db(), 'legacy@example.com', 'wrong password', { policy })).ok).toBe(false);
    expect((await db().account.findUniqueOrThrow({ where: { id: a.id } })).passwordHash).toBe(weak);
    // the right one (shorter than today's minimum, set under an older policy) logs in and upgrades
    expect((await authenticate(db(), 'legacy@example.com', 'legacy pw', { policy })).ok).toBe(true);
    const upgraded = (await db().account.findUniqueOrThrow({ where: { id: a.id } })).passwordHash!;
    expect(upgraded).not.toBe(weak);
    expect(upgraded).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect((await authenticate(db(), 'legacy@example.com', 'legacy pw', { policy })).ok).toBe(true);
    expect((await db().account.findUniqueOrThrow({ where: { id: a.id } })).passwordHash).toBe(upgraded);
  });

  it('a throwing or rejecting onEvent does not break the login', async () => {
    await createAccount(db(), { email: 'evt@example.com', password: PW });
    const r1 = await authenticate(db(), 'evt@example.com', PW, {
      policy,
      onEvent: () => {
        throw new Error('audit down');
      },
    });
    expect(r1.ok).toBe(true);
    const r2 = await authenticate(db(), 'evt@example.com', PW, { policy, onEvent: async () => Promise.reject(new Error('audit down')) });
    expect(r2.ok).toBe(true);
  });

  it('setPassword replaces the password', async () => {
    const a = await createAccount(db(), { email: 'newpw@example.com', password: PW });
    await setPassword(db(), a.id, 'a brand new password');
    expect((await authenticate(db(), 'newpw@example.com', PW, { policy })).ok).toBe(false);
    expect((await authenticate(db(), 'newpw@example.com', 'a brand new password', { policy })).ok).toBe(true);
    expect(await errorOf(setPassword(db(), a.id, 'short'))).toBeInstanceOf(ValidationError);
  });
});

describe('claims', () => {
  it('maps scopes to standard claims', async () => {
    const a = await createAccount(db(), { email: 'claims@example.com', name: 'Claire', emailVerified: true });
    expect(claimsFor(a, new Set(['openid']))).toEqual({ sub: a.id });
    expect(claimsFor(a, new Set(['openid', 'profile', 'email']))).toEqual({
      sub: a.id,
      name: 'Claire',
      updated_at: Math.floor(a.updatedAt.getTime() / 1000),
      email: 'claims@example.com',
      email_verified: true,
    });
    const oidc = await loadAccountForOidc(accountDirectory(db()), a.id);
    expect(oidc?.accountId).toBe(a.id);
    expect(await oidc!.claims('id_token', 'openid email')).toEqual({ sub: a.id, email: 'claims@example.com', email_verified: true });
  });

  it('loadAccountForOidc: undefined for unknown or disabled accounts', async () => {
    const a = await createAccount(db(), { email: 'gone@example.com' });
    await setDisabled(db(), a.id, true);
    expect(await loadAccountForOidc(accountDirectory(db()), a.id)).toBeUndefined();
    expect(await loadAccountForOidc(accountDirectory(db()), '00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(await loadAccountForOidc(accountDirectory(db()), 'garbage')).toBeUndefined();
  });
});
