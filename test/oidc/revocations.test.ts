// The in-memory list of revoked JWT ids that every instance keeps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenForChanges, type ChangeFeed } from '../../src/db/changes.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { createRevocationList, type RevocationList } from '../../src/oidc/revocations.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

async function eventually(check: () => boolean, ms = 2_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('revocation list', () => {
  let db: TestDatabase;
  const handles: DbHandle[] = [];
  const feeds: ChangeFeed[] = [];
  const lists: RevocationList[] = [];
  const instance = async () => {
    const h = openDb({ url: db.url, poolSize: 2 });
    const feed = listenForChanges(db.url);
    await feed.ready;
    handles.push(h);
    feeds.push(feed);
    const list = await createRevocationList(h.prisma, feed);
    lists.push(list);
    return { h, list };
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const l of lists) l.close();
    for (const f of feeds) await f.close();
    for (const h of handles) await h.close();
    await db?.drop();
  });

  it('loads unexpired revocations at start and ignores expired ones', async () => {
    const h = openDb({ url: db.url, poolSize: 1 });
    handles.push(h);
    await h.prisma.revokedToken.createMany({
      data: [
        { jti: 'live', expiresAt: new Date(Date.now() + 60_000) },
        { jti: 'old', expiresAt: new Date(Date.now() - 1_000) },
      ],
    });
    const { list } = await instance();
    expect(list.has('live')).toBe(true);
    expect(list.has('old')).toBe(false);
    expect(list.has('never')).toBe(false);
  });

  it('a revocation on one instance reaches the others through the change feed', async () => {
    const a = await instance();
    const b = await instance();
    await a.list.revoke('jti-a', new Date(Date.now() + 60_000));
    expect(a.list.has('jti-a')).toBe(true); // at once where it happened
    expect(await eventually(() => b.list.has('jti-a'))).toBe(true);
    expect(await a.h.prisma.revokedToken.count({ where: { jti: 'jti-a' } })).toBe(1);
  });

  it('a row written by anything else (a script, psql) is announced by the database itself', async () => {
    const a = await instance();
    const other = openDb({ url: db.url, poolSize: 1 });
    handles.push(other);
    await other.prisma.$executeRaw`INSERT INTO revoked_tokens (jti, expires_at) VALUES ('from-psql', now() + interval '1 minute')`;
    expect(await eventually(() => a.list.has('from-psql'))).toBe(true);
  });

  it('revoking twice is harmless', async () => {
    const a = await instance();
    const exp = new Date(Date.now() + 60_000);
    await a.list.revoke('twice', exp);
    await a.list.revoke('twice', exp);
    expect(await a.h.prisma.revokedToken.count({ where: { jti: 'twice' } })).toBe(1);
  });
});
