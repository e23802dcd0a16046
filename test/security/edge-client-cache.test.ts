// Unknown client_id values cost one database read each and then nothing for
// as long as a known client stays cached (until the change feed announces a
// client with that id), and they have their own bounded budget: a flood of
// them can neither hammer the database nor evict real clients from the
// cache. Creating the client makes it usable at once on every instance.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientRegistry } from '../../src/clients/registry.ts';
import { createClient } from '../../src/clients/store.ts';
import type { DbOrTx } from '../../src/kernel/tx.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const ORDERS = 'https://orders.example.com';
/** PRODUCT.md: client changes reach every instance within one second */
const PROPAGATION_MS = 1_000;

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Counts the statements the app sends to its pool that read the clients
 * table (Prisma's pg adapter sends every statement through pool.query).
 */
function clientReads(t: TestApp): () => number {
  const pool = t.gatehouse.db.pool as unknown as { query: (...args: unknown[]) => unknown };
  const original = pool.query.bind(pool);
  let n = 0;
  pool.query = (...args: unknown[]) => {
    const first = args[0] as string | { text?: string };
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    if (/FROM\s+"[^"]*"?\.?"?clients"/i.test(text)) n++;
    return original(...args);
  };
  return () => n;
}

describe('negative client lookups', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  let knownSecret: string;

  const token = (t: TestApp, id: string, secret: string) =>
    t.request.post('/token').type('form').set('Authorization', basic(id, secret)).send({ grant_type: 'client_credentials', resource: ORDERS });

  beforeAll(async () => {
    database = await createTestDatabase();
    a = await createTestApp({ database });
    b = await createTestApp({ database });
    await createResource(a.gatehouse.db.prisma, { identifier: ORDERS, scopes: ['orders:read'] });
    knownSecret = (await createClient(a.gatehouse.db.prisma, { id: 'known', name: 'known', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] }))
      .clientSecret!;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it('a repeated unknown client_id costs one database read, also after a while', async () => {
    const reads = clientReads(a);
    const unknown = `ghost-${randomUUID()}`;
    expect((await token(a, unknown, 'x'.repeat(43))).body.error).toBe('invalid_client');
    expect(reads()).toBe(1);
    await new Promise((r) => setTimeout(r, 1_500));
    for (let i = 0; i < 5; i++) expect((await token(a, unknown, 'x'.repeat(43))).body.error).toBe('invalid_client');
    expect(reads()).toBe(1);
  });

  it('many distinct unknown ids do not evict a known client, and their own budget is bounded', async () => {
    // The app's registry type, with small budgets, on the app's database and change feed;
    // every read of the clients table is counted through a Prisma query hook.
    let reads = 0;
    const counted = a.gatehouse.db.prisma.$extends({
      query: {
        client: {
          async $allOperations({ args, query }) {
            reads++;
            return query(args);
          },
        },
      },
    }) as unknown as DbOrTx;
    const registry = createClientRegistry(counted, a.gatehouse.feed, { maxEntries: 5, maxMisses: 5 });
    try {
      expect((await registry.get('known'))?.id).toBe('known');
      expect(reads).toBe(1);
      const unknown = Array.from({ length: 50 }, (_, i) => `nobody-${i}-${randomUUID()}`);
      for (const id of unknown) expect(await registry.get(id)).toBeUndefined();
      expect(reads).toBe(51);
      // the known client is still a cache hit
      expect((await registry.get('known'))?.id).toBe('known');
      expect(reads).toBe(51);
      // the newest unknown ids are cached misses; the oldest fell out of the miss budget
      for (const id of unknown.slice(-5)) expect(await registry.get(id)).toBeUndefined();
      expect(reads).toBe(51);
      expect(await registry.get(unknown[0]!)).toBeUndefined();
      expect(reads).toBe(52);
    } finally {
      registry.close();
    }
  });

  it('creating a client whose absence another instance cached makes it usable there at once', async () => {
    const id = `late-${randomUUID()}`;
    const secret = 'x'.repeat(43);
    expect((await token(b, id, secret)).body.error).toBe('invalid_client'); // B caches the miss
    expect((await token(a, id, secret)).body.error).toBe('invalid_client'); // A too
    const created = await createClient(a.gatehouse.db.prisma, { id, name: id, grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] });
    const deadline = Date.now() + PROPAGATION_MS;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await token(b, id, created.clientSecret!)).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(200);
    expect((await token(a, id, created.clientSecret!)).status).toBe(200);
  });

  it('the known client keeps working throughout', async () => {
    expect((await token(b, 'known', knownSecret)).status).toBe(200);
  });
});
