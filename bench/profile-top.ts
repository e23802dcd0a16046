// Summarises a V8 .cpuprofile (from BENCH_CPU_PROF=1 npm run bench):
// the hottest functions by self time, time per area (Gatehouse source
// folders, each npm package, node internals, GC), and Gatehouse functions by
// inclusive time (everything they call), and the heaviest call stacks of the
// top self-time functions.
//
//   npx tsx bench/profile-top.ts <file>.cpuprofile [--top N] [--from S --to S] [--stacks N] [--requests N]
//
// --from/--to keep only samples between S seconds after the profile started
// (≈ when the server process was spawned): use a result's `windowSec` from
// bench/results/latest.json to look at one measured run without start-up;
// --requests (the run's totalRequests) adds main-thread busy ms per request.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const REPO = fileURLToPath(new URL('..', import.meta.url));

function location(url: string): string {
  let p = url;
  if (p.startsWith('file://')) p = fileURLToPath(p.split('?')[0]!);
  if (p.startsWith(REPO)) p = p.slice(REPO.length);
  return p;
}

/** Which part of the program a frame belongs to. */
function area(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  if (f.url.startsWith('node:')) return 'node internals';
  const p = location(f.url);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p);
  if (pkg) return pkg[1]!;
  // dist/ is the compiled src/ (the bench runs it by default)
  const src = /^(?:src|dist)\/([^/]+)/.exec(p);
  if (src) return `src/${src[1]}`;
  return p;
}

function key(f: CallFrame): string {
  const name = f.functionName || '(anonymous)';
  return f.url ? `${name}  ${location(f.url)}:${f.lineNumber + 1}` : name;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      from: { type: 'string' },
      to: { type: 'string' },
      stacks: { type: 'string', default: '0' },
      requests: { type: 'string' },
    },
  });
  const file = positionals[0];
  const top = Number(values.top);
  const fromMs = values.from !== undefined ? Number(values.from) * 1000 : -Infinity;
  const toMs = values.to !== undefined ? Number(values.to) * 1000 : Infinity;
  const stackCount = Number(values.stacks);
  if (!file || !Number.isFinite(top) || Number.isNaN(fromMs) || Number.isNaN(toMs) || !Number.isFinite(stackCount)) {
    console.error('usage: tsx bench/profile-top.ts <file.cpuprofile> [--top N] [--from S --to S] [--stacks N] [--requests N]');
    process.exit(2);
  }
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const stacks = new Map<string, Map<string, number>>();
  let total = 0;
  let idle = 0;
  let at = 0; // ms since the profile started
  prof.samples.forEach((id, i) => {
    const dt = (prof.timeDeltas[i] ?? 0) / 1000; // µs → ms
    at += dt;
    if (at < fromMs || at > toMs) return;
    const node = byId.get(id)!;
    total += dt;
    if (node.callFrame.functionName === '(idle)') idle += dt;
    const k = key(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    const a = area(node.callFrame);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    if (stackCount > 0) {
      const frames: string[] = [];
      for (let cur = parent.get(id); cur !== undefined && frames.length < 8; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        if (f.functionName !== '(root)') frames.push(key(f));
      }
      const m = stacks.get(k) ?? new Map<string, number>();
      const sk = frames.join('\n      ← ');
      m.set(sk, (m.get(sk) ?? 0) + dt);
      stacks.set(k, m);
    }
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!(f.url.includes('/src/') || f.url.includes('/dist/')) || f.url.includes('node_modules')) continue;
      const kk = key(f);
      if (seen.has(kk)) continue;
      seen.add(kk);
      inclusive.set(kk, (inclusive.get(kk) ?? 0) + dt);
    }
  });
  const busy = total - idle;
  const pct = (ms: number) => `${((ms / busy) * 100).toFixed(1).padStart(5)}%`;
  const print = (title: string, m: Map<string, number>, n: number) => {
    console.log(`\n${title}`);
    for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      if (k === '(idle)' || k === 'idle') continue;
      console.log(`  ${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}`);
    }
  };
  const range = values.from !== undefined || values.to !== undefined ? ` between ${values.from ?? 0} s and ${values.to ?? 'end'}` : '';
  console.log(`${file}: ${(total / 1000).toFixed(1)} s sampled${range}, ${(busy / 1000).toFixed(1)} s busy (percentages are of busy time)`);
  const requests = Number(values.requests);
  if (requests > 0) console.log(`main-thread busy time per request: ${(busy / requests).toFixed(3)} ms (${requests} requests)`);
  print('Self time by area:', areas, top);
  print(`Top ${top} functions by self time:`, self, top);
  print(`Top ${top} Gatehouse (src/) functions by inclusive time:`, inclusive, top);
  if (stackCount > 0) {
    console.log(`\nHeaviest callers of the top ${stackCount} self-time functions:`);
    const hot = [...self].filter(([k]) => !/^\([^)]*\)$/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, stackCount);
    for (const [k, ms] of hot) {
      console.log(`  ${pct(ms)} ${k}`);
      for (const [sk, sms] of [...(stacks.get(k) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).slice(0, 2)) {
        console.log(`    ${pct(sms)} ← ${sk}`);
      }
    }
  }
}

main();
