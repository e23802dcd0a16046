// pruneThrottles: the accounts domain's cleanup step (one batch). It deletes
// exactly the login_throttles rows the forget window would start afresh
// anyway. The job that runs it with the other domains' steps:
// test/db/cleanup.test.ts.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lockStatus, pruneThrottles, type LoginPolicy } from '../../src/accounts/throttle.ts';
import type { Db } from '../../src/db/client.ts';
import { drainFromBoth, twoInstances, whileInstance2Locks } from '../helpers/instances.ts';

const policy: LoginPolicy = { maxFailures: 3, lockSeconds: 60, maxLockSeconds: 7 * 86_400, ipMaxFailures: 100 };

const instances = twoInstances();
let db: Db;
beforeAll(() => {
  db = instances.db;
});

beforeEach(async () => {
  await db.$executeRaw`TRUNCATE login_throttles`;
});

const keys = async () => (await db.loginThrottle.findMany({ select: { key: true }, orderBy: { key: 'asc' } })).map((r) => r.key);

/** `n` rows quiet for 25 hours: half never locked, half with a lock that ended 2 days ago. */
async function seedStale(n: number, prefix = 'ip:stale-'): Promise<void> {
  await db.$executeRaw`
    INSERT INTO login_throttles (key, failures, lock_count, locked_until, updated_at)
    SELECT ${prefix} || i, 2, CASE WHEN i % 2 = 0 THEN 1 ELSE 0 END,
           CASE WHEN i % 2 = 0 THEN now() - interval '2 days' END, now() - interval '25 hours'
    FROM generate_series(1, ${n}::int) AS i`;
}

describe('pruneThrottles', () => {
  it('deletes at most batchSize quiet, unlocked rows per call and keeps every other', async () => {
    await seedStale(5);
    await db.$executeRaw`
      INSERT INTO login_throttles (key, failures, lock_count, locked_until, updated_at) VALUES
        ('ip:recent', 3, 0, NULL, now() - interval '1 hour'),
        ('account:recent', 1, 0, NULL, now()),
        ('account:locked', 0, 4, now() + interval '1 hour', now() - interval '3 days'),
        ('account:lock-ended-lately', 0, 3, now() - interval '1 hour', now() - interval '25 hours'),
        ('totp-step:someone', 12345, 0, NULL, now() - interval '25 hours')`;
    expect(await pruneThrottles(db, 2, policy)).toBe(2);
    expect(await pruneThrottles(db, 2, policy)).toBe(2);
    expect(await pruneThrottles(db, 2, policy)).toBe(2);
    expect(await pruneThrottles(db, 2, policy)).toBe(0);
    expect(await keys()).toEqual(['account:lock-ended-lately', 'account:locked', 'account:recent', 'ip:recent']);
  });

  it('keeps a key whose lock ended within the forget window, so the next lock still escalates', async () => {
    // Locked 25 hours ago for 24 hours (a long LOGIN_MAX_LOCK_SECONDS): the
    // lock ended an hour ago. forget() resets lockCount only a quiet day after
    // the lock ended; deleting the row now would reset it early.
    await db.$executeRaw`
      INSERT INTO login_throttles (key, failures, lock_count, locked_until, updated_at)
      VALUES ('account:escalated', 0, 5, now() - interval '1 hour', now() - interval '25 hours')`;
    expect(await pruneThrottles(db, 10, policy)).toBe(0);
    expect(await lockStatus(db, 'account:escalated')).toMatchObject({ lockCount: 5, locked: false });
    // a quiet day after the lock ended it goes
    await db.$executeRaw`UPDATE login_throttles SET locked_until = now() - interval '25 hours' WHERE key = 'account:escalated'`;
    expect(await pruneThrottles(db, 10, policy)).toBe(1);
  });

  it('follows the policy’s forget window (default one day)', async () => {
    await db.$executeRaw`
      INSERT INTO login_throttles (key, failures, updated_at) VALUES
        ('ip:two-minutes', 1, now() - interval '2 minutes'),
        ('ip:twenty-hours', 1, now() - interval '20 hours')`;
    expect(await pruneThrottles(db, 10)).toBe(0);
    expect(await pruneThrottles(db, 10, { ...policy, forgetAfterSeconds: 60 })).toBe(2);
  });

  it('skips a row a login attempt holds locked, without waiting for it', async () => {
    await seedStale(3);
    await whileInstance2Locks(instances, [`SELECT 1 FROM login_throttles WHERE key = 'ip:stale-1' FOR UPDATE`], async () => {
      expect(await pruneThrottles(db, 10, policy)).toBe(2);
    });
    expect(await keys()).toEqual(['ip:stale-1']);
    expect(await pruneThrottles(db, 10, policy)).toBe(1);
  });

  it('two instances at once delete disjoint rows', async () => {
    await seedStale(200);
    const [a, b] = await drainFromBoth(instances, (on, n) => pruneThrottles(on, n, policy));
    expect(a + b).toBe(200);
    expect(await keys()).toEqual([]);
  });
});
