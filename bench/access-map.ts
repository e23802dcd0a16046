// Benchmark of the access map (issue 15): a generated registry of 1,000
// clients and 300 APIs, the model built and queried in memory (no database).
//
//   npx tsx bench/access-map.ts            # prints the figures as JSON
//   BENCH_RUNS=50 npx tsx bench/access-map.ts
//
// What is timed, each run from scratch: buildModel + the whole map (every
// client, role and `people`) + one --client, one --api and one --if-leaked
// query + the longest chain + evaluating one policy of each kind.
import { performance } from 'node:perf_hooks';
import { accessMap, buildModel, ifLeaked, longestChain, reachOfClient, whoReaches, type Registry } from '../src/access/model.ts';
import { generateRegistry } from './access-registry.ts';
import { evaluatePolicies, type Policy } from '../src/access/policies.ts';

const policies: Policy[] = [
  { name: 'only-0', kind: 'only-clients', api: 'https://api0.example', scope: 'api0:s0', clients: ['client-1'] },
  { name: 'people-1', kind: 'only-people-and-clients', api: 'https://api1.example', scope: 'api1:s0', clients: ['client-2'] },
  { name: 'chain', kind: 'max-chain', length: 3 },
  { name: 'sens', kind: 'max-sensitive-per-client', count: 5 },
  { name: 'roles', kind: 'sensitive-requires-roles' },
];

function once(registry: Registry) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const model = buildModel(registry);
  const map = accessMap(model);
  reachOfClient(model, 'client-7');
  whoReaches(model, 'https://api3.example', undefined, map);
  ifLeaked(model, 'client-11', map);
  const chain = longestChain(model);
  const violations = evaluatePolicies(model, policies, map);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000, entries: map.length, chain: chain.length, exhausted: chain.exhausted, violations: violations.length };
}

const registry = generateRegistry();
const runs = Number(process.env.BENCH_RUNS ?? 20);
for (let i = 0; i < 10; i++) once(registry); // warm-up (JIT)
const times: number[] = [];
const cpu: number[] = [];
let last: ReturnType<typeof once> | undefined;
for (let i = 0; i < runs; i++) {
  last = once(registry);
  times.push(last.ms);
  cpu.push(last.cpuMs);
}
times.sort((a, b) => a - b);
cpu.sort((a, b) => a - b);
const at = (xs: number[], p: number) => Number(xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(1));
const q = (p: number) => at(times, p);
console.log(
  JSON.stringify(
    {
      clients: registry.clients.length,
      apis: registry.apis.length,
      roles: registry.roles.length,
      mapEntries: last!.entries,
      longestChain: last!.chain,
      chainSearchExhausted: last!.exhausted,
      violations: last!.violations,
      runs,
      ms: { min: q(0), median: q(0.5), p90: q(0.9), max: q(1) },
      cpuMs: { min: at(cpu, 0), median: at(cpu, 0.5), p90: at(cpu, 0.9) },
      loadAverage: (await import('node:os')).loadavg().map((x) => Number(x.toFixed(2))),
      node: process.version,
    },
    null,
    2,
  ),
);
