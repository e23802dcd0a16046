import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate, createAccount, setPassword, type AuthenticateResult, type LoginEvent } from '../../src/accounts/store.ts';
import {
  accountThrottleKey,
  checkAndReserve,
  ipThrottleKey,
  lockStatus,
  loginThrottleKeys,
  pruneThrottles,
  recordFailure,
  unknownEmailThrottleKey,
  type LoginPolicy,
} from '../../src/accounts/throttle.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const PW = 'correct horse battery';
const small: LoginPolicy = { maxFailures: 3, lockSeconds: 1, maxLockSeconds: 3600, ipMaxFailures: 1000 };

let tdb: TestDatabase;
let handle: DbHandle;

beforeAll(async () => {
  tdb = await createTestDatabase();
  // enough connections for the parallel tests to really run in parallel
  handle = openDb({ url: tdb.url, poolSize: 20 });
});

afterAll(async () => {
  await handle?.close();
  await tdb?.drop();
});

const db = () => handle.prisma;

async function waitUntilUnlocked(key: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!(await lockStatus(db(), key)).locked) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${key} stayed locked`);
}

function tally(results: AuthenticateResult[]) {
  const t = { ok: 0, invalid: 0, locked: 0, disabled: 0 };
  for (const r of results) {
    if (r.ok) t.ok++;
    else t[r.reason]++;
  }
  return t;
}

describe('login throttling', () => {
  it('locks an account after maxFailures consecutive failures, refusing even the right password', async () => {
    const a = await createAccount(db(), { email: 'lock@example.com', password: PW });
    const events: LoginEvent[] = [];
    const opts = { policy: small, onEvent: (e: LoginEvent) => void events.push(e) };
    for (let i = 0; i < 3; i++) expect(await authenticate(db(), 'lock@example.com', 'wrong password', opts)).toEqual({ ok: false, reason: 'invalid' });
    const status = await lockStatus(db(), accountThrottleKey(a.id));
    expect(status).toMatchObject({ locked: true, lockCount: 1, failures: 0 });
    // the third failure reported the lockout it started
    expect(events[2]).toMatchObject({ type: 'login.failure', accountId: a.id, reason: 'invalid' });
    expect(events[2]!.lockouts).toEqual([expect.objectContaining({ key: accountThrottleKey(a.id), kind: 'account', lockCount: 1 })]);
    expect(events.slice(0, 2).every((e) => e.lockouts === undefined)).toBe(true);

    const refused = await authenticate(db(), 'lock@example.com', PW, opts);
    expect(refused).toMatchObject({ ok: false, reason: 'locked' });
    expect(events[3]).toMatchObject({ type: 'login.locked', accountId: a.id, reason: 'locked' });

    // once the lock expires the right password gets through
    await waitUntilUnlocked(accountThrottleKey(a.id));
    expect((await authenticate(db(), 'lock@example.com', PW, opts)).ok).toBe(true);
    expect(await lockStatus(db(), accountThrottleKey(a.id))).toMatchObject({ locked: false, failures: 0, lockCount: 0, lockedUntil: null });
  });

  it('doubles the lock on each further lock, up to maxLockSeconds', async () => {
    const policy: LoginPolicy = { maxFailures: 2, lockSeconds: 1, maxLockSeconds: 3, ipMaxFailures: 1000 };
    const a = await createAccount(db(), { email: 'double@example.com', password: PW });
    const key = accountThrottleKey(a.id);
    const lockFor = async () => {
      await waitUntilUnlocked(key);
      for (let i = 0; i < 2; i++) await authenticate(db(), 'double@example.com', 'wrong password', { policy });
      const s = await lockStatus(db(), key);
      expect(s.locked).toBe(true);
      // both instants come from the same database now() of the locking transaction
      return { seconds: (s.lockedUntil!.getTime() - s.updatedAt!.getTime()) / 1000, lockCount: s.lockCount };
    };
    expect(await lockFor()).toEqual({ seconds: 1, lockCount: 1 });
    expect(await lockFor()).toEqual({ seconds: 2, lockCount: 2 });
    expect(await lockFor()).toEqual({ seconds: 3, lockCount: 3 }); // 4 capped at 3
  });

  it('a success resets the account counter; failures must be consecutive', async () => {
    const a = await createAccount(db(), { email: 'reset@example.com', password: PW });
    const key = accountThrottleKey(a.id);
    for (let i = 0; i < 2; i++) await authenticate(db(), 'reset@example.com', 'wrong password', { policy: small });
    expect((await lockStatus(db(), key)).failures).toBe(2);
    expect((await authenticate(db(), 'reset@example.com', PW, { policy: small })).ok).toBe(true);
    expect((await lockStatus(db(), key)).failures).toBe(0);
    for (let i = 0; i < 2; i++) await authenticate(db(), 'reset@example.com', 'wrong password', { policy: small });
    expect((await lockStatus(db(), key)).locked).toBe(false);
    expect((await authenticate(db(), 'reset@example.com', PW, { policy: small })).ok).toBe(true);
  });

  it('throttles unknown emails like known ones', async () => {
    for (let i = 0; i < 3; i++) expect((await authenticate(db(), 'ghost@example.com', PW, { policy: small })).ok).toBe(false);
    expect(await authenticate(db(), 'Ghost@Example.com', PW, { policy: small })).toMatchObject({ ok: false, reason: 'locked' });
    expect((await lockStatus(db(), unknownEmailThrottleKey('ghost@example.com'))).locked).toBe(true);
  });

  it('locks an address after ipMaxFailures failures across different emails; a success does not reset it', async () => {
    const policy: LoginPolicy = { maxFailures: 100, lockSeconds: 60, maxLockSeconds: 3600, ipMaxFailures: 4 };
    await createAccount(db(), { email: 'victim@example.com', password: PW });
    const ip = '198.51.100.7';
    for (let i = 0; i < 3; i++) {
      expect(await authenticate(db(), `spray${i}@example.com`, 'guess123', { policy, ip })).toEqual({ ok: false, reason: 'invalid' });
    }
    // a success from that address neither resets its counter nor consumes a try
    expect((await authenticate(db(), 'victim@example.com', PW, { policy, ip })).ok).toBe(true);
    expect((await lockStatus(db(), ipThrottleKey(ip))).failures).toBe(3);
    expect(await authenticate(db(), 'spray9@example.com', 'guess123', { policy, ip })).toEqual({ ok: false, reason: 'invalid' });
    expect((await lockStatus(db(), ipThrottleKey(ip))).locked).toBe(true);
    // now even the right password from that address is refused, but not from another one
    expect(await authenticate(db(), 'victim@example.com', PW, { policy, ip })).toMatchObject({ ok: false, reason: 'locked' });
    expect((await authenticate(db(), 'victim@example.com', PW, { policy, ip: '198.51.100.8' })).ok).toBe(true);
    // the refused attempt did not count against the account
    const acct = await db().account.findUniqueOrThrow({ where: { email: 'victim@example.com' } });
    expect((await lockStatus(db(), accountThrottleKey(acct.id))).failures).toBe(0);
  });

  it('30 parallel wrong passwords against maxFailures 5 run at most 5 password checks', async () => {
    const policy: LoginPolicy = { maxFailures: 5, lockSeconds: 60, maxLockSeconds: 3600, ipMaxFailures: 1000 };
    const a = await createAccount(db(), { email: 'race@example.com', password: PW });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => authenticate(db(), 'race@example.com', `wrong password ${i}`, { policy, ip: `203.0.113.${i}` })),
    );
    const t = tally(results);
    // 'invalid' = an argon2 verification ran; 'locked' = refused before it
    expect(t.invalid).toBeLessThanOrEqual(5);
    expect(t.invalid).toBeGreaterThan(0);
    expect(t.invalid + t.locked).toBe(30);
    expect(await lockStatus(db(), accountThrottleKey(a.id))).toMatchObject({ locked: true, lockCount: 1 });
    expect(await authenticate(db(), 'race@example.com', PW, { policy })).toMatchObject({ ok: false, reason: 'locked' });
  });

  it('also when the keys already exist (a user who signed in before): at most maxFailures password checks', async () => {
    // Existing rows take the one-statement path of checkAndReserve; new keys the transactional one.
    const policy: LoginPolicy = { maxFailures: 5, lockSeconds: 60, maxLockSeconds: 3600, ipMaxFailures: 1000 };
    const a = await createAccount(db(), { email: 'returning@example.com', password: PW });
    const ips = Array.from({ length: 30 }, (_, i) => `198.51.100.${100 + i}`);
    expect((await authenticate(db(), 'returning@example.com', PW, { policy, ip: ips[0] })).ok).toBe(true);
    for (const ip of ips.slice(1)) expect((await authenticate(db(), 'nobody-returning@example.com', 'x-wrong-pw', { policy, ip })).ok).toBe(false);
    const results = await Promise.all(ips.map((ip, i) => authenticate(db(), 'returning@example.com', `wrong password ${i}`, { policy, ip })));
    const t = tally(results);
    expect(t.invalid).toBeLessThanOrEqual(5);
    expect(t.invalid).toBeGreaterThan(0);
    expect(t.invalid + t.locked).toBe(30);
    expect(await lockStatus(db(), accountThrottleKey(a.id))).toMatchObject({ locked: true, lockCount: 1 });
  });

  it('a locked address refuses an attempt without counting it on the account key', async () => {
    const policy: LoginPolicy = { maxFailures: 5, lockSeconds: 60, maxLockSeconds: 3600, ipMaxFailures: 2 };
    const a = await createAccount(db(), { email: 'bystander@example.com', password: PW });
    const ip = '192.0.2.77';
    expect((await authenticate(db(), 'bystander@example.com', PW, { policy, ip })).ok).toBe(true);
    for (let i = 0; i < 2; i++) await authenticate(db(), `guess${i}@example.com`, 'x-wrong-pw', { policy, ip });
    expect((await lockStatus(db(), ipThrottleKey(ip))).locked).toBe(true);
    expect(await authenticate(db(), 'bystander@example.com', PW, { policy, ip })).toMatchObject({ ok: false, reason: 'locked' });
    expect((await lockStatus(db(), accountThrottleKey(a.id))).failures).toBe(0);
  });

  it('the same holds for parallel guesses from one address across many emails, with the right password mixed in', async () => {
    const policy: LoginPolicy = { maxFailures: 100, lockSeconds: 60, maxLockSeconds: 3600, ipMaxFailures: 5 };
    await createAccount(db(), { email: 'mixed@example.com', password: PW });
    const ip = '2001:db8:aa:bb::1';
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 10 === 0
          ? authenticate(db(), 'mixed@example.com', PW, { policy, ip })
          : authenticate(db(), `many${i}@example.com`, 'guess123', { policy, ip: `2001:db8:aa:bb::${i.toString(16)}` }),
      ),
    );
    const t = tally(results);
    expect(t.invalid).toBeLessThanOrEqual(5);
    expect(t.invalid + t.locked + t.ok).toBe(30);
    expect(t.ok).toBeLessThanOrEqual(3);
  });

  it('a reservation whose attempt never reported back locks the key after a while', async () => {
    const key = 'account:stale-test';
    const keys = [{ key, kind: 'account' as const, max: 2 }];
    expect((await checkAndReserve(db(), keys, small)).ok).toBe(true);
    expect((await checkAndReserve(db(), keys, small)).ok).toBe(true);
    // both tries are in flight: a third is refused, without locking yet
    expect(await checkAndReserve(db(), keys, small)).toMatchObject({ ok: false, retryAfterSeconds: 1 });
    expect((await lockStatus(db(), key)).locked).toBe(false);
    // the process that held them died: after a minute of silence the key locks
    await db().$executeRaw`UPDATE login_throttles SET updated_at = now() - interval '2 minutes' WHERE key = ${key}`;
    expect((await checkAndReserve(db(), keys, small)).ok).toBe(false);
    expect(await lockStatus(db(), key)).toMatchObject({ locked: true, lockCount: 1, failures: 0 });
  });

  it('recordFailure locks only when the count reached the maximum', async () => {
    const keys = loginThrottleKeys(small, { normalizedEmail: 'rf@example.com', ip: '192.0.2.55' });
    expect(keys.map((k) => k.key)).toEqual(['account-email:rf@example.com', 'ip:192.0.2.55']);
    const r = await checkAndReserve(db(), keys, small);
    if (!r.ok) throw new Error('expected a reservation');
    expect(await recordFailure(db(), r.reservation, small)).toEqual([]);
  });

  it('forgets quiet keys and prunes them', async () => {
    for (let i = 0; i < 2; i++) await authenticate(db(), 'quiet@example.com', PW, { policy: small });
    const key = unknownEmailThrottleKey('quiet@example.com');
    expect((await lockStatus(db(), key)).failures).toBe(2);
    await db().$executeRaw`UPDATE login_throttles SET updated_at = now() - interval '2 days' WHERE key = ${key}`;
    // two more failures do not lock: the old ones were forgotten
    for (let i = 0; i < 2; i++) await authenticate(db(), 'quiet@example.com', PW, { policy: small });
    expect(await lockStatus(db(), key)).toMatchObject({ failures: 2, locked: false });
    await db().$executeRaw`UPDATE login_throttles SET updated_at = now() - interval '2 days' WHERE key = ${key}`;
    expect(await pruneThrottles(db(), 500, small)).toBeGreaterThanOrEqual(1);
    expect(await lockStatus(db(), key)).toMatchObject({ failures: 0, updatedAt: null });
  });

  it('setPassword lifts the account lock', async () => {
    const a = await createAccount(db(), { email: 'unlock@example.com', password: PW });
    for (let i = 0; i < 3; i++) await authenticate(db(), 'unlock@example.com', 'wrong password', { policy: small });
    expect((await lockStatus(db(), accountThrottleKey(a.id))).locked).toBe(true);
    await setPassword(db(), a.id, 'another good password');
    expect((await authenticate(db(), 'unlock@example.com', 'another good password', { policy: small })).ok).toBe(true);
  });

  it('keys IPv6 addresses by /64 and IPv4-mapped addresses as IPv4', () => {
    expect(ipThrottleKey('192.0.2.1')).toBe('ip:192.0.2.1');
    expect(ipThrottleKey('::ffff:192.0.2.1')).toBe('ip:192.0.2.1');
    expect(ipThrottleKey('2001:db8:aa:bb::1')).toBe('ip:2001:db8:aa:bb::/64');
    expect(ipThrottleKey('2001:DB8:AA:BB:1:2:3:4')).toBe('ip:2001:db8:aa:bb::/64');
    expect(ipThrottleKey('[2001:db8::1%eth0]')).toBe('ip:2001:db8:0:0::/64');
    expect(ipThrottleKey('::1')).toBe('ip:0:0:0:0::/64');
    expect(ipThrottleKey('unknown')).toBe('ip:unknown');
  });
});
