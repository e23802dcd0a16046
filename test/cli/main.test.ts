import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { cli } from '../helpers/cli.ts';

describe('gatehouse CLI', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ empty: true });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('prints help listing the commands', async () => {
    const r = await cli(db.url, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('serve');
    expect(r.stdout).toContain('migrate');
  });

  it('shows per-command help', async () => {
    const r = await cli(db.url, ['migrate', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: gatehouse migrate/);
  });

  it('rejects an unknown command with one line and exit 2', async () => {
    const r = await cli(db.url, ['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("gatehouse: unknown command 'frobnicate' (see gatehouse --help)\n");
  });

  it('rejects an unknown flag with one line', async () => {
    const r = await cli(db.url, ['migrate', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--bogus');
  });

  it('rejects a bad environment value naming the variable', async () => {
    const r = await cli(db.url, ['migrate'], { env: { PORT: 'eighty' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('gatehouse: invalid PORT: must be a whole number\n');
  });

  it('migrate applies migrations, then reports the database up to date', async () => {
    const first = await cli(db.url, ['migrate', '--json']);
    expect(first.code).toBe(0);
    expect(first.json<{ applied: string[] }>().applied.length).toBeGreaterThan(0);
    const second = await cli(db.url, ['migrate']);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/up to date/);
  });

  it('fails with one line when the database is unreachable', async () => {
    const r = await cli('postgresql://postgres@127.0.0.1:1/nothing', ['migrate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gatehouse: cannot reach the database at 127\.0\.0\.1:1\/nothing: .+\n$/);
  });
});
