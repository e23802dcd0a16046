// The account directory (src/accounts/cache.ts): what findAccount reads on
// the sign-in, token and userinfo paths. Two "instances" — separate pools and
// change feeds on one database — see each other's account changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountDirectory } from '../../src/accounts/cache.ts';
import { loadAccountForOidc } from '../../src/accounts/claims.ts';
import { createAccount, deleteAccount, setDisabled, updateAccount } from '../../src/accounts/store.ts';
import { listenForChanges } from '../../src/db/changes.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

async function eventually(fn: () => Promise<boolean>, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

let tdb: TestDatabase;
let a: DbHandle;
let b: DbHandle;

beforeAll(async () => {
  tdb = await createTestDatabase();
  a = openDb({ url: tdb.url, poolSize: 2 });
  b = openDb({ url: tdb.url, poolSize: 2 });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await tdb?.drop();
});

describe('account directory', () => {
  it('serves hits from memory and follows updates, disabling and deletion made through another instance', async () => {
    const feedA = listenForChanges(tdb.url);
    const feedB = listenForChanges(tdb.url);
    await Promise.all([feedA.ready, feedB.ready]);
    const dirB = createAccountDirectory(b.prisma, feedB);
    try {
      const acct = await createAccount(a.prisma, { email: 'cached@example.com', name: 'Before', password: 'correct horse battery' });
      const first = await dirB.get(acct.id);
      expect(first).toMatchObject({ id: acct.id, email: 'cached@example.com', name: 'Before', disabled: false });
      expect(first).not.toHaveProperty('passwordHash');
      expect(await dirB.get(acct.id)).toBe(first); // a hit: the same (frozen) object
      expect(Object.isFrozen(first)).toBe(true);

      // a write that bypasses the store (and its notification) is not seen: proof that B reads from memory
      await a.prisma.$executeRaw`UPDATE accounts SET name = 'Silent' WHERE id = ${acct.id}::uuid`;
      expect((await dirB.get(acct.id))?.name).toBe('Before');

      await updateAccount(a.prisma, acct.id, { name: 'After' });
      expect(await eventually(async () => (await dirB.get(acct.id))?.name === 'After')).toBe(true);

      await setDisabled(a.prisma, acct.id, true);
      expect(await eventually(async () => (await loadAccountForOidc(dirB, acct.id)) === undefined)).toBe(true);
      await setDisabled(a.prisma, acct.id, false);
      expect(await eventually(async () => (await loadAccountForOidc(dirB, acct.id)) !== undefined)).toBe(true);

      await deleteAccount(a.prisma, acct.id);
      expect(await eventually(async () => (await dirB.get(acct.id)) === undefined)).toBe(true);
      expect(await dirB.get('not-an-id')).toBeUndefined();
    } finally {
      dirB.close();
      await feedA.close();
      await feedB.close();
    }
  });
});
