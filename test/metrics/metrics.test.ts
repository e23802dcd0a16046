import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const API = 'https://metrics-api.example.com';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  let t: TestApp;
  let basic: string;
  beforeAll(async () => {
    t = await createTestApp();
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: API, scopes: ['m:read', 'm:write'] });
    const c = await createClient(db, { name: 'm', grants: ['client_credentials'], resources: [API], scopes: ['m:read'] });
    basic = `Basic ${Buffer.from(`${c.client.id}:${c.clientSecret}`).toString('base64')}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts requests, tokens and token errors with bounded labels', async () => {
    for (let i = 0; i < 2; i++) await t.request.post('/token').type('form').set('Authorization', basic).send({ grant_type: 'client_credentials', scope: 'm:read' }).expect(200);
    await t.request.post('/token').type('form').set('Authorization', basic).send({ grant_type: 'client_credentials', scope: 'm:write' }).expect(400);
    await t.request.post('/token').type('form').set('Authorization', basic).send({ grant_type: 'made_up' }).expect(400);
    // no client authentication: the client is answered invalid_client (oidc-provider said invalid_request), and counted so
    await t.request.post('/token').type('form').send({ grant_type: 'client_credentials' }).expect(401);
    await t.request.get('/no/such/page').expect(404);
    await t.request.get('/healthz').expect(200);

    const res = await t.request.get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.text;
    expect(value(text, 'gatehouse_tokens_issued_total{grant_type="client_credentials"}')).toBe(2);
    expect(value(text, 'gatehouse_token_errors_total{grant_type="client_credentials",error="invalid_scope"}')).toBe(1);
    expect(value(text, 'gatehouse_token_errors_total{grant_type="other",error="unsupported_grant_type"}')).toBe(1);
    expect(value(text, 'gatehouse_token_errors_total{grant_type="client_credentials",error="invalid_client"}')).toBe(1);
    expect(value(text, 'gatehouse_token_errors_total{grant_type="client_credentials",error="invalid_request"}')).toBeUndefined();
    expect(value(text, 'gatehouse_http_requests_total{method="POST",route="/token",status="200"}')).toBe(2);
    expect(value(text, 'gatehouse_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(value(text, 'gatehouse_http_requests_total{method="GET",route="/healthz",status="200"}')).toBe(1);
    expect(text).toMatch(/^gatehouse_http_request_duration_seconds_bucket\{le="0\.005",method="POST",route="\/token"\} \d+$/m);
    // login results exist from the start, so dashboards and alerts see zero rather than nothing
    for (const r of ['success', 'failure', 'locked']) expect(value(text, `gatehouse_logins_total{result="${r}"}`)).toBe(0);
    expect(text).toMatch(/^gatehouse_db_pool_connections\{state="total"\} \d+$/m);
    expect(text).toMatch(/^gatehouse_signing_key_age_seconds\{alg="RS256"\} \d+$/m);
    expect(text).toMatch(/^gatehouse_active_sessions \d+$/m);
    expect(text).toMatch(/^gatehouse_db_query_duration_seconds_count \d+$/m);
    expect(text).toMatch(/^gatehouse_process_resident_memory_bytes \d+/m);
    // no client id or path with an id as a label
    expect(text).not.toContain('no/such/page');
  });
});

describe('/metrics with METRICS_TOKEN', () => {
  let t: TestApp;
  const token = 'a-long-metrics-token-for-tests';
  beforeAll(async () => {
    t = await createTestApp({ env: { METRICS_TOKEN: token } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('requires the bearer token', async () => {
    const none = await t.request.get('/metrics').expect(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    await t.request.get('/metrics').set('Authorization', 'Bearer wrong').expect(401);
    await t.request.get('/metrics').set('Authorization', `Basic ${token}`).expect(401);
    const ok = await t.request.get('/metrics').set('Authorization', `Bearer ${token}`).expect(200);
    expect(ok.text).toContain('gatehouse_http_requests_total');
  });
});
