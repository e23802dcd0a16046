// Admin changes made through the CLI land in the audit trail, without secrets.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

describe('CLI changes are audited', () => {
  let db: TestDatabase;
  let h: DbHandle;
  beforeAll(async () => {
    db = await createTestDatabase();
    h = openDb({ url: db.url });
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('records create, update, rotate and delete for clients, resources and roles', async () => {
    const ok = async (...args: string[]) => {
      const r = await cli(db.url, args);
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    await ok('resources', 'create', '--identifier', 'https://api.example.com', '--scope', 'a:read a:write');
    await ok('resources', 'update', 'https://api.example.com', '--ttl', '120');
    const created = await ok('clients', 'create', '--id', 'svc', '--name', 'Service', '--grant', 'client_credentials', '--resource', 'https://api.example.com', '--scope', 'a:read', '--json');
    const secret = created.json<{ client_secret: string }>().client_secret;
    await ok('clients', 'update', 'svc', '--name', 'Renamed');
    const rotated = await ok('clients', 'rotate-secret', 'svc', '--json');
    const secret2 = rotated.json<{ client_secret: string }>().client_secret;
    await ok('roles', 'create', '--name', 'reader', '--resource', 'https://api.example.com', '--scope', 'a:read');
    await ok('roles', 'delete', 'reader');
    await ok('clients', 'delete', 'svc');
    await ok('resources', 'delete', 'https://api.example.com');

    const { items } = await listAuditEvents(h.prisma, {});
    expect(items.map((e) => e.action).reverse()).toEqual([
      'resource.create',
      'resource.update',
      'client.create',
      'client.update',
      'client.rotate_secret',
      'role.create',
      'role.delete',
      'client.delete',
      'resource.delete',
    ]);
    for (const e of items) expect(e).toMatchObject({ actorType: 'operator', actorId: process.env.SUDO_USER || userInfo().username });
    const update = items.find((e) => e.action === 'client.update')!;
    expect(update.details).toMatchObject({ changes: ['name'], before: { name: 'Service' }, after: { name: 'Renamed' } });
    const resUpdate = items.find((e) => e.action === 'resource.update')!;
    expect(resUpdate.details).toMatchObject({ changes: ['accessTokenTtl'] });
    const raw = JSON.stringify(items);
    expect(raw).not.toContain(secret);
    expect(raw).not.toContain(secret2);
    expect(raw).not.toMatch(/digest/i);
  });

  it('apply and keys rotate record the OS user too (they used to record no actor id)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-audit-')), 'config.json');
    writeFileSync(file, JSON.stringify({ resources: [{ identifier: 'https://applied.example.com', scopes: ['x'] }] }));
    expect((await cli(db.url, ['apply', '-f', file])).code).toBe(0);
    expect((await cli(db.url, ['keys', 'rotate', '--lead', '0'])).code).toBe(0);
    const me = process.env.SUDO_USER || userInfo().username;
    const applied = (await listAuditEvents(h.prisma, { action: 'resource.create' })).items.find((e) => e.targetId === 'https://applied.example.com');
    expect(applied).toMatchObject({ actorType: 'operator', actorId: me, details: expect.objectContaining({ via: 'apply' }) });
    const [rotated] = (await listAuditEvents(h.prisma, { action: 'key.rotate' })).items;
    expect(rotated).toMatchObject({ actorType: 'operator', actorId: me, targetType: 'key' });
  });

  it('a refused change records nothing', async () => {
    const before = (await listAuditEvents(h.prisma, {})).items.length;
    const r = await cli(db.url, ['clients', 'update', 'no-such-client', '--name', 'x']);
    expect(r.code).not.toBe(0);
    expect((await listAuditEvents(h.prisma, {})).items.length).toBe(before);
  });
});
