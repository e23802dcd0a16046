// The interleaved mode's arithmetic (bench/interleaved.ts): what it reports as
// the median ratio, the worst round and each side's p99 and CPU per request.
import { describe, expect, it } from 'vitest';
import { algsFromEnv, median, summarise } from '../../bench/interleaved.ts';

const side = (reqPerSec: number, p99: number, cpuMsPerReq: number) => ({ reqPerSec, p50: 1, p99, errors: 0, serverCores: 1, otherCores: 0, cpuMsPerReq });

describe('bench interleaved mode', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBe(0);
  });

  it('summarises rounds: median and worst ratio, p99 of each side, CPU ratio', () => {
    const rounds = [
      { index: 1, first: 'gatehouse' as const, gatehouse: side(900, 20, 0.7), baseline: side(1000, 18, 0.6), ratio: 0.9 },
      { index: 2, first: 'baseline' as const, gatehouse: side(500, 40, 0.72), baseline: side(1000, 19, 0.61), ratio: 0.5 },
      { index: 3, first: 'gatehouse' as const, gatehouse: side(950, 22, 0.71), baseline: side(1000, 20, 0.6), ratio: 0.95 },
    ];
    const s = summarise('RS256', rounds);
    expect(s.medianRatio).toBe(0.9);
    expect(s.worstRatio).toBe(0.5);
    expect(s.bestRatio).toBe(0.95);
    expect(s.gatehouse.medianP99).toBe(22);
    expect(s.gatehouse.worstP99).toBe(40);
    expect(s.baseline.medianP99).toBe(19);
    expect(s.p99Ratio).toBe(1.16);
    expect(s.gatehouse.medianCpuMsPerReq).toBe(0.71);
    expect(s.cpuRatio).toBe(0.85);
  });

  it('accepts only known algorithms', () => {
    expect(algsFromEnv(undefined)).toEqual(['RS256']);
    expect(algsFromEnv('ES256, EdDSA')).toEqual(['ES256', 'EdDSA']);
    expect(() => algsFromEnv('HS256')).toThrow(/unknown alg HS256/);
  });
});
