// Single-use links (src/accounts/links.ts): digests only, one use under
// concurrency from two instances, expiry, and the cleanup step.
import { beforeEach, describe, expect, it } from 'vitest';
import { consumeLink, issueLink, linkDigest, peekLink, pruneLinks, requestLinkByEmail, revokeLinks } from '../../src/accounts/links.ts';
import { createAccount } from '../../src/accounts/store.ts';
import type { Db } from '../../src/db/client.ts';
import { drainFromBoth, twoInstances } from '../helpers/instances.ts';

const instances = twoInstances();
let db: Db;
beforeEach(async () => {
  db = instances.db;
  await db.$executeRaw`TRUNCATE action_tokens`;
});

describe('single-use links', () => {
  it('stores only the sha-256 digest of the secret', async () => {
    const { secret } = await issueLink(db, { purpose: 'reset', accountId: null, email: 'a@example.com' });
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await db.$queryRaw<{ digest: string; data: unknown }[]>`SELECT digest, data FROM action_tokens`;
    expect(rows).toEqual([{ digest: linkDigest(secret), data: null }]);
    expect(JSON.stringify(await db.$queryRaw`SELECT * FROM action_tokens`)).not.toContain(secret);
  });

  it('of 10 concurrent uses from two instances, exactly one succeeds; later ones say "used"', async () => {
    const { secret } = await issueLink(db, { purpose: 'invite', accountId: null, email: 'b@example.com', data: { roles: ['x'] } });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => consumeLink((i % 2 ? instances.h2 : instances.h1).prisma, 'invite', secret)),
    );
    const won = results.filter((r) => r.ok);
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ ok: true, link: { purpose: 'invite', email: 'b@example.com', data: { roles: ['x'] } } });
    expect(results.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.reason))).toEqual(Array(9).fill('used'));
    expect(await peekLink(db, 'invite', secret)).toEqual({ ok: false, reason: 'used' });
  });

  it('a use inside a transaction that fails is not spent', async () => {
    const { secret } = await issueLink(db, { purpose: 'reset', accountId: null, email: 'c@example.com' });
    await expect(
      db.$transaction(async (tx) => {
        expect((await consumeLink(tx, 'reset', secret)).ok).toBe(true);
        throw new Error('the password was refused');
      }),
    ).rejects.toThrow('refused');
    expect((await consumeLink(db, 'reset', secret)).ok).toBe(true);
  });

  it('an expired link is refused as expired; a link of another purpose or a made-up one as unknown', async () => {
    const { secret } = await issueLink(db, { purpose: 'reset', accountId: null, email: 'd@example.com', lifetimeSeconds: 1 });
    await db.$executeRaw`UPDATE action_tokens SET expires_at = now() - interval '1 second'`;
    expect(await peekLink(db, 'reset', secret)).toEqual({ ok: false, reason: 'expired' });
    expect(await consumeLink(db, 'reset', secret)).toEqual({ ok: false, reason: 'expired' });
    expect(await consumeLink(db, 'invite', secret)).toEqual({ ok: false, reason: 'unknown' });
    expect(await consumeLink(db, 'reset', 'A'.repeat(43))).toEqual({ ok: false, reason: 'unknown' });
    expect(await consumeLink(db, 'reset', "' OR 1=1 --")).toEqual({ ok: false, reason: 'unknown' });
  });

  it('revokeLinks spends every open link of a person', async () => {
    const a = await createAccount(db, { email: 'e@example.com' });
    const one = await issueLink(db, { purpose: 'reset', accountId: a.id, email: a.email });
    const two = await issueLink(db, { purpose: 'reset', accountId: a.id, email: a.email });
    expect(await revokeLinks(db, a.id, ['reset'])).toBe(2);
    expect((await consumeLink(db, 'reset', one.secret)).ok).toBe(false);
    expect((await consumeLink(db, 'reset', two.secret)).ok).toBe(false);
  });

  it('requestLinkByEmail writes a row for known and unknown addresses alike, and stops at the limits', async () => {
    const a = await createAccount(db, { email: 'f@example.com' });
    const limits = { perAddress: 3, perAccount: 3, windowSeconds: 600 };
    const known = await requestLinkByEmail(db, 'reset', 'f@example.com', linkDigest('k1'), limits);
    expect(known).toMatchObject({ accountId: a.id, issued: true });
    const unknown = await requestLinkByEmail(db, 'reset', 'nobody@example.com', linkDigest('u1'), limits);
    expect(unknown).toMatchObject({ accountId: null, issued: true });
    await requestLinkByEmail(db, 'reset', 'f@example.com', linkDigest('k2'), limits);
    await requestLinkByEmail(db, 'reset', 'f@example.com', linkDigest('k3'), limits);
    expect(await requestLinkByEmail(db, 'reset', 'f@example.com', linkDigest('k4'), limits)).toMatchObject({ accountId: null, issued: false });
    // per account: the address changed, the account's count stays
    await db.account.update({ where: { id: a.id }, data: { email: 'g@example.com' } });
    expect(await requestLinkByEmail(db, 'reset', 'g@example.com', linkDigest('k5'), limits)).toMatchObject({ issued: false });
    expect(await db.actionToken.count()).toBe(4);
  });

  it('pruneLinks deletes links a day past their expiry, from two instances without overlap', async () => {
    await db.$executeRaw`
      INSERT INTO action_tokens (id, purpose, email, digest, expires_at)
      SELECT gen_random_uuid(), 'reset', 'x' || i || '@example.com', 'd' || i, now() - interval '25 hours' FROM generate_series(1, 50) AS i`;
    const live = await issueLink(db, { purpose: 'reset', accountId: null, email: 'live@example.com' });
    const [a, b] = await drainFromBoth(instances, pruneLinks);
    expect(a + b).toBe(50);
    expect((await peekLink(db, 'reset', live.secret)).ok).toBe(true);
  });
});
