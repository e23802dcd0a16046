// This VM's CPU speed drifts: a fixed single-core task ran anywhere from
// 349k to 497k times per second within half an hour on the same machine.
// The bench times this task before and after a run so that numbers from
// different runs can be read against the speed the machine had then (ratios
// within one run do not need it; absolute req/s do).
import { createHash } from 'node:crypto';

const BLOCK = Buffer.alloc(1024, 7);

/** sha-256 digests of 1 KiB per second on this thread, over `ms`. */
export function machineSpeed(ms = 2_000): number {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) createHash('sha256').update(BLOCK).digest();
    n += 100;
  }
  return Math.round(n / (ms / 1000));
}
