// The sample Prometheus set-up in deploy/prometheus/ is valid for Prometheus'
// own checker, and its alert rules only use metrics that Gatehouse serves.
// Skipped where promtool is not installed (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.ts';

const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const PROMTOOL = '/usr/bin/promtool';
const haveTool = existsSync(PROMTOOL);

function promtool(...args: string[]) {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!haveTool)(`deploy/prometheus${haveTool ? '' : ' (skipped: /usr/bin/promtool is not installed)'}`, () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-prom-'));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('prometheus.yml passes promtool check config, its rule file included', () => {
    expect(promtool('check', 'config', '--syntax-only', path.join(DIR, 'prometheus.yml'))).toMatchObject({ status: 0 });
    // the full check also reads the files it names: the token file (stand-in here) and the rules
    const config = readFileSync(path.join(DIR, 'prometheus.yml'), 'utf8');
    const token = path.join(tmp, 'token');
    writeFileSync(token, 'a-metrics-token\n');
    const withToken = config.replace(/credentials_file: \S+/, `credentials_file: ${token}`);
    expect(withToken).not.toBe(config);
    writeFileSync(path.join(tmp, 'prometheus.yml'), withToken);
    copyFileSync(path.join(DIR, 'gatehouse.rules.yml'), path.join(tmp, 'gatehouse.rules.yml'));
    const r = promtool('check', 'config', path.join(tmp, 'prometheus.yml'));
    expect(r, r.output).toMatchObject({ status: 0 });
    expect(r.output).toMatch(/SUCCESS: 7 rules found/);
  });

  it('the rules use only metrics Gatehouse serves', async () => {
    const served = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const rules = readFileSync(path.join(DIR, 'gatehouse.rules.yml'), 'utf8');
    const used = new Set([...rules.matchAll(/\b(gatehouse_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')));
    expect(used.size).toBeGreaterThan(3);
    for (const name of used) expect(served, name).toContain(name);
  });
});
