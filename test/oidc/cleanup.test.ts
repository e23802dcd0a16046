// The oidc domain's cleanup steps, one batch each. The runner and the job
// that compose them with the other domains' steps: test/db/cleanup.test.ts.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/client.ts';
import { pruneExpiredPayloads, pruneExpiredRevocations } from '../../src/oidc/cleanup.ts';
import { drainFromBoth, twoInstances, whileInstance2Locks } from '../helpers/instances.ts';
import { seedOidcRows } from './seed.ts';

const instances = twoInstances();
let db: Db;
beforeAll(() => {
  db = instances.db;
});

beforeEach(async () => {
  await db.$executeRaw`TRUNCATE oidc_payloads, revoked_tokens`;
});

const seed = (n: number) => seedOidcRows(db, n, 2);

const payloadIds = async () => (await db.oidcPayload.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);
const revokedJtis = async () => (await db.revokedToken.findMany({ select: { jti: true }, orderBy: { jti: 'asc' } })).map((r) => r.jti);

const STEPS = [
  { name: 'pruneExpiredPayloads', batch: pruneExpiredPayloads, ids: payloadIds, survivors: ['forever', 'live-1', 'live-2'] },
  { name: 'pruneExpiredRevocations', batch: pruneExpiredRevocations, ids: revokedJtis, survivors: ['live-1', 'live-2'] },
] as const;

describe.each(STEPS)('$name', ({ batch, ids, survivors }) => {
  it('deletes at most batchSize expired rows per call, never a live one', async () => {
    await seed(5);
    expect(await batch(db, 2)).toBe(2);
    expect(await batch(db, 2)).toBe(2);
    expect(await batch(db, 2)).toBe(1);
    expect(await batch(db, 2)).toBe(0);
    expect(await ids()).toEqual(survivors);
  });

  it('skips rows another transaction holds locked instead of waiting', async () => {
    await seed(3);
    const locks = [`SELECT 1 FROM oidc_payloads WHERE id = 'expired-1' FOR UPDATE`, `SELECT 1 FROM revoked_tokens WHERE jti = 'expired-1' FOR UPDATE`];
    await whileInstance2Locks(instances, locks, async () => {
      expect(await batch(db, 10)).toBe(2);
    });
    expect(await batch(db, 10)).toBe(1);
    expect(await ids()).toEqual(survivors);
  });

  it('two instances at once delete disjoint rows', async () => {
    await seed(200);
    const [a, b] = await drainFromBoth(instances, batch);
    expect(a + b).toBe(200);
    expect(await ids()).toEqual(survivors);
  });
});
