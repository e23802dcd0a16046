// The embedded PostgreSQL default (no DATABASE_URL): start, stop, restart on
// the same data, recovery after the owning process was killed, sharing with a
// live owner, stale pid files, and `gatehouse serve` on it end to end.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from '../helpers/db.ts';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import {
  baseEnv,
  errorLines,
  freePort,
  isAlive,
  killAll,
  postmasterPid,
  postmastersOf,
  spawnGatehouse,
  spawnNode,
  stopLeftoverPostgres,
  until,
  type Proc,
} from '../server/process.ts';

const OWNER = fileURLToPath(new URL('../server/fixtures/embedded-owner.ts', import.meta.url));

const dataDirs: string[] = [];
const started: EmbeddedDatabase[] = [];
/** unrelated processes a test started (`sleep`), killed afterwards */
const strays: number[] = [];

function tempDataDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-embedded-'));
  chmodSync(dir, 0o755); // postgres runs as the `postgres` OS user when we are root
  dataDirs.push(dir);
  return dir;
}

async function start(dataDir: string): Promise<EmbeddedDatabase> {
  const db = await startEmbeddedDatabase({ dataDir });
  started.push(db);
  return db;
}

const query = sql;

/** A child process that starts the embedded database on dataDir and keeps it. */
async function owner(dataDir: string, ...flags: string[]): Promise<{ proc: Proc; url: string; shared: boolean }> {
  const proc = spawnNode(OWNER, [dataDir, ...flags], baseEnv({}));
  const line = await proc.waitForStdout(/^\{/, 60_000);
  return { proc, ...(JSON.parse(line) as { url: string; shared: boolean }) };
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

afterEach(async () => {
  await killAll();
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const db of started.splice(0)) await db.stop().catch(() => {});
  for (const dir of dataDirs.splice(0)) {
    await stopLeftoverPostgres(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('embedded PostgreSQL', () => {
  it('initialises, serves connections, stops, and restarts on the same data and password', async () => {
    const dir = tempDataDir();
    const db = await start(dir);
    expect(db.shared).toBe(false);
    await query(db.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$still here$$)');
    const passwordFile = readFileSync(path.join(dir, 'pg.json'), 'utf8');
    const pid = postmasterPid(dir)!;
    expect(pid).toBeGreaterThan(0);
    expect(postmastersOf(dir)).toEqual([pid]);

    await db.stop();
    await until('the postmaster to be gone', () => !isAlive(pid));
    expect(postmastersOf(dir)).toEqual([]);
    expect(existsSync(path.join(dir, 'pg', 'postmaster.pid'))).toBe(false);

    const again = await start(dir);
    expect(again.shared).toBe(false);
    expect(readFileSync(path.join(dir, 'pg.json'), 'utf8')).toBe(passwordFile);
    expect(new URL(again.url).password).toBe(new URL(db.url).password);
    expect(await query(again.url, 'SELECT v FROM kept')).toEqual([{ v: 'still here' }]);
    await again.stop();
    expect(postmastersOf(dir)).toEqual([]);
  });

  it('recovers after the owning process was SIGKILLed (stops the orphaned postmaster)', async () => {
    const dir = tempDataDir();
    const child = await owner(dir);
    expect(child.shared).toBe(false);
    await query(child.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$survives a crash$$)');
    const orphan = postmasterPid(dir)!;
    expect(parentOf(orphan)).toBe(child.proc.pid);

    child.proc.child.kill('SIGKILL');
    expect((await child.proc.waitForExit()).signal).toBe('SIGKILL');
    expect(isAlive(orphan), 'postgres outlives a SIGKILLed owner').toBe(true);

    const db = await start(dir);
    expect(db.shared).toBe(false);
    expect(isAlive(orphan)).toBe(false);
    expect(postmastersOf(dir)).toEqual([postmasterPid(dir)]);
    expect(await query(db.url, 'SELECT v FROM kept')).toEqual([{ v: 'survives a crash' }]);
    await db.stop();
  });

  it('shares the database of a live owner and does not stop it', async () => {
    const dir = tempDataDir();
    const child = await owner(dir);
    const ownerPid = postmasterPid(dir)!;

    const db = await start(dir);
    expect(db.shared).toBe(true);
    expect(await query(db.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await db.stop();
    expect(isAlive(ownerPid)).toBe(true);
    expect(await query(child.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

    child.proc.child.kill('SIGTERM');
    await child.proc.waitForExit();
    await until('the owner’s postmaster to stop', () => !isAlive(ownerPid));
    expect(postmastersOf(dir)).toEqual([]);
  });

  it('shares through a symlinked DATA_DIR too (the same cluster, not a stale pid file)', async () => {
    const dir = tempDataDir();
    const child = await owner(dir);
    const ownerPid = postmasterPid(dir)!;
    const link = path.join(tempDataDir(), 'link');
    symlinkSync(dir, link);

    const db = await start(link);
    expect(db.shared).toBe(true);
    expect(await query(db.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(postmasterPid(dir)).toBe(ownerPid);
    expect(postmastersOf(dir)).toEqual([ownerPid]);
    await db.stop();
    expect(isAlive(ownerPid)).toBe(true);
    child.proc.child.kill('SIGTERM');
    await child.proc.waitForExit();
  });

  it('a process without signal handlers of its own still stops its postgres on SIGTERM', async () => {
    const dir = tempDataDir();
    const child = await owner(dir, '--no-signal-handler');
    const postmaster = postmasterPid(dir)!;
    child.proc.child.kill('SIGTERM');
    await child.proc.waitForExit();
    await until('the postmaster to stop', () => !isAlive(postmaster));
    expect(postmastersOf(dir)).toEqual([]);
  });

  it('stop() returns when postgres already died on its own', async () => {
    const dir = tempDataDir();
    const db = await start(dir);
    const postmaster = postmasterPid(dir)!;
    process.kill(postmaster, 'SIGKILL');
    await until('the postmaster to die', () => !isAlive(postmaster));
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      db.stop().then(() => 'stopped'),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve('stop() hangs'), 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(result).toBe('stopped');
    // and the data directory is usable again
    const again = await start(dir);
    expect(await query(again.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await again.stop();
  });

  it('ignores a stale postmaster.pid whose process is gone', async () => {
    const dir = tempDataDir();
    const db = await start(dir);
    await query(db.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$x$$)');
    await db.stop();

    // the pid of a process that has exited
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    const stalePid = gone.pid!;
    expect(isAlive(stalePid)).toBe(false);
    const pidFile = path.join(dir, 'pg', 'postmaster.pid');
    writeFileSync(pidFile, `${stalePid}\n${path.join(dir, 'pg')}\n1700000000\n54321\n\n127.0.0.1\n  0  0\nready   \n`);

    const again = await start(dir);
    expect(again.shared).toBe(false);
    expect(await query(again.url, 'SELECT v FROM kept')).toEqual([{ v: 'x' }]);
    await again.stop();
  });

  /**
   * After a crash and a reboot (or a container restart), the pid in a stale
   * postmaster.pid may belong to another, unrelated process. It must be
   * neither signalled nor mistaken for a running database.
   */
  async function strayProcess(script: string): Promise<number> {
    const sh = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    sh.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    if (sh.pid) strays.push(sh.pid);
    await until('the stray process to print its pid', () => /\d+\n/.test(out), 10_000);
    const pid = Number(out.trim());
    strays.push(pid);
    return pid;
  }

  async function stalePidFileNaming(dir: string, pid: number): Promise<void> {
    const db = await start(dir);
    await query(db.url, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$x$$)');
    await db.stop();
    const port = await freePort();
    const pidFile = path.join(dir, 'pg', 'postmaster.pid');
    writeFileSync(pidFile, `${pid}\n${path.join(dir, 'pg')}\n1700000000\n${port}\n\n127.0.0.1\n  0  0\nready   \n`);
  }

  it('does not signal an unrelated process that reuses a stale pid', async () => {
    const dir = tempDataDir();
    // a `sleep` whose parent exited: orphaned, like a daemon
    const stray = await strayProcess('sleep 60 >/dev/null 2>&1 & echo $!');
    await stalePidFileNaming(dir, stray);

    const db = await start(dir);
    expect(db.shared).toBe(false);
    expect(await query(db.url, 'SELECT v FROM kept')).toEqual([{ v: 'x' }]);
    expect(isAlive(stray), 'the unrelated process was signalled').toBe(true);
    await db.stop();
  });

  it('does not share with an unrelated live process that reuses a stale pid', async () => {
    const dir = tempDataDir();
    // a `sleep` whose parent (sh) is alive and is not this process
    const stray = await strayProcess('sleep 60 >/dev/null 2>&1 & echo $!; wait');
    await stalePidFileNaming(dir, stray);

    const db = await start(dir);
    expect(db.shared).toBe(false);
    expect(await query(db.url, 'SELECT v FROM kept')).toEqual([{ v: 'x' }]);
    expect(isAlive(stray)).toBe(true);
    await db.stop();
  });
});

describe('gatehouse serve on the embedded database', () => {
  async function serveEmbedded(dir: string): Promise<{ proc: Proc; base: string }> {
    const port = await freePort();
    // no DATABASE_URL and no secrets: everything comes from DATA_DIR
    const proc = spawnGatehouse(['serve'], baseEnv({ DATA_DIR: dir, PORT: String(port) }));
    await proc.waitForStdout(/^Gatehouse is running\. Issuer: /, 60_000);
    return { proc, base: `http://127.0.0.1:${port}` };
  }

  async function kids(base: string): Promise<string[]> {
    const res = await fetch(`${base}/jwks`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
  }

  it('generates secrets, serves, stops its postgres on SIGTERM, and restarts with the same keys', async () => {
    const dir = tempDataDir();
    const first = await serveEmbedded(dir);
    expect(first.proc.stdout()).toContain(`embedded PostgreSQL in ${dir}/pg`);
    expect(existsSync(path.join(dir, 'secrets.json'))).toBe(true);
    const discovery = await fetch(`${first.base}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
    expect(discovery.status).toBe(200);
    const port = new URL(first.base).port;
    expect(((await discovery.json()) as { issuer: string }).issuer).toBe(`http://localhost:${port}`);
    const firstKids = await kids(first.base);
    expect(firstKids).toHaveLength(3);
    const postmaster = postmasterPid(dir)!;
    expect(postmastersOf(dir)).toEqual([postmaster]);

    first.proc.child.kill('SIGTERM');
    const exit = await first.proc.waitForExit(30_000);
    expect(exit, first.proc.describe()).toEqual({ code: 0, signal: null });
    expect(errorLines(first.proc.stderr()), first.proc.describe()).toEqual([]);
    expect(isAlive(postmaster)).toBe(false);
    expect(postmastersOf(dir)).toEqual([]);
    expect(existsSync(path.join(dir, 'pg', 'postmaster.pid'))).toBe(false);

    const secrets = readFileSync(path.join(dir, 'secrets.json'), 'utf8');
    const second = await serveEmbedded(dir);
    expect(await kids(second.base)).toEqual(firstKids);
    expect(readFileSync(path.join(dir, 'secrets.json'), 'utf8')).toBe(secrets);
    second.proc.child.kill('SIGTERM');
    expect(await second.proc.waitForExit(30_000), second.proc.describe()).toEqual({ code: 0, signal: null });
    expect(postmastersOf(dir)).toEqual([]);
  }, 120_000);
});
