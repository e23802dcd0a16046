import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cleanupSteps } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import { runCleanup as runSteps, startCleanupJob as startJob, type CleanupJobOptions, type CleanupOptions, type CleanupResult } from '../../src/db/cleanup.ts';
import { openDb, type Db } from '../../src/db/client.ts';
import { twoInstances, whileInstance2Locks } from '../helpers/instances.ts';
import { testEnv } from '../helpers/env.ts';
import { seedOidcRows } from '../oidc/seed.ts';

// The runner with the steps the app composes (src/app.ts): each domain's own
// batched delete (oidc payloads and revocations, login throttles, signing
// keys, audit events past their retention).
// The steps one by one are tested beside their domain.
type Table = ReturnType<typeof cleanupSteps>[number]['name'];
type Counts = CleanupResult<Table>;
let steps: ReturnType<typeof cleanupSteps>;
const runCleanup = (on: Db, opts?: CleanupOptions) => runSteps(on, steps, opts);
const startCleanupJob = (on: Db, opts: CleanupJobOptions<Table>) => startJob(on, steps, opts);

const instances = twoInstances();
let db: Db;

const EMPTY: Counts = { oidcPayloads: 0, revokedTokens: 0, loginThrottles: 0, signingKeys: 0, webauthnChallenges: 0, sessionActivity: 0, auditEvents: 0, actionTokens: 0 };

/** Seeds every table; returns how many rows of each cleanup must remove. */
async function seed(expiredPerTable: number): Promise<Counts> {
  const n = expiredPerTable;
  // oidc_payloads and revoked_tokens: expired rows (several models), live ones, and one without expiry
  await seedOidcRows(db, n, 3);

  // login_throttles: stale and unlocked (null or past lock) go; recent ones and
  // stale-but-still-locked ones stay
  await db.$executeRaw`
    INSERT INTO login_throttles (key, failures, locked_until, updated_at)
    SELECT 'ip:stale-' || i, 3, CASE WHEN i % 2 = 0 THEN now() - interval '2 days' END, now() - interval '25 hours'
    FROM generate_series(1, ${n}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO login_throttles (key, failures, updated_at) VALUES
      ('ip:recent', 3, now() - interval '1 hour'),
      ('account:recent', 1, now())`;
  await db.$executeRaw`
    INSERT INTO login_throttles (key, failures, locked_until, updated_at)
    VALUES ('account:locked', 10, now() + interval '1 hour', now() - interval '25 hours')`;

  // signing_keys: retired and past publish_until go; the active key, a retired
  // key still published, and an unretired key with a past publish_until stay
  await db.$executeRaw`
    INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_encrypted, activates_at, retired_at, publish_until)
    SELECT 'old-' || i, 'RS256', '{}'::jsonb, 'x', now() - interval '30 days', now() - interval '20 days', now() - interval '10 days'
    FROM generate_series(1, ${n}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_encrypted, activates_at, retired_at, publish_until) VALUES
      ('active', 'RS256', '{}'::jsonb, 'x', now() - interval '1 day', NULL, NULL),
      ('retiring', 'RS256', '{}'::jsonb, 'x', now() - interval '2 days', now() - interval '1 day', now() + interval '1 hour'),
      ('odd', 'RS256', '{}'::jsonb, 'x', now() - interval '2 days', NULL, now() - interval '1 hour')`;

  // webauthn_challenges: expired ones go, a live one stays
  await db.$executeRaw`
    INSERT INTO webauthn_challenges (digest, purpose, binding, expires_at)
    SELECT 'old-' || i, 'login', 'uid', now() - interval '1 minute' FROM generate_series(1, ${n}::int) AS i`;
  await db.$executeRaw`INSERT INTO webauthn_challenges (digest, purpose, binding, expires_at) VALUES ('live', 'login', 'uid', now() + interval '5 minutes')`;

  // session_activity: a day past its last use and its session gone; a recent one and one whose session lives stay
  await db.$executeRaw`
    INSERT INTO session_activity (session_uid, account_id, last_seen_at)
    SELECT 'gone-' || i, 'a', now() - interval '2 days' FROM generate_series(1, ${n}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO session_activity (session_uid, account_id, last_seen_at) VALUES ('recent', 'a', now()), ('live-session', 'a', now() - interval '2 days')`;
  await db.$executeRaw`INSERT INTO oidc_payloads (model, id, payload, uid) VALUES ('Session', 'sess-live', '{}'::jsonb, 'live-session')`;

  // audit_events: older than AUDIT_RETENTION_DAYS (90) go; a recent one and one a day short stay
  await db.$executeRaw`
    INSERT INTO audit_events (occurred_at, action, actor_type)
    SELECT now() - interval '91 days' - interval '1 minute' * i, 'old-' || i, 'system' FROM generate_series(1, ${n}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO audit_events (occurred_at, action, actor_type) VALUES
      (now(), 'recent', 'system'),
      (now() - interval '89 days', 'within-retention', 'system')`;

  // action_tokens: links expired more than a day ago go (used or not); a recently expired and a live one stay
  await db.$executeRaw`
    INSERT INTO action_tokens (id, purpose, email, digest, expires_at, consumed_at)
    SELECT gen_random_uuid(), 'reset', 'old-' || i || '@example.com', 'old-' || i, now() - interval '25 hours',
           CASE WHEN i % 2 = 0 THEN now() - interval '26 hours' END
    FROM generate_series(1, ${n}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO action_tokens (id, purpose, email, digest, expires_at) VALUES
      (gen_random_uuid(), 'reset', 'recent@example.com', 'recent', now() - interval '1 hour'),
      (gen_random_uuid(), 'invite', 'live@example.com', 'live', now() + interval '1 hour')`;

  return { oidcPayloads: n, revokedTokens: n, loginThrottles: n, signingKeys: n, webauthnChallenges: n, sessionActivity: n, auditEvents: n, actionTokens: n };
}

async function remaining(): Promise<Record<string, string[]>> {
  const rows = await db.$queryRaw<{ t: string; k: string }[]>`
    SELECT 'oidc' AS t, model || '/' || id AS k FROM oidc_payloads
    UNION ALL SELECT 'revoked', jti FROM revoked_tokens
    UNION ALL SELECT 'throttle', key FROM login_throttles
    UNION ALL SELECT 'key', kid FROM signing_keys
    UNION ALL SELECT 'challenge', digest FROM webauthn_challenges
    UNION ALL SELECT 'activity', session_uid FROM session_activity
    UNION ALL SELECT 'audit', action FROM audit_events
    UNION ALL SELECT 'link', email FROM action_tokens
    ORDER BY 1, 2`;
  const out: Record<string, string[]> = { oidc: [], revoked: [], throttle: [], key: [], challenge: [], activity: [], audit: [], link: [] };
  for (const r of rows) out[r.t]!.push(r.k);
  return out;
}

const SURVIVORS = {
  oidc: ['AccessToken/live-1', 'AccessToken/live-2', 'AccessToken/live-3', 'Grant/forever', 'Session/sess-live'],
  revoked: ['live-1', 'live-2', 'live-3'],
  throttle: ['account:locked', 'account:recent', 'ip:recent'],
  key: ['active', 'odd', 'retiring'],
  challenge: ['live'],
  activity: ['live-session', 'recent'],
  audit: ['recent', 'within-retention'],
  link: ['live@example.com', 'recent@example.com'],
};

beforeAll(() => {
  steps = cleanupSteps(loadConfig(testEnv(instances.url)));
  db = instances.db;
});

beforeEach(async () => {
  await db.$executeRaw`TRUNCATE oidc_payloads, revoked_tokens, login_throttles, signing_keys, webauthn_challenges, session_activity, audit_events, action_tokens`;
});

describe('runCleanup', () => {
  it('removes exactly the expired rows of each table, in batches', async () => {
    const expected = await seed(7);
    // 7 rows with batches of 2: 2+2+2+1, the short batch ends the table
    expect(await runCleanup(db, { batchSize: 2 })).toEqual(expected);
    expect(await remaining()).toEqual(SURVIVORS);
    expect(await runCleanup(db, { batchSize: 2 })).toEqual(EMPTY);
  });

  it('stops a table after maxBatches; the next run continues', async () => {
    await seed(7);
    expect(await runCleanup(db, { batchSize: 2, maxBatches: 2 })).toEqual({
      oidcPayloads: 4,
      revokedTokens: 4,
      loginThrottles: 4,
      signingKeys: 4,
      webauthnChallenges: 4,
      sessionActivity: 4,
      auditEvents: 4,
      actionTokens: 4,
    });
    expect(await runCleanup(db, { batchSize: 2, maxBatches: 2 })).toEqual({
      oidcPayloads: 3,
      revokedTokens: 3,
      loginThrottles: 3,
      signingKeys: 3,
      webauthnChallenges: 3,
      sessionActivity: 3,
      auditEvents: 3,
      actionTokens: 3,
    });
    expect(await remaining()).toEqual(SURVIVORS);
  });

  it('ends when a batch is exactly full and the next one is empty', async () => {
    const expected = await seed(4);
    expect(await runCleanup(db, { batchSize: 2 })).toEqual(expected);
    expect(await remaining()).toEqual(SURVIVORS);
  });

  it('lets two instances run at once: each row is deleted once between them', async () => {
    const expected = await seed(300);
    const [a, b] = await Promise.all([
      runCleanup(instances.h1.prisma, { batchSize: 2, maxBatches: 1000 }),
      runCleanup(instances.h2.prisma, { batchSize: 2, maxBatches: 1000 }),
    ]);
    const sum = (k: keyof Counts) => a[k] + b[k];
    expect({
      oidcPayloads: sum('oidcPayloads'),
      revokedTokens: sum('revokedTokens'),
      loginThrottles: sum('loginThrottles'),
      signingKeys: sum('signingKeys'),
      webauthnChallenges: sum('webauthnChallenges'),
      sessionActivity: sum('sessionActivity'),
      auditEvents: sum('auditEvents'),
      actionTokens: sum('actionTokens'),
    }).toEqual(expected);
    expect(await remaining()).toEqual(SURVIVORS);
  });

  it('does not wait on rows another transaction holds locked', async () => {
    await seed(5);
    const locks = [`SELECT 1 FROM oidc_payloads WHERE id = 'expired-1' FOR UPDATE`, `SELECT 1 FROM revoked_tokens WHERE jti = 'expired-1' FOR UPDATE`];
    await whileInstance2Locks(instances, locks, async () => {
      // would block until the statement timeout without SKIP LOCKED
      const r = await runCleanup(db, { batchSize: 2 });
      expect(r.oidcPayloads).toBe(4);
      expect(r.revokedTokens).toBe(4);
    });
    expect((await runCleanup(db, { batchSize: 2 })).oidcPayloads).toBe(1);
  });

  it('refuses a batchSize that is not a positive integer', async () => {
    await expect(runCleanup(db, { batchSize: 0 })).rejects.toThrow(RangeError);
    await expect(runCleanup(db, { maxBatches: 1.5 })).rejects.toThrow(RangeError);
  });

  it('reports each step under its name, in the order given', async () => {
    await seed(1);
    const r = await runCleanup(db);
    // the keys label the metric and the log line: they must not change
    expect(Object.keys(r)).toEqual(['oidcPayloads', 'revokedTokens', 'loginThrottles', 'signingKeys', 'webauthnChallenges', 'sessionActivity', 'auditEvents', 'actionTokens']);
    const reversed = await runSteps(db, [...steps].reverse());
    expect(Object.keys(reversed)).toEqual(['actionTokens', 'auditEvents', 'sessionActivity', 'webauthnChallenges', 'signingKeys', 'loginThrottles', 'revokedTokens', 'oidcPayloads']);
  });

  it('refuses two steps of the same name', async () => {
    const twice = [steps[0], steps[0]];
    await expect(runSteps(db, twice)).rejects.toThrow(/listed twice/);
    expect(() => startJob(db, twice, { intervalSeconds: 60 })).toThrow(RangeError);
  });
});

describe('startCleanupJob', () => {
  it('runs repeatedly, logs what it removed, and stop() stops it', async () => {
    const expected = await seed(3);
    const results: Counts[] = [];
    const logged: unknown[] = [];
    let resolveTwo!: () => void;
    const twoRuns = new Promise<void>((r) => (resolveTwo = r));
    const job = startCleanupJob(db, {
      intervalSeconds: 0.05,
      batchSize: 2,
      logger: { info: (obj) => logged.push(obj) },
      onResult: (r) => {
        results.push(r);
        if (results.length === 2) resolveTwo();
      },
    });
    await twoRuns;
    await job.stop();
    const runs = results.length;
    expect(results[0]).toEqual(expected);
    expect(results[1]).toEqual(EMPTY);
    // only the run that removed something is logged
    expect(logged).toEqual([{ removed: expected }]);

    await new Promise((r) => setTimeout(r, 200));
    expect(results.length).toBe(runs);
    await job.stop(); // idempotent
  });

  it('logs a failed run and keeps going', async () => {
    const broken = openDb({ url: instances.url.replace(/\/[^/]*$/, '/gh_no_such_database'), connectTimeoutMs: 2_000 });
    const errors: unknown[] = [];
    let resolveTwo!: () => void;
    const twoErrors = new Promise<void>((r) => (resolveTwo = r));
    const job = startCleanupJob(broken.prisma, {
      intervalSeconds: 0.05,
      logger: {
        info: () => {},
        error: (obj, msg) => {
          errors.push({ obj, msg });
          if (errors.length === 2) resolveTwo();
        },
      },
    });
    await twoErrors;
    await job.stop();
    await broken.close();
    expect(errors[0]).toMatchObject({ msg: 'expired-row cleanup failed', obj: { err: expect.any(Error) } });
  });

  it('stop() waits for a run in progress', async () => {
    await seed(50);
    let finished = 0;
    const job = startCleanupJob(db, { intervalSeconds: 0.01, batchSize: 1, onResult: () => finished++ });
    // let the first run start, then stop while it is (most likely) in flight
    await new Promise((r) => setTimeout(r, 30));
    await job.stop();
    const after = finished;
    await new Promise((r) => setTimeout(r, 100));
    expect(finished).toBe(after);
  });

  it('refuses a non-positive interval', () => {
    expect(() => startCleanupJob(db, { intervalSeconds: 0 })).toThrow(RangeError);
  });
});
