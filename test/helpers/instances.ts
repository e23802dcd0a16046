// Two "instances" on one fresh database (separate pools, as two Gatehouse
// processes would have), for tests of work that every instance runs at once:
// the cleanup steps, which must skip rows others hold and never overlap.
import { afterAll, beforeAll } from 'vitest';
import { openDb, type Db, type DbHandle } from '../../src/db/client.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TwoInstances {
  readonly url: string;
  readonly h1: DbHandle;
  readonly h2: DbHandle;
  /** h1's Prisma client */
  readonly db: Db;
}

/** Creates the database and both pools before the file's tests and drops them after. */
export function twoInstances(): TwoInstances {
  let tdb: TestDatabase | undefined;
  let h1: DbHandle | undefined;
  let h2: DbHandle | undefined;
  beforeAll(async () => {
    tdb = await createTestDatabase();
    h1 = openDb({ url: tdb.url });
    h2 = openDb({ url: tdb.url });
  });
  afterAll(async () => {
    await h1?.close();
    await h2?.close();
    await tdb?.drop();
  });
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('twoInstances() is used before its beforeAll ran');
    return v;
  };
  return {
    get url() {
      return ready(tdb).url;
    },
    get h1() {
      return ready(h1);
    },
    get h2() {
      return ready(h2);
    },
    get db() {
      return ready(h1).prisma;
    },
  };
}

/** One cleanup step: deletes at most `batchSize` rows, returns how many. */
export type CleanupBatch = (db: Db, batchSize: number) => Promise<number>;

/** Runs `batch` (3 rows at a time) on both instances at once until neither finds more; returns [deleted by 1, by 2]. */
export async function drainFromBoth(instances: TwoInstances, batch: CleanupBatch): Promise<[number, number]> {
  const drain = async (on: Db) => {
    for (let total = 0; ; ) {
      const n = await batch(on, 3);
      total += n;
      if (n === 0) return total;
    }
  };
  return Promise.all([drain(instances.h1.prisma), drain(instances.h2.prisma)]);
}

/** Runs `fn` while instance 2 holds row locks taken by `lockStatements` (SELECT … FOR UPDATE) in an open transaction. */
export async function whileInstance2Locks(instances: TwoInstances, lockStatements: string[], fn: () => Promise<void>): Promise<void> {
  const client = await instances.h2.pool.connect();
  try {
    await client.query('BEGIN');
    for (const sql of lockStatements) await client.query(sql);
    await fn();
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
}
