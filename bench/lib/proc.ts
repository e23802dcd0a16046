// Child server processes: spawn in their own process group, watch for an
// early exit, poll readiness, read RSS from /proc, stop cleanly (SIGTERM,
// then SIGKILL of the whole group so no worker is ever left behind).
import { appendFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import type { ProcessRss } from './types.ts';

export interface ServerProcess {
  role: string;
  pid: number;
  spawnedAt: number;
  child: ChildProcess;
  /** last lines written by the process (stdout and stderr) */
  tail(): string[];
  exited(): boolean;
  assertAlive(): void;
  /** SIGTERM the process, wait up to graceMs, then SIGKILL its process group */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

const TAIL_LINES = 40;

export function spawnServer(role: string, command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): ServerProcess {
  const spawnedAt = Date.now();
  const child = spawn(command, args, {
    cwd,
    env,
    // own process group: a final SIGKILL to -pid also reaches cluster workers
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${role}: could not start ${command}`);
  const pid = child.pid;
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      lines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
      if (lines.length > TAIL_LINES) lines.shift();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  // BENCH_SERVER_LOG=<file>: everything the servers print, e.g. with BENCH_NODE_ARGS=--trace-gc
  const logFile = process.env.BENCH_SERVER_LOG;
  if (logFile) {
    const tee = (chunk: Buffer) => appendFileSync(logFile, chunk);
    child.stdout?.on('data', tee);
    child.stderr?.on('data', tee);
  }
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  child.once('error', (err) => collect(Buffer.from(`spawn error: ${err.message}`)));

  const lastMeaningfulLine = () => {
    const ignore = /Use Node\.js v2\d|ExperimentalWarning|--trace-warnings|^\s*at /;
    return [...lines].reverse().find((l) => !ignore.test(l)) ?? '(no output)';
  };

  return {
    role,
    pid,
    spawnedAt,
    child,
    tail: () => [...lines],
    exited: () => exit !== undefined,
    assertAlive() {
      if (exit) throw new Error(`${role} server exited (code ${exit.code}, signal ${exit.signal}): ${lastMeaningfulLine()}`);
    },
    async stop(graceMs = 15_000) {
      if (exit) return { ...exit, killed: false };
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        exitPromise.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), graceMs);
        }),
      ]);
      clearTimeout(timer);
      // Whatever happened, nothing of the group may survive (cluster workers
      // whose primary died, a loader helper process…).
      killGroup(pid);
      if (timedOut) await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 2_000))]);
      return { ...(exit ?? { code: null, signal: 'SIGKILL' as NodeJS.Signals }), killed: timedOut };
    },
  };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // no such group: everything is gone already
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200; fails early if the process exits. */
export async function waitUntilReady(url: string, proc: ServerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    proc.assertAlive();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  proc.assertAlive();
  throw new Error(`${proc.role} server not ready after ${timeoutMs / 1000} s (${url}: ${last})`);
}

function readStatus(pid: number): { rssKb: number; ppid: number; name: string } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    const ppid = /^PPid:\s+(\d+)/m.exec(status);
    const name = /^Name:\s+(.*)$/m.exec(status);
    return { rssKb: rss ? Number(rss[1]) : 0, ppid: ppid ? Number(ppid[1]) : 0, name: name ? name[1]!.trim() : '' };
  } catch {
    return undefined;
  }
}

/** Node child processes of `pid` (cluster workers), found by scanning /proc. */
export function nodeChildren(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStatus(Number(entry));
    if (s && s.ppid === pid && s.name.startsWith('node')) out.push(Number(entry));
  }
  return out.sort((a, b) => a - b);
}

/** VmRSS of the process and, with `withWorkers`, of its node children. */
export function rssOf(pid: number, role: string, withWorkers: boolean): ProcessRss[] {
  const main = readStatus(pid);
  if (!main) return [];
  const list: ProcessRss[] = [{ pid, role, rssKb: main.rssKb }];
  if (withWorkers) {
    for (const c of nodeChildren(pid)) {
      const s = readStatus(c);
      if (s) list.push({ pid: c, role: `${role} worker`, rssKb: s.rssKb });
    }
  }
  return list;
}
