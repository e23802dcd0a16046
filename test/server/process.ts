// Helpers for process-level tests: run the real `gatehouse` CLI as a child
// process, wait for output or exit with a deadline, and make sure nothing is
// left running whatever happens in the test.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(REPO_ROOT, 'src/cli/main.ts');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** settles when the process has exited */
  exited: Promise<Exit>;
  /** resolves with the first stdout line matching re, or throws after ms */
  waitForStdout(re: RegExp, ms?: number): Promise<string>;
  /** resolves with the exit status, or throws after ms (the process is left to cleanup) */
  waitForExit(ms?: number): Promise<Exit>;
  /** a summary of what the process printed, for assertion messages */
  describe(): string;
}

const running = new Set<Proc>();

/** A minimal, explicit environment: nothing leaks in from the test runner's. */
export function baseEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs `node --import tsx <script> ...args` with exactly `env`. */
export function spawnNode(script: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const proc: Proc = {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    describe: () => `exit=${child.exitCode ?? child.signalCode ?? 'running'}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`,
    async waitForStdout(re, ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const line = out.split('\n').find((l) => re.test(l));
        if (line !== undefined) return line;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`process exited before printing ${re}\n${proc.describe()}`);
        }
        if (Date.now() > deadline) throw new Error(`no ${re} on stdout within ${ms} ms\n${proc.describe()}`);
        await sleep(25);
      }
    },
    async waitForExit(ms = 20_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process did not exit within ${ms} ms\n${proc.describe()}`)), ms);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** `gatehouse <args>` as a child process. */
export function spawnGatehouse(args: string[], env: NodeJS.ProcessEnv): Proc {
  return spawnNode(CLI, args, env);
}

/** SIGKILLs every child process still running (call from afterEach). */
export async function killAll(): Promise<void> {
  const procs = [...running];
  for (const p of procs) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
  await Promise.all(procs.map((p) => p.waitForExit(10_000).catch(() => undefined)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port that was free a moment ago (PORT=0 cannot be discovered from outside). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** true if something accepts TCP connections on 127.0.0.1:port */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls until check() is true; throws after ms. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * stderr as the lines Gatehouse wrote. oidc-provider itself prints one
 * "Unsupported runtime" warning when loaded on Node.js 20; that line is not
 * Gatehouse's and is dropped here.
 */
export function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => !l.startsWith('oidc-provider WARNING: Unsupported runtime'));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** pid of the postmaster recorded in DATA_DIR/pg/postmaster.pid, if any */
export function postmasterPid(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * pids of running postgres postmasters whose data directory is DATA_DIR/pg
 * (from `ps`). A backend just forked by the postmaster shows the postmaster's
 * command line until it retitles itself: only processes whose parent is not
 * such a postmaster count.
 */
export function postmastersOf(dataDir: string): number[] {
  const clusterDir = path.join(path.resolve(dataDir), 'pg');
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  const matches = out
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .filter((m) => m[3]!.split(/\s+/).some((arg, i, all) => arg === clusterDir && all[i - 1] === '-D'))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]) }));
  const pids = new Set(matches.map((m) => m.pid));
  return matches.filter((m) => !pids.has(m.ppid)).map((m) => m.pid);
}

/**
 * Stops whatever postgres still runs on DATA_DIR/pg (cleanup after a test
 * that failed or orphaned one on purpose): SIGINT, then SIGKILL.
 */
export async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  // Only processes that `ps` shows as a postgres on this very directory.
  for (const pid of postmastersOf(dataDir)) {
    if (!isAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      continue;
    }
    await until(`postgres ${pid} to stop`, () => !isAlive(pid), 10_000).catch(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    });
  }
}
