// As root, the embedded PostgreSQL runs as the `postgres` OS user. When that
// user cannot reach the binaries or DATA_DIR (a clone under a 0700 home such
// as /root/gatehouse), Gatehouse runs a copy of the binaries and keeps the
// cluster in a root-owned, world-readable place, with DATA_DIR/pg a symlink
// to it: it starts, and the data persists across restarts.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../helpers/db.ts';
import { EmbeddedDatabaseError, platformNativeDir, startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { postmasterPid, stopLeftoverPostgres } from '../server/process.ts';

const asRoot = process.getuid?.() === 0;

const query = sql;

/** The real uid a process runs as (/proc/<pid>/status). */
function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

describe.skipIf(!asRoot)(`embedded PostgreSQL started by root from a 0700 folder${asRoot ? '' : ' (skipped: needs root)'}`, () => {
  let home: string; // plays /root: 0700
  let reachable: string; // plays /var/lib/gatehouse
  let nativeDir: string;
  let dataDir: string;
  const started: EmbeddedDatabase[] = [];

  beforeAll(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-home-')); // mkdtemp: 0700, as /root is
    reachable = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-reachable-'));
    chmodSync(reachable, 0o755);
    // the binaries as a clone in that home has them: behind the 0700 folder
    nativeDir = path.join(home, 'native');
    symlinkSync(platformNativeDir(), nativeDir);
    dataDir = path.join(home, 'clone', '.data');
  });
  afterEach(async () => {
    for (const db of started.splice(0)) await db.stop().catch(() => {});
  });
  afterAll(async () => {
    if (home) await stopLeftoverPostgres(path.join(home, 'clone', '.data'));
    rmSync(home, { recursive: true, force: true });
    rmSync(reachable, { recursive: true, force: true });
  });

  const start = async () => {
    const db = await startEmbeddedDatabase({ dataDir, nativeDir, reachableRoot: reachable });
    started.push(db);
    return db;
  };

  it('starts as the postgres user from a copy of the binaries, the cluster out of the 0700 folder', async () => {
    const db = await start();
    expect(db.shared).toBe(false);
    expect(await query(db.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await query(db.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$persists$$)');

    const pid = postmasterPid(dataDir)!;
    expect(uidOf(pid)).toBe(Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()));
    expect(uidOf(pid)).not.toBe(0);
    expect(realpathSync(`/proc/${pid}/exe`).startsWith(path.join(reachable, 'postgres') + '/')).toBe(true);
    const link = path.join(dataDir, 'pg');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link).startsWith(path.join(reachable, 'clusters') + '/')).toBe(true);
    // the copy is root's and nobody else may change it
    const copy = path.dirname(path.dirname(realpathSync(`/proc/${pid}/exe`)));
    expect(statSync(copy).uid).toBe(0);
    expect(statSync(copy).mode & 0o022).toBe(0);
    // the password stays in DATA_DIR, readable by root alone
    expect(statSync(path.join(dataDir, 'pg.json')).mode & 0o077).toBe(0);
  });

  it('restarts on the same data, reusing the copy', async () => {
    const copies = () => readFileSync(path.join(reachable, 'postgres', readdir(path.join(reachable, 'postgres'))[0]!, '.complete'), 'utf8');
    const before = copies();
    const db = await start();
    expect(await query(db.url, 'SELECT v FROM kept')).toEqual([{ v: 'persists' }]);
    expect(readdir(path.join(reachable, 'postgres'))).toHaveLength(1);
    expect(copies()).toBe(before);
  });

  it('a deleted DATA_DIR starts afresh (the orphaned cluster is not reused)', async () => {
    rmSync(dataDir, { recursive: true, force: true });
    const db = await start();
    expect(await query(db.url, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'kept'")).toEqual([{ n: 0 }]);
    expect(readdir(path.join(reachable, 'clusters'))).toHaveLength(1);
  });

  it('refuses a place for the copy that others may write to', async () => {
    const unsafe = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-unsafe-'));
    try {
      mkdirSync(path.join(unsafe, 'postgres'));
      chmodSync(path.join(unsafe, 'postgres'), 0o777);
      const other = path.join(home, 'other', '.data');
      await expect(startEmbeddedDatabase({ dataDir: other, nativeDir, reachableRoot: unsafe })).rejects.toThrow(EmbeddedDatabaseError);
      await expect(startEmbeddedDatabase({ dataDir: other, nativeDir, reachableRoot: unsafe })).rejects.toThrow(/must be a directory owned by root and writable only by it/);
      expect(existsSync(path.join(other, 'pg', 'PG_VERSION'))).toBe(false);
    } finally {
      rmSync(unsafe, { recursive: true, force: true });
    }
  });
});

function readdir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
}
