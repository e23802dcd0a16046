// pruneRetiredKeys: the keys domain's cleanup step (one batch). The job that
// runs it with the other domains' steps: test/db/cleanup.test.ts.
import { randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/client.ts';
import { ensureSigningKeys, listSigningKeys, loadKeyring, pruneRetiredKeys, rotateSigningKey } from '../../src/keys/index.ts';
import { drainFromBoth, twoInstances, whileInstance2Locks } from '../helpers/instances.ts';

const kek = randomBytes(32);

const instances = twoInstances();
let db: Db;
beforeAll(() => {
  db = instances.db;
});

beforeEach(async () => {
  await db.$executeRaw`TRUNCATE signing_keys`;
});

const kids = async () => (await db.signingKey.findMany({ select: { kid: true }, orderBy: { kid: 'asc' } })).map((r) => r.kid);

async function seedUnpublished(n: number): Promise<void> {
  await db.$executeRaw`
    INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_encrypted, activates_at, retired_at, publish_until)
    SELECT 'old-' || i, 'RS256', '{}'::jsonb, 'x', now() - interval '30 days', now() - interval '20 days', now() - interval '10 days'
    FROM generate_series(1, ${n}::int) AS i`;
}

describe('pruneRetiredKeys', () => {
  it('deletes at most batchSize retired, unpublished keys per call; never the signing key', async () => {
    await seedUnpublished(3);
    await db.$executeRaw`
      INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_encrypted, activates_at, retired_at, publish_until) VALUES
        ('active', 'RS256', '{}'::jsonb, 'x', now() - interval '1 day', NULL, NULL),
        ('retiring', 'RS256', '{}'::jsonb, 'x', now() - interval '2 days', now() - interval '1 day', now() + interval '1 hour'),
        ('odd', 'RS256', '{}'::jsonb, 'x', now() - interval '2 days', NULL, now() - interval '1 hour')`;
    expect(await pruneRetiredKeys(db, 2)).toBe(2);
    expect(await pruneRetiredKeys(db, 2)).toBe(1);
    expect(await pruneRetiredKeys(db, 2)).toBe(0);
    // 'odd' has a publish_until in the past but was never retired: it may be
    // the key that signs, so it stays
    expect(await kids()).toEqual(['active', 'odd', 'retiring']);
  });

  it('after a rotation: removes the old key once unpublished; the keyring keeps signing', async () => {
    await ensureSigningKeys(db, kek, { algs: ['ES256'] });
    await db.$executeRaw`UPDATE signing_keys SET activates_at = now() - interval '1 day'`;
    const [before] = await listSigningKeys(db);
    // rotated a minute ago with no token lifetime to wait for: unpublished since
    const rotated = await rotateSigningKey(db, kek, { alg: 'ES256', leadSeconds: 0, maxTokenTtlSeconds: 0, now: new Date(Date.now() - 60_000) });
    expect(await pruneRetiredKeys(db, 10)).toBe(1);
    expect(await kids()).toEqual([rotated.kid]);
    expect(before!.kid).not.toBe(rotated.kid);
    const ring = await loadKeyring(db, kek);
    expect(ring.jwks.keys.map((k) => k.kid)).toEqual([rotated.kid]);
    expect(await pruneRetiredKeys(db, 10)).toBe(0);
  });

  it('skips a key another transaction holds locked; two instances at once delete disjoint rows', async () => {
    await seedUnpublished(60);
    await whileInstance2Locks(instances, [`SELECT 1 FROM signing_keys WHERE kid = 'old-1' FOR UPDATE`], async () => {
      expect(await pruneRetiredKeys(db, 100)).toBe(59);
    });
    expect(await kids()).toEqual(['old-1']);

    await db.$executeRaw`TRUNCATE signing_keys`;
    await seedUnpublished(200);
    const [a, b] = await drainFromBoth(instances, pruneRetiredKeys);
    expect(a + b).toBe(200);
    expect(await kids()).toEqual([]);
  });
});
