// CPU accounting for one run from /proc: how many cores the server, the load
// generator (this process) and everything else on the machine used. "Others"
// above ~0.2 cores means the machine was busy and the numbers are noisy.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Busy jiffies of all CPUs together (everything but idle and iowait). */
function systemBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return user + nice + system + irq + softirq + steal;
}

/** utime + stime of one process, in jiffies (0 if it is gone). */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after "pid (comm) ": state is field 3, utime 14, stime 15 → indexes 11 and 12 here
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

export interface CpuUse {
  /** cores used by the server under load (all its processes) */
  serverCores: number;
  /** cores used by the bench process (autocannon) */
  loadGeneratorCores: number;
  /** cores used by everything else on the machine */
  otherCores: number;
}

/**
 * Starts measuring. `serverPids` are the processes of the target under load;
 * `idlePids` are our other servers (counted neither as server nor as others).
 */
export function startCpuMeter(serverPids: () => number[], idlePids: () => number[]): () => CpuUse {
  const t0 = process.hrtime.bigint();
  const sys0 = systemBusyTicks();
  const srvPids0 = serverPids();
  const srv0 = new Map(srvPids0.map((p) => [p, processTicks(p)]));
  const idle0 = new Map(idlePids().map((p) => [p, processTicks(p)]));
  const self0 = processTicks(process.pid);
  return () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const hz = ticksPerSecond() * seconds;
    const sys = systemBusyTicks() - sys0;
    let srv = 0;
    for (const p of new Set([...srvPids0, ...serverPids()])) srv += processTicks(p) - (srv0.get(p) ?? 0);
    let idle = 0;
    for (const [p, t] of idle0) idle += processTicks(p) - t;
    const self = processTicks(process.pid) - self0;
    const round = (x: number) => Math.round(x * 100) / 100;
    return { serverCores: round(srv / hz), loadGeneratorCores: round(self / hz), otherCores: round(Math.max(0, sys - srv - idle - self) / hz) };
  };
}

/** Cores used by processes other than `ours` over the next `ms` milliseconds. */
async function otherCoresOver(ours: () => number[], ms: number): Promise<number> {
  const stop = startCpuMeter(ours, () => []);
  await new Promise((r) => setTimeout(r, ms));
  return stop().otherCores;
}

/**
 * Waits until the rest of the machine has used less than `maxCores` for three
 * one-second windows in a row, at most `maxWaitSec`. Returns the seconds
 * waited, or undefined if the machine stayed busy.
 */
export async function waitForQuiet(ours: () => number[], maxCores: number, maxWaitSec: number): Promise<number | undefined> {
  const t0 = Date.now();
  let quiet = 0;
  while (Date.now() - t0 < maxWaitSec * 1000) {
    quiet = (await otherCoresOver(ours, 1_000)) < maxCores ? quiet + 1 : 0;
    if (quiet >= 3) return Math.round((Date.now() - t0) / 1000);
  }
  return undefined;
}
