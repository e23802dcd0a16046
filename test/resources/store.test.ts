import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { listenForChanges, type ChangeFeed } from '../../src/db/changes.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../src/kernel/errors.ts';
import { createClient, deleteClient, getClient } from '../../src/clients/store.ts';
import { createResourceCatalog } from '../../src/resources/cache.ts';
import {
  addRoleToAccount,
  createRole,
  deleteRole,
  getRole,
  listRoles,
  removeRoleFromAccount,
  rolesForAccount,
  updateRole,
} from '../../src/resources/roles.ts';
import {
  ADMIN_RESOURCE,
  ADMIN_SCOPES,
  createResource,
  deleteResource,
  ensureBuiltInResources,
  getResource,
  listResources,
  updateResource,
} from '../../src/resources/store.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** Polls until fn returns a truthy value (or fails after `ms`). */
async function eventually<T>(fn: () => Promise<T>, ms = 3_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('resource store', () => {
  let tdb: TestDatabase;
  let h: DbHandle;
  beforeAll(async () => {
    tdb = await createTestDatabase();
    h = openDb({ url: tdb.url, poolSize: 4 });
  });
  afterAll(async () => {
    await h?.close();
    await tdb?.drop();
  });
  const db = () => h.prisma;
  const count = () => db().resource.count();

  describe('built-in admin resource', () => {
    it('is created once with the admin scopes, even when two instances start at once', async () => {
      const results = await Promise.all([ensureBuiltInResources(db()), ensureBuiltInResources(db()), ensureBuiltInResources(db())]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const r = await getResource(db(), ADMIN_RESOURCE);
      expect(r).toMatchObject({ builtIn: true, accessTokenTtl: 300, signingAlg: 'RS256', servedBy: [], requireRoles: true });
      expect(r.scopes).toEqual([...ADMIN_SCOPES]);
      expect(r.scopes).toContain('gatehouse:admin');
      expect(await getRole(db(), 'gatehouse-admin')).toMatchObject({ resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'], builtIn: true });
      expect(await ensureBuiltInResources(db())).toBe(false);
    });

    it('the built-in role cannot be created, changed or deleted through the store', async () => {
      await expect(createRole(db(), { name: 'gatehouse-admin', resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'] })).rejects.toMatchObject({ field: 'name' });
      await expect(updateRole(db(), 'gatehouse-admin', { scopes: ['gatehouse:users:read'] })).rejects.toThrow(ConflictError);
      await expect(deleteRole(db(), 'gatehouse-admin')).rejects.toThrow(/built in/);
    });

    it('a role that used to be called gatehouse-admin and meant something else is reset, and its holders lose it', async () => {
      const someone = (await db().account.create({ data: { email: 'legacy@example.com' } })).id;
      const role = await db().role.update({ where: { name: 'gatehouse-admin' }, data: { resource: 'https://elsewhere.example', scopes: ['x'] } });
      await db().accountRole.create({ data: { accountId: someone, roleId: role.id } });
      expect(await ensureBuiltInResources(db())).toBe(true);
      expect(await getRole(db(), 'gatehouse-admin')).toMatchObject({ resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'], accountCount: 0 });
      expect(await rolesForAccount(db(), someone)).toEqual([]);
      await db().account.delete({ where: { id: someone } });
    });

    it('cannot be deleted', async () => {
      await expect(deleteResource(db(), ADMIN_RESOURCE)).rejects.toThrow(ConflictError);
      await expect(deleteResource(db(), ADMIN_RESOURCE)).rejects.toThrow(/built in/);
      expect(await getResource(db(), ADMIN_RESOURCE)).toBeTruthy();
    });

    it('allows only ttl, alg and name to change, and keeps them on the next start', async () => {
      await expect(updateResource(db(), ADMIN_RESOURCE, { scopes: ['x'] })).rejects.toMatchObject({ field: 'scopes' });
      await expect(updateResource(db(), ADMIN_RESOURCE, { requireRoles: false })).rejects.toThrow(ValidationError);
      const r = await updateResource(db(), ADMIN_RESOURCE, { accessTokenTtl: 120 });
      expect(r.accessTokenTtl).toBe(120);
      await ensureBuiltInResources(db());
      expect((await getResource(db(), ADMIN_RESOURCE)).accessTokenTtl).toBe(120);
      await updateResource(db(), ADMIN_RESOURCE, { accessTokenTtl: 300 });
    });

    it('reserves the urn:gatehouse: namespace', async () => {
      await expect(createResource(db(), { identifier: 'urn:gatehouse:other', scopes: ['a'] })).rejects.toMatchObject({ field: 'identifier' });
    });
  });

  describe('create', () => {
    it('applies defaults and dedupes scopes', async () => {
      const r = await createResource(db(), { identifier: 'https://orders.example', scopes: ['orders:read', 'orders:write', 'orders:read'] });
      expect(r).toMatchObject({
        identifier: 'https://orders.example',
        name: null,
        scopes: ['orders:read', 'orders:write'],
        accessTokenTtl: 300,
        signingAlg: 'RS256',
        servedBy: [],
        requireRoles: false,
        builtIn: false,
        version: 1,
      });
    });

    it('accepts URNs and every option', async () => {
      const r = await createResource(db(), {
        identifier: 'urn:example:stock',
        name: 'Stock',
        scopes: ['stock:read'],
        accessTokenTtl: 30,
        signingAlg: 'EdDSA',
        requireRoles: true,
      });
      expect(r).toMatchObject({ name: 'Stock', accessTokenTtl: 30, signingAlg: 'EdDSA', requireRoles: true });
    });

    it.each([
      [{ identifier: 'not a uri', scopes: ['a'] }, 'identifier'],
      [{ identifier: 'relative/path', scopes: ['a'] }, 'identifier'],
      [{ identifier: 'https://api.example/#frag', scopes: ['a'] }, 'identifier'],
      [{ identifier: 'https://api.example', scopes: [] }, 'scopes'],
      [{ identifier: 'https://api.example', scopes: ['has space'] }, 'scopes'],
      [{ identifier: 'https://api.example', scopes: ['quote"d'] }, 'scopes'],
      [{ identifier: 'https://api.example', scopes: ['a'], accessTokenTtl: 29 }, 'accessTokenTtl'],
      [{ identifier: 'https://api.example', scopes: ['a'], accessTokenTtl: 86_401 }, 'accessTokenTtl'],
      [{ identifier: 'https://api.example', scopes: ['a'], accessTokenTtl: 1.5 }, 'accessTokenTtl'],
      [{ identifier: 'https://api.example', scopes: ['a'], signingAlg: 'HS256' }, 'signingAlg'],
      [{ identifier: 'https://api.example', scopes: ['a'], servedBy: ['no-such-client'] }, 'servedBy'],
      [{ identifier: 'https://api.example', scopes: ['a'], bogus: 1 }, 'bogus'],
      [{ scopes: ['a'] }, 'identifier'],
    ])('refuses %j naming %s, creating nothing', async (input, field) => {
      const before = await count();
      const err = await createResource(db(), input as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
      expect((err as Error).message).not.toContain('\n');
      expect(await count()).toBe(before);
    });

    it('refuses a duplicate identifier', async () => {
      await expect(createResource(db(), { identifier: 'https://orders.example', scopes: ['x'] })).rejects.toThrow(ConflictError);
    });
  });

  describe('update and delete', () => {
    it('replaces lists, bumps the version, and honours expectedVersion', async () => {
      await createResource(db(), { identifier: 'https://v.example', scopes: ['a'] });
      const r = await updateResource(db(), 'https://v.example', { scopes: ['b', 'c'], name: 'V' }, { expectedVersion: 1 });
      expect(r).toMatchObject({ scopes: ['b', 'c'], name: 'V', version: 2 });
      const err = await updateResource(db(), 'https://v.example', { name: 'W' }, { expectedVersion: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as Error).message).toMatch(/version 2, not 1/);
      expect((await getResource(db(), 'https://v.example')).name).toBe('V');
      const cleared = await updateResource(db(), 'https://v.example', { name: null });
      expect(cleared).toMatchObject({ name: null, version: 3 });
    });

    it('refuses renaming and unknown resources', async () => {
      await expect(updateResource(db(), 'https://v.example', { identifier: 'https://w.example' })).rejects.toMatchObject({ field: 'identifier' });
      await expect(updateResource(db(), 'https://nope.example', { name: 'x' })).rejects.toThrow(NotFoundError);
      await expect(deleteResource(db(), 'https://nope.example')).rejects.toThrow(NotFoundError);
      await expect(getResource(db(), 'https://nope.example')).rejects.toThrow("resource 'https://nope.example' not found");
    });

    it('servedBy must name clients; deleting a client drops it from servedBy', async () => {
      await createClient(db(), { id: 'orders-svc', name: 'Orders service', grants: ['client_credentials'] });
      const r = await updateResource(db(), 'https://v.example', { servedBy: ['orders-svc'] });
      expect(r.servedBy).toEqual(['orders-svc']);
      await deleteClient(db(), 'orders-svc');
      expect((await getResource(db(), 'https://v.example')).servedBy).toEqual([]);
    });

    it('deleting a resource removes it from client resource lists', async () => {
      await createResource(db(), { identifier: 'https://gone.example', scopes: ['g'] });
      const { client } = await createClient(db(), {
        name: 'c',
        grants: ['client_credentials'],
        resources: ['https://gone.example', 'https://orders.example'],
      });
      await deleteResource(db(), 'https://gone.example');
      await expect(getResource(db(), 'https://gone.example')).rejects.toThrow(NotFoundError);
      expect((await getClient(db(), client.id)).resources).toEqual(['https://orders.example']);
    });

    it('lists page by page', async () => {
      const all: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listResources(db(), { cursor, limit: 2 });
        expect(page.items.length).toBeLessThanOrEqual(2);
        all.push(...page.items.map((r) => r.identifier));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(all).toEqual([...all].sort());
      expect(all).toContain(ADMIN_RESOURCE);
      expect(all.length).toBe(await count());
      await expect(listResources(db(), { limit: 0 })).rejects.toThrow(ValidationError);
    });
  });

  describe('roles', () => {
    let alice: string;
    beforeAll(async () => {
      // accounts belong to src/accounts; a bare row is enough here
      alice = (await db().account.create({ data: { email: 'alice@example.com' } })).id;
      await createResource(db(), { identifier: 'https://hr.example', scopes: ['hr:read', 'hr:write'], requireRoles: true });
    });

    it('creates roles whose scopes the resource offers', async () => {
      const r = await createRole(db(), { name: 'hr-reader', resource: 'https://hr.example', scopes: ['hr:read'] });
      expect(r).toMatchObject({ name: 'hr-reader', resource: 'https://hr.example', scopes: ['hr:read'], accountCount: 0 });
      await createRole(db(), { name: 'orders-reader', resource: 'https://orders.example', scopes: ['orders:read'] });
      expect((await listRoles(db())).map((x) => x.name)).toEqual(['gatehouse-admin', 'hr-reader', 'orders-reader']);
      expect((await listRoles(db(), { resource: 'https://hr.example' })).map((x) => x.name)).toEqual(['hr-reader']);
    });

    it('refuses bad roles', async () => {
      const before = await db().role.count();
      await expect(createRole(db(), { name: 'x', resource: 'https://nope.example', scopes: ['a'] })).rejects.toMatchObject({ field: 'resource' });
      await expect(createRole(db(), { name: 'x', resource: 'https://hr.example', scopes: ['hr:delete'] })).rejects.toMatchObject({ field: 'scopes' });
      await expect(createRole(db(), { name: 'bad name', resource: 'https://hr.example', scopes: ['hr:read'] })).rejects.toMatchObject({ field: 'name' });
      await expect(createRole(db(), { name: 'hr-reader', resource: 'https://hr.example', scopes: ['hr:read'] })).rejects.toThrow(ConflictError);
      expect(await db().role.count()).toBe(before);
    });

    it('gives roles to accounts and lists them per resource', async () => {
      expect(await addRoleToAccount(db(), alice, 'hr-reader')).toBe(true);
      expect(await addRoleToAccount(db(), alice, 'hr-reader')).toBe(false);
      expect(await addRoleToAccount(db(), alice, 'orders-reader')).toBe(true);
      expect(await rolesForAccount(db(), alice)).toEqual([
        { name: 'hr-reader', resource: 'https://hr.example', scopes: ['hr:read'] },
        { name: 'orders-reader', resource: 'https://orders.example', scopes: ['orders:read'] },
      ]);
      expect(await rolesForAccount(db(), alice, 'https://hr.example')).toEqual([{ name: 'hr-reader', resource: 'https://hr.example', scopes: ['hr:read'] }]);
      expect((await getRole(db(), 'hr-reader')).accountCount).toBe(1);
      await expect(addRoleToAccount(db(), alice, 'no-such-role')).rejects.toThrow(NotFoundError);
      await expect(addRoleToAccount(db(), '00000000-0000-4000-8000-000000000000', 'hr-reader')).rejects.toThrow("account '00000000-0000-4000-8000-000000000000' not found");
      await expect(addRoleToAccount(db(), 'not-a-uuid', 'hr-reader')).rejects.toThrow(NotFoundError);
    });

    it('updates a role within its resource offer', async () => {
      expect((await updateRole(db(), 'hr-reader', { scopes: ['hr:read', 'hr:write'] })).scopes).toEqual(['hr:read', 'hr:write']);
      await expect(updateRole(db(), 'hr-reader', { scopes: ['nope'] })).rejects.toMatchObject({ field: 'scopes' });
      await updateRole(db(), 'hr-reader', { scopes: ['hr:read'] });
    });

    it('a resource with roles cannot be deleted until they are', async () => {
      await expect(deleteResource(db(), 'https://hr.example')).rejects.toThrow(/still has roles: hr-reader/);
    });

    it('removes roles from accounts and deletes roles', async () => {
      expect(await removeRoleFromAccount(db(), alice, 'orders-reader')).toBe(true);
      expect(await removeRoleFromAccount(db(), alice, 'orders-reader')).toBe(false);
      await deleteRole(db(), 'hr-reader');
      expect(await rolesForAccount(db(), alice)).toEqual([]);
      await expect(deleteRole(db(), 'hr-reader')).rejects.toThrow(NotFoundError);
      await deleteResource(db(), 'https://hr.example');
    });
  });

  describe('catalog cache', () => {
    it('serves hits from memory, shares concurrent misses, and follows changes from another instance', async () => {
      // two "instances": separate pools and change feeds on the same database
      const other = openDb({ url: tdb.url, poolSize: 2 });
      const feedA: ChangeFeed = listenForChanges(tdb.url);
      const feedB: ChangeFeed = listenForChanges(tdb.url);
      await Promise.all([feedA.ready, feedB.ready]);
      const catA = createResourceCatalog(db(), feedA);
      const catB = createResourceCatalog(other.prisma, feedB);
      try {
        // let the creation's own notification reach B before B caches anything
        const announced = new Promise<void>((resolve) => {
          const off = feedB.subscribe('resource', (id) => id === 'https://cached.example' && (off(), resolve()));
        });
        await createResource(db(), { identifier: 'https://cached.example', scopes: ['c:1'] });
        await announced;
        const [x, y] = await Promise.all([catB.get('https://cached.example'), catB.get('https://cached.example')]);
        expect(x).toBe(y); // one query, one object
        expect(x?.scopes).toEqual(['c:1']);
        expect(Object.isFrozen(x)).toBe(true);
        expect(await catB.get('https://cached.example')).toBe(x); // a hit: the same object

        await updateResource(db(), 'https://cached.example', { scopes: ['c:2'] });
        const seen = await eventually(async () => (await catB.get('https://cached.example'))?.scopes[0] === 'c:2');
        expect(seen).toBe(true);

        await catA.get('https://cached.example');
        await deleteResource(other.prisma, 'https://cached.example');
        expect(await eventually(async () => (await catA.get('https://cached.example')) === undefined)).toBe(true);
        expect(await catA.get('https://never.example')).toBeUndefined();
      } finally {
        catA.close();
        catB.close();
        await feedA.close();
        await feedB.close();
        await other.close();
      }
    });
  });
});
