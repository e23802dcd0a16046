// The access log line of a refused request names the OAuth error it got and
// the client that made it (authenticated or only claimed), at every door:
// token, introspection, revocation, userinfo, authorization, metrics. It
// never holds a secret, a token or a code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { basic, REDIRECT_URI } from '../sso/flow.ts';

const API = 'https://logged.example.com';

interface Line {
  msg: string;
  path: string;
  route: string;
  status: number;
  error?: string;
  client?: string;
  [k: string]: unknown;
}

describe('access log of refused requests', () => {
  let t: TestApp;
  const raw: string[] = [];
  let svc: { id: string; secret: string };
  let web: { id: string; secret: string };
  let accessToken: string;

  /** The request lines written since `mark`. */
  const since = (mark: number): Line[] =>
    raw
      .slice(mark)
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.msg === 'request');
  const last = (mark: number, path: string): Line => {
    const lines = since(mark).filter((l) => l.path === path);
    expect(lines, `one line for ${path} in ${raw.slice(mark).join('')}`).toHaveLength(1);
    return lines[0]!;
  };

  beforeAll(async () => {
    t = await createTestApp({
      env: { METRICS_TOKEN: 'a-long-metrics-token-for-the-log-test' },
      logger: createLogger('info', { write: (s: string) => void raw.push(s) }),
    });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: API, scopes: ['l:read', 'l:write'] });
    const s = await createClient(db, { id: 'svc-logged', name: 'svc', grants: ['client_credentials'], resources: [API], scopes: ['l:read'] });
    svc = { id: s.client.id, secret: s.clientSecret! };
    const w = await createClient(db, { id: 'web-logged', name: 'web', grants: ['authorization_code'], redirectUris: [REDIRECT_URI] });
    web = { id: w.client.id, secret: w.clientSecret! };
    const ok = await t.request.post('/token').type('form').set('Authorization', basic(svc.id, svc.secret)).send({ grant_type: 'client_credentials' }).expect(200);
    accessToken = ok.body.access_token as string;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('token endpoint: wrong secret, unknown scope, no credentials at all', async () => {
    let mark = raw.length;
    await t.request.post('/token').type('form').set('Authorization', basic(svc.id, 'not-the-secret')).send({ grant_type: 'client_credentials' }).expect(401);
    expect(last(mark, '/token')).toMatchObject({ route: '/token', status: 401, error: 'invalid_client', client: svc.id });

    mark = raw.length;
    await t.request.post('/token').type('form').set('Authorization', basic(svc.id, svc.secret)).send({ grant_type: 'client_credentials', scope: 'l:write' }).expect(400);
    expect(last(mark, '/token')).toMatchObject({ status: 400, error: 'invalid_scope', client: svc.id });

    mark = raw.length;
    await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'who-knows' }).expect(401);
    expect(last(mark, '/token')).toMatchObject({ status: 401, error: 'invalid_client', client: 'who-knows' });

    mark = raw.length;
    await t.request.post('/token').type('form').set('Authorization', basic(svc.id, svc.secret)).send({ grant_type: 'client_credentials' }).expect(200);
    const ok = last(mark, '/token');
    expect(ok).toMatchObject({ status: 200, client: svc.id });
    expect(ok.error).toBeUndefined();
  });

  it('introspection and revocation', async () => {
    let mark = raw.length;
    await t.request.post('/token/introspection').type('form').set('Authorization', basic(web.id, 'wrong')).send({ token: accessToken }).expect(401);
    expect(last(mark, '/token/introspection')).toMatchObject({ status: 401, error: 'invalid_client', client: web.id });

    mark = raw.length;
    await t.request.post('/token/revocation').type('form').send({ token: accessToken }).expect(401);
    expect(last(mark, '/token/revocation')).toMatchObject({ status: 401, error: 'invalid_client' });

    mark = raw.length;
    await t.request.post('/token/revocation').type('form').set('Authorization', basic(svc.id, svc.secret)).send({}).expect(400);
    expect(last(mark, '/token/revocation')).toMatchObject({ status: 400, error: 'invalid_request', client: svc.id });
  });

  it('userinfo: a token it cannot accept', async () => {
    let mark = raw.length;
    await t.request.get('/me').set('Authorization', 'Bearer not-a-token').expect(401);
    expect(last(mark, '/me')).toMatchObject({ route: '/me', status: 401, error: 'invalid_token' });

    mark = raw.length;
    const res = await t.request.get('/me').set('Authorization', `Bearer ${accessToken}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(last(mark, '/me')).toMatchObject({ status: res.status, error: (res.body as { error: string }).error });
  });

  it('authorization: an error page (bad redirect_uri) and an error redirect (bad scope)', async () => {
    let mark = raw.length;
    const q = (p: Record<string, string>) => `/auth?${new URLSearchParams({ response_type: 'code', scope: 'openid', ...p }).toString()}`;
    await t.request.get(q({ client_id: web.id, redirect_uri: 'https://evil.example.net/cb' })).set('Accept', 'text/html').expect(400);
    expect(last(mark, '/auth')).toMatchObject({ route: '/auth', status: 400, error: 'invalid_redirect_uri', client: web.id });

    mark = raw.length;
    await t.request.get(q({ client_id: 'no-such-client', redirect_uri: REDIRECT_URI })).set('Accept', 'text/html').expect(400);
    expect(last(mark, '/auth')).toMatchObject({ status: 400, error: 'invalid_client', client: 'no-such-client' });

    mark = raw.length;
    const r = await t.request.get(q({ client_id: web.id, redirect_uri: REDIRECT_URI, response_type: 'token' })).expect(303);
    expect(String(r.headers.location)).toContain('error=');
    expect(last(mark, '/auth')).toMatchObject({ status: 303, error: 'unsupported_response_type', client: web.id });
  });

  it('metrics: a wrong bearer token', async () => {
    const mark = raw.length;
    await t.request.get('/metrics').set('Authorization', 'Bearer wrong').expect(401);
    expect(last(mark, '/metrics')).toMatchObject({ status: 401, error: 'invalid_token' });
  });

  it('no line holds a secret, a token or a code', () => {
    const all = raw.join('');
    for (const secret of [svc.secret, web.secret, accessToken, 'not-the-secret', 'a-long-metrics-token-for-the-log-test']) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/"(?:error_description|authorization|password|code)"/i);
  });
});
