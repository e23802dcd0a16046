// CLI details a new user meets first: --version, flags given before the
// command, a clean message for an unknown flag, a header on `users list`,
// and the OS user as the actor of `apply` and `keys rotate` audit events.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os, { userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const OS_USER = process.env.SUDO_USER || userInfo().username;

/** Quotes of each kind come in pairs. */
function balanced(line: string): boolean {
  return (line.match(/'/g) ?? []).length % 2 === 0 && (line.match(/"/g) ?? []).length % 2 === 0;
}

describe('gatehouse CLI on first use', () => {
  let db: TestDatabase;
  let h: DbHandle;
  let tmp: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    h = openDb({ url: db.url });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cli-'));
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('--version prints the package version', async () => {
    for (const flag of ['--version', '-v']) {
      const r = await cli(db.url, [flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`gatehouse ${VERSION}\n`);
    }
    const json = await cli(db.url, ['--version', '--json']);
    expect(json.json()).toEqual({ version: VERSION });
  });

  it('takes a command’s flags before the command name', async () => {
    // flag values are not mistaken for command words
    const help = await cli(db.url, ['--workers', '2', 'serve', '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: gatehouse serve/);
    // the value reaches the command: an invalid one is refused by serve itself
    const bad = await cli(db.url, ['--workers', '0', 'serve']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('gatehouse: --workers must be a whole number between 1 and 64\n');
    const eq = await cli(db.url, ['--workers=999', 'serve']);
    expect(eq.stderr).toBe('gatehouse: --workers must be a whole number between 1 and 64\n');
    // two-word commands too, with --json in front
    await cli(db.url, ['users', 'create', '--email', 'zed@example.com']);
    const list = await cli(db.url, ['--json', '--email', 'zed@', 'users', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.json<{ email: string }[]>().map((u) => u.email)).toEqual(['zed@example.com']);
  });

  it('an unknown flag gets one line with balanced quotes', async () => {
    for (const args of [['users', 'list', '--foo'], ['--foo', 'users', 'list'], ['migrate', '-x'], ['keys', 'rotate', '--lead']]) {
      const r = await cli(db.url, args);
      expect(r.code, args.join(' ')).toBe(2);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines, r.stderr).toHaveLength(1);
      expect(balanced(lines[0]!), lines[0]).toBe(true);
    }
    expect((await cli(db.url, ['users', 'list', '--foo'])).stderr).toBe("gatehouse: unknown option '--foo' (see gatehouse users list --help)\n");
    expect((await cli(db.url, ['keys', 'rotate', '--lead'])).stderr).toBe("gatehouse: option '--lead' needs a value (see gatehouse keys rotate --help)\n");
  });

  it('users list has a header row; --json is unchanged', async () => {
    await cli(db.url, ['users', 'create', '--email', 'amy@example.com', '--name', 'Amy']);
    const r = await cli(db.url, ['users', 'list']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^EMAIL\s+STATUS\s+ID\s+NAME$/);
    const amy = lines.find((l) => l.startsWith('amy@example.com'))!;
    expect(amy).toMatch(/^amy@example\.com\s+enabled\s+\S+\s+Amy$/);
    const json = await cli(db.url, ['users', 'list', '--json']);
    const rows = json.json<Record<string, unknown>[]>();
    expect(rows.find((u) => u.email === 'amy@example.com')).toMatchObject({ email: 'amy@example.com', name: 'Amy', disabled: false });
  });

  it('apply and keys rotate record the OS user as the actor', async () => {
    const file = path.join(tmp, 'g.yaml');
    writeFileSync(file, 'resources:\n  - identifier: https://audited.example.com\n    scopes: [a:read]\n');
    const applied = await cli(db.url, ['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);
    const rotated = await cli(db.url, ['keys', 'rotate', '--lead', '0']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const { items } = await listAuditEvents(h.prisma, {});
    const create = items.find((e) => e.action === 'resource.create');
    const rotate = items.find((e) => e.action === 'key.rotate');
    expect(create).toMatchObject({ actorType: 'operator', actorId: OS_USER });
    expect(rotate).toMatchObject({ actorType: 'operator', actorId: OS_USER });
  });
});
