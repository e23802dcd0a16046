// The real /metrics output, single-process and aggregated across workers as
// the primary serves it, passes Prometheus' own linter (`promtool check
// metrics`), as PRODUCT.md promises. Skipped where promtool is not installed
// (.ci/run installs Debian's `prometheus` package, which has it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import client from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const PROMTOOL = '/usr/bin/promtool';
const haveTool = existsSync(PROMTOOL);

function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe.skipIf(!haveTool)(`promtool check metrics${haveTool ? '' : ' (skipped: /usr/bin/promtool is not installed)'}`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: 'https://lint.example.com', scopes: ['l:read'] });
    const c = await createClient(db, { name: 'lint', grants: ['client_credentials'], resources: ['https://lint.example.com'], scopes: ['l:read'] });
    const basic = `Basic ${Buffer.from(`${c.client.id}:${c.clientSecret}`).toString('base64')}`;
    // every kind of series present: requests, tokens, token errors, histograms
    await t.request.post('/token').type('form').set('Authorization', basic).send({ grant_type: 'client_credentials' }).expect(200);
    await t.request.post('/token').type('form').set('Authorization', basic).send({ grant_type: 'client_credentials', scope: 'nope' }).expect(400);
    await t.request.get('/healthz').expect(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the /metrics answer passes', async () => {
    const res = await t.request.get('/metrics').expect(200);
    expect(res.text).toContain('gatehouse_http_requests_total');
    expect(promtool(res.text)).toEqual({ status: 0, output: '' });
  });

  it('the sum over workers (what the primary answers) passes', async () => {
    const registry = t.gatehouse.metrics.registry;
    const twoWorkers = client.AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), await registry.getMetricsAsJSON()]);
    const text = await twoWorkers.metrics();
    expect(text).toContain('gatehouse_tokens_issued_total');
    expect(promtool(text)).toEqual({ status: 0, output: '' });
  });

  it('the check is real: promtool refuses a gauge named like a counter', () => {
    const bad = '# HELP x_total a gauge\n# TYPE x_total gauge\nx_total 1\n';
    expect(promtool(bad).status).not.toBe(0);
  });
});
