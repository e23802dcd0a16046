import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedFields, listAuditEvents, pruneAuditEvents, recordAudit, scrub } from '../../src/audit/audit.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

describe('audit trail', () => {
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

  it('scrub drops secret-looking fields at any depth', () => {
    const out = scrub({
      name: 'svc',
      clientSecret: 'x',
      nested: { password: 'p', passwordHash: 'h', secretDigest: 'd', ok: 1, jwk: { kty: 'RSA', d: 'private', n: 'public' } },
      list: [{ refresh_token: 't', keep: true }],
      when: new Date('2026-01-01T00:00:00Z'),
    });
    expect(out).toEqual({
      name: 'svc',
      nested: { ok: 1, jwk: { kty: 'RSA', n: 'public' } },
      list: [{ keep: true }],
      when: '2026-01-01T00:00:00.000Z',
    });
  });

  it('changedFields names the fields that differ, ignoring bookkeeping', () => {
    expect(changedFields({ a: 1, b: [1], version: 1, updatedAt: 1 }, { a: 1, b: [2], c: true, version: 2, updatedAt: 2 })).toEqual(['b', 'c']);
  });

  it('records events without secrets and lists them newest first with filters and pages', async () => {
    await recordAudit(h.prisma, {
      action: 'client.create',
      actor: { type: 'client', id: 'admin-bot' },
      target: { type: 'client', id: 'svc-1' },
      requestId: 'req-1',
      ip: '127.0.0.1',
      details: { after: { name: 'svc-1', client_secret: 'must-not-appear' } },
    });
    for (let i = 0; i < 5; i++) {
      await recordAudit(h.prisma, { action: 'login.failure', actor: { type: 'anonymous' }, target: { type: 'user', id: `u${i}` } });
    }
    const raw = await h.prisma.$queryRaw<{ details: unknown }[]>`SELECT details FROM audit_events`;
    expect(JSON.stringify(raw)).not.toContain('must-not-appear');

    const all = await listAuditEvents(h.prisma, {});
    expect(all.items.map((e) => e.action)).toEqual([...Array(5).fill('login.failure'), 'client.create']);
    const created = (await listAuditEvents(h.prisma, { action: 'client.create' })).items[0]!;
    expect(created).toMatchObject({ actorType: 'client', actorId: 'admin-bot', targetId: 'svc-1', requestId: 'req-1', ip: '127.0.0.1' });
    expect((await listAuditEvents(h.prisma, { action: 'login.*' })).items).toHaveLength(5);

    const p1 = await listAuditEvents(h.prisma, { limit: 4 });
    expect(p1.items).toHaveLength(4);
    const p2 = await listAuditEvents(h.prisma, { limit: 4, cursor: p1.nextCursor ?? undefined });
    expect(p2.items).toHaveLength(2);
    expect(p2.nextCursor).toBeNull();
    expect(new Set([...p1.items, ...p2.items].map((e) => e.id)).size).toBe(6);
  });

  it('prunes only events older than the retention period', async () => {
    await h.prisma.$executeRaw`UPDATE audit_events SET occurred_at = now() - interval '100 days' WHERE action = 'login.failure'`;
    // one batch at most: the cleanup job (src/db/cleanup.ts) runs it until a batch comes back short
    expect(await pruneAuditEvents(h.prisma, 2, 90)).toBe(2);
    expect(await pruneAuditEvents(h.prisma, 10, 90)).toBe(3);
    expect(await pruneAuditEvents(h.prisma, 10, 90)).toBe(0);
    expect((await listAuditEvents(h.prisma, {})).items.map((e) => e.action)).toEqual(['client.create']);
  });

  it('gatehouse audit list shows events and rejects bad filters in one line', async () => {
    const r = await cli(db.url, ['audit', 'list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/client\.create\s+client:admin-bot\s+client:svc-1/);
    const json = await cli(db.url, ['audit', 'list', '--action', 'client.create', '--json']);
    expect(json.json<{ items: { action: string }[] }>().items[0]!.action).toBe('client.create');
    for (const args of [['--since', 'yesterday'], ['--limit', '0'], ['--cursor', 'abc']]) {
      const bad = await cli(db.url, ['audit', 'list', ...args]);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
