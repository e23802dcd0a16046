// A change and its audit event are one: written in the same transaction, so
// a change that cannot be audited does not happen. Before, the CLI recorded
// its events after the change had committed: a failing audit insert left a
// client behind whose one-time secret was never shown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

describe('audit events are written with their change, or neither is', () => {
  let db: TestDatabase;
  let h: DbHandle;

  beforeAll(async () => {
    db = await createTestDatabase();
    h = openDb({ url: db.url, poolSize: 2 });
    // the CLI creates the built-in resources on first use: do that before audit inserts start failing
    expect((await cli(db.url, ['resources', 'list'])).code).toBe(0);
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  /** Runs `fn` while every insert into audit_events fails (a real trigger in the test database). */
  async function withBrokenAudit(fn: () => Promise<void>): Promise<void> {
    await h.prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit trail unavailable'; END $$`);
    await h.prisma.$executeRawUnsafe('CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()');
    try {
      await fn();
    } finally {
      await h.prisma.$executeRawUnsafe('DROP TRIGGER refuse_audit ON audit_events');
      await h.prisma.$executeRawUnsafe('DROP FUNCTION refuse_audit()');
    }
  }

  it('clients create: when the audit insert fails, no secret is printed and no client is left behind', async () => {
    await withBrokenAudit(async () => {
      for (const json of [false, true]) {
        const r = await cli(db.url, ['clients', 'create', '--id', 'worker', '--name', 'Worker', '--grant', 'client_credentials', ...(json ? ['--json'] : [])]);
        expect(r.code).not.toBe(0);
        expect(r.stdout).toBe('');
        expect(r.stderr).not.toMatch(/client_secret|[A-Za-z0-9_-]{43}/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(await h.prisma.client.findUnique({ where: { id: 'worker' } })).toBeNull();
      }
    });
  });

  it('normally the secret is shown once, and the client and its audit event both exist', async () => {
    const r = await cli(db.url, ['clients', 'create', '--id', 'worker', '--name', 'Worker', '--grant', 'client_credentials', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const secret = r.json<{ client_secret: string }>().client_secret;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(await h.prisma.client.findUnique({ where: { id: 'worker' } })).not.toBeNull();
    const events = await h.prisma.auditEvent.findMany({ where: { action: 'client.create', targetId: 'worker' } });
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events.map((e) => e.details))).not.toContain(secret);
    const shown = await cli(db.url, ['clients', 'show', 'worker', '--json']);
    expect(shown.stdout).not.toContain(secret);
  });

  it('users create and keys rotate: a failing audit insert leaves nothing behind either', async () => {
    const keysBefore = await h.prisma.signingKey.count();
    await withBrokenAudit(async () => {
      const u = await cli(db.url, ['users', 'create', '--email', 'nobody@example.com']);
      expect(u.code).not.toBe(0);
      expect(await h.prisma.account.count({ where: { email: 'nobody@example.com' } })).toBe(0);
      const k = await cli(db.url, ['keys', 'rotate', '--lead', '0']);
      expect(k.code).not.toBe(0);
      expect(await h.prisma.signingKey.count()).toBe(keysBefore);
    });
  });
});
