import { mkdtempSync, mkdirSync, writeFileSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrate, MigrationError } from '../../src/db/migrate.ts';
import { describeSchema, loadSchemaEngine, schemaSql } from '../../scripts/schema-engine.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ empty: true });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('apply every migration once and record it as prisma migrate deploy does', async () => {
    const first = await migrate(db.url);
    expect(first.applied.length).toBeGreaterThan(0);
    const rows = await query<{ migration_name: string; checksum: string; applied_steps_count: number; finished_at: Date }>(
      db.url,
      'SELECT migration_name, checksum, applied_steps_count, finished_at FROM _prisma_migrations ORDER BY migration_name',
    );
    expect(rows.map((r) => r.migration_name)).toEqual(first.applied);
    for (const r of rows) {
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(r.applied_steps_count).toBe(1);
      expect(r.finished_at).toBeInstanceOf(Date);
    }
  });

  it('is idempotent: a second run applies nothing', async () => {
    const again = await migrate(db.url);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toBeGreaterThan(0);
  });

  it('produces exactly prisma/schema.prisma (no drift)', async () => {
    // Build a second database straight from schema.prisma and compare catalogs.
    const fromSchema = await createTestDatabase({ empty: true });
    const engine = await loadSchemaEngine(fromSchema.url);
    try {
      const sql = await schemaSql(engine);
      expect(sql).toContain('CREATE TABLE');
      await query(fromSchema.url, sql);
      const migrated = await describeSchema(db.url);
      expect(migrated.length).toBeGreaterThan(50);
      expect(migrated).toEqual(await describeSchema(fromSchema.url));
    } finally {
      engine.free();
      await fromSchema.drop();
    }
  });

  it('applies each migration exactly once when several instances start at once', async () => {
    const fresh = await createTestDatabase({ empty: true });
    try {
      const results = await Promise.all([migrate(fresh.url), migrate(fresh.url), migrate(fresh.url)]);
      const total = results.reduce((n, r) => n + r.applied.length, 0);
      const rows = await query<{ n: string }>(fresh.url, 'SELECT count(*) AS n FROM _prisma_migrations');
      expect(total).toBe(Number(rows[0]!.n));
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    } finally {
      await fresh.drop();
    }
  });

  it('rolls back a failing migration completely and reports it in one line', async () => {
    const fresh = await createTestDatabase({ empty: true });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-mig-'));
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      mkdirSync(path.join(dir, '29990101000000_broken'));
      writeFileSync(
        path.join(dir, '29990101000000_broken', 'migration.sql'),
        'CREATE TABLE half_written (id int);\nSELECT * FROM no_such_table;\n',
      );
      const err = await migrate(fresh.url, dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MigrationError);
      expect((err as Error).message).toMatch(/^migration 29990101000000_broken failed: .*no_such_table/);
      expect((err as Error).message).not.toContain('\n');
      const tables = await query<{ n: string }>(fresh.url, "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'half_written'");
      expect(tables[0]!.n).toBe('0');
      const recorded = await query<{ migration_name: string }>(fresh.url, 'SELECT migration_name FROM _prisma_migrations');
      expect(recorded.map((r) => r.migration_name)).not.toContain('29990101000000_broken');
      // the earlier migrations did land and are not re-applied
      expect((await migrate(fresh.url)).applied).toEqual([]);
    } finally {
      await fresh.drop();
    }
  });

  it('refuses a migration that was edited after it was applied', async () => {
    const fresh = await createTestDatabase({ empty: true });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-mig-'));
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      await migrate(fresh.url, dir);
      const [first] = (await query<{ migration_name: string }>(fresh.url, 'SELECT migration_name FROM _prisma_migrations'));
      writeFileSync(path.join(dir, first!.migration_name, 'migration.sql'), '-- edited\n');
      await expect(migrate(fresh.url, dir)).rejects.toThrow(/modified after it was applied/);
    } finally {
      await fresh.drop();
    }
  });
});
