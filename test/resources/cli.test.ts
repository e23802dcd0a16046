import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { addRoleToAccount } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE, ADMIN_SCOPES } from '../../src/resources/store.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

interface ResourceJson {
  identifier: string;
  name: string | null;
  scopes: string[];
  accessTokenTtl: number;
  signingAlg: string;
  servedBy: string[];
  requireRoles: boolean;
  builtIn: boolean;
  version: number;
}
interface RoleJson {
  name: string;
  resource: string;
  scopes: string[];
  accountCount: number;
}

const oneLine = (s: string) => expect(s).toMatch(/^gatehouse: [^\n]+\n$/);

describe('gatehouse resources and roles', () => {
  let tdb: TestDatabase;
  let h: DbHandle;
  const run = (...args: string[]) => cli(tdb.url, args);
  const count = () => h.prisma.resource.count();

  beforeAll(async () => {
    tdb = await createTestDatabase();
    h = openDb({ url: tdb.url, poolSize: 2 });
  });
  afterAll(async () => {
    await h?.close();
    await tdb?.drop();
  });

  it('list shows the built-in admin API with its scopes from the first run', async () => {
    const r = await run('resources', 'list', '--json');
    expect(r.stderr).toBe('');
    const all = r.json<ResourceJson[]>();
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ identifier: ADMIN_RESOURCE, builtIn: true, scopes: [...ADMIN_SCOPES] });
    const text = await run('resources', 'list');
    expect(text.stdout).toMatch(/^urn:gatehouse:admin\s+300s\s+RS256\s+built-in,require-roles\s+gatehouse:admin gatehouse:clients:read/m);
  });

  it('the built-in resource cannot be deleted or have its scopes changed', async () => {
    const del = await run('resources', 'delete', ADMIN_RESOURCE);
    expect(del.code).toBe(1);
    expect(del.stderr).toBe("gatehouse: resource 'urn:gatehouse:admin' is built in and cannot be deleted\n");
    const upd = await run('resources', 'update', ADMIN_RESOURCE, '--scope', 'other');
    expect(upd.code).toBe(1);
    expect(upd.stderr).toBe('gatehouse: invalid --scope: cannot be changed on the built-in resource urn:gatehouse:admin\n');
    expect((await run('resources', 'show', ADMIN_RESOURCE, '--json')).json<ResourceJson>().scopes).toEqual([...ADMIN_SCOPES]);
  });

  it('creates a resource with every flag; --scope is repeatable and space-separated', async () => {
    const svc = await run('clients', 'create', '--name', 'orders service', '--id', 'orders-svc', '--grant', 'client_credentials');
    expect(svc.code).toBe(0);
    const r = await run(
      'resources', 'create', '--identifier', 'https://orders.example', '--scope', 'orders:read orders:write', '--scope', 'orders:admin',
      '--ttl', '600', '--alg', 'ES256', '--served-by', 'orders-svc', '--require-roles', '--name', 'Orders', '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.json<ResourceJson>()).toMatchObject({
      identifier: 'https://orders.example',
      name: 'Orders',
      scopes: ['orders:read', 'orders:write', 'orders:admin'],
      accessTokenTtl: 600,
      signingAlg: 'ES256',
      servedBy: ['orders-svc'],
      requireRoles: true,
      builtIn: false,
      version: 1,
    });
    const plain = await run('resources', 'create', '--identifier', 'urn:example:stock', '--scope', 'stock:read');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^created resource urn:example:stock\n/);
    expect((await run('resources', 'show', 'urn:example:stock', '--json')).json<ResourceJson>()).toMatchObject({ accessTokenTtl: 300, signingAlg: 'RS256', requireRoles: false });
  });

  it.each<[string, string[], RegExp]>([
    ['missing --identifier', ['--scope', 'a'], /--identifier is required/],
    ['missing --scope', ['--identifier', 'https://x.example'], /--scope is required/],
    ['a relative identifier', ['--identifier', 'x/y', '--scope', 'a'], /invalid --identifier: 'x\/y' is not an absolute URI/],
    ['an identifier with a fragment', ['--identifier', 'https://x.example/#a', '--scope', 'a'], /invalid --identifier: .*fragment/],
    ['a reserved identifier', ['--identifier', 'urn:gatehouse:mine', '--scope', 'a'], /invalid --identifier: .*reserved/],
    ['a bad scope', ['--identifier', 'https://x.example', '--scope', 'a\\b'], /invalid --scope/],
    ['a bad ttl', ['--identifier', 'https://x.example', '--scope', 'a', '--ttl', '10'], /--ttl must be a whole number between 30 and 86400/],
    ['a bad alg', ['--identifier', 'https://x.example', '--scope', 'a', '--alg', 'HS256'], /invalid --alg: 'HS256' is not valid; must be one of RS256, ES256, EdDSA/],
    ['an unknown --served-by', ['--identifier', 'https://x.example', '--scope', 'a', '--served-by', 'ghost'], /invalid --served-by: unknown client 'ghost'/],
    ['a taken identifier', ['--identifier', 'https://orders.example', '--scope', 'a'], /resource 'https:\/\/orders\.example' already exists/],
  ])('create refuses %s with one line and creates nothing', async (_label, args, message) => {
    const before = await count();
    const r = await run('resources', 'create', ...args);
    expect(r.code).not.toBe(0);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(message);
    expect(await count()).toBe(before);
  });

  it('update replaces lists and toggles flags; bad input changes nothing', async () => {
    const r = await run('resources', 'update', 'https://orders.example', '--scope', 'orders:read orders:write', '--served-by', '', '--no-require-roles', '--ttl', '120', '--json');
    expect(r.stderr).toBe('');
    expect(r.json<ResourceJson>()).toMatchObject({ scopes: ['orders:read', 'orders:write'], servedBy: [], requireRoles: false, accessTokenTtl: 120, name: 'Orders', version: 2 });
    const again = await run('resources', 'update', 'https://orders.example', '--require-roles');
    expect(again.stdout).toBe('updated resource https://orders.example (version 3)\n');
    for (const args of [
      ['https://orders.example', '--alg', 'none'],
      ['https://orders.example', '--require-roles', '--no-require-roles'],
      ['https://orders.example'],
      ['https://orders.example', '--identifier', 'https://other.example'],
    ]) {
      const bad = await run('resources', 'update', ...args);
      expect(bad.code, args.join(' ')).not.toBe(0);
      oneLine(bad.stderr);
    }
    const missing = await run('resources', 'update', 'https://nope.example', '--ttl', '60');
    expect(missing.stderr).toBe("gatehouse: resource 'https://nope.example' not found\n");
    expect((await run('resources', 'show', 'https://orders.example', '--json')).json<ResourceJson>().version).toBe(3);
  });

  it('show prints aligned text; unknown resources are one line', async () => {
    const r = await run('resources', 'show', 'https://orders.example');
    expect(r.stdout).toMatch(/^identifier\s+https:\/\/orders\.example$/m);
    expect(r.stdout).toMatch(/^scopes\s+orders:read orders:write$/m);
    const bad = await run('resources', 'show', 'https://nope.example');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("gatehouse: resource 'https://nope.example' not found\n");
  });

  describe('roles', () => {
    it('create, list, show', async () => {
      const r = await run('roles', 'create', '--name', 'orders-reader', '--resource', 'https://orders.example', '--scope', 'orders:read', '--json');
      expect(r.stderr).toBe('');
      expect(r.json<RoleJson>()).toMatchObject({ name: 'orders-reader', resource: 'https://orders.example', scopes: ['orders:read'], accountCount: 0 });
      const admin = await run('roles', 'create', '--name', 'gh-auditor', '--resource', ADMIN_RESOURCE, '--scope', 'gatehouse:audit:read gatehouse:clients:read');
      expect(admin.code).toBe(0);
      const list = await run('roles', 'list', '--json');
      expect(list.json<RoleJson[]>().map((x) => x.name)).toEqual(['gatehouse-admin', 'gh-auditor', 'orders-reader']);
      const filtered = await run('roles', 'list', '--resource', 'https://orders.example', '--json');
      expect(filtered.json<RoleJson[]>().map((x) => x.name)).toEqual(['orders-reader']);
      const text = await run('roles', 'list');
      expect(text.stdout).toMatch(/^NAME\s+RESOURCE\s+ACCOUNTS\s+SCOPES\n/);
      const account = await h.prisma.account.create({ data: { email: 'bob@example.com' } });
      await addRoleToAccount(h.prisma, account.id, 'orders-reader');
      const show = await run('roles', 'show', 'orders-reader');
      expect(show.stdout).toMatch(/^accounts\s+1$/m);
    });

    it.each<[string, string[], RegExp]>([
      ['missing --name', ['--resource', 'https://orders.example', '--scope', 'orders:read'], /--name is required/],
      ['missing --resource', ['--name', 'r1', '--scope', 'orders:read'], /--resource is required/],
      ['missing --scope', ['--name', 'r1', '--resource', 'https://orders.example'], /--scope is required/],
      ['an unknown resource', ['--name', 'r1', '--resource', 'https://nope.example', '--scope', 'a'], /invalid --resource: unknown resource/],
      ['a scope the resource does not offer', ['--name', 'r1', '--resource', 'https://orders.example', '--scope', 'orders:delete'], /invalid --scope: 'orders:delete' is not a scope of/],
      ['a bad name', ['--name', 'has space', '--resource', 'https://orders.example', '--scope', 'orders:read'], /invalid --name/],
      ['a taken name', ['--name', 'orders-reader', '--resource', 'https://orders.example', '--scope', 'orders:read'], /role 'orders-reader' already exists/],
    ])('create refuses %s with one line and creates nothing', async (_label, args, message) => {
      const before = await h.prisma.role.count();
      const r = await run('roles', 'create', ...args);
      expect(r.code).not.toBe(0);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(message);
      expect(await h.prisma.role.count()).toBe(before);
    });

    it('a resource with roles cannot be deleted; delete the role first', async () => {
      const refused = await run('resources', 'delete', 'https://orders.example');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe("gatehouse: resource 'https://orders.example' still has roles: orders-reader (delete them first)\n");
      const del = await run('roles', 'delete', 'orders-reader', '--json');
      expect(del.json()).toEqual({ name: 'orders-reader', deleted: true });
      expect(await h.prisma.accountRole.count()).toBe(0);
      const again = await run('roles', 'show', 'orders-reader');
      expect(again.stderr).toBe("gatehouse: role 'orders-reader' not found\n");
      expect((await run('roles', 'delete', 'orders-reader')).code).toBe(1);
    });
  });

  it('delete removes the resource and takes it out of client resource lists', async () => {
    const c = await run('clients', 'create', '--name', 'user', '--id', 'user', '--grant', 'client_credentials', '--resource', 'https://orders.example', '--resource', 'urn:example:stock');
    expect(c.code).toBe(0);
    const r = await run('resources', 'delete', 'https://orders.example', '--json');
    expect(r.json()).toEqual({ identifier: 'https://orders.example', deleted: true });
    expect((await run('clients', 'show', 'user', '--json')).json<{ resources: string[] }>().resources).toEqual(['urn:example:stock']);
    const again = await run('resources', 'delete', 'https://orders.example');
    expect(again.code).toBe(1);
    expect(again.stderr).toBe("gatehouse: resource 'https://orders.example' not found\n");
  });
});
