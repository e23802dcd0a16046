// No input reaches a 5xx or a stack trace: hostile bodies, query strings and
// path parameters against every operation.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../../src/admin/http.ts';
import { ADMIN_ROUTES } from '../../src/admin/index.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { BASE, adminToken, api, expectProblem } from './helpers.ts';

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

const BODIES = [
  'null',
  '"a string"',
  '123',
  '[]',
  '{"__proto__": {"polluted": true}}',
  '{"constructor": {"prototype": {"polluted": true}}}',
  `{"name": ${deep(100_000)}}`,
  `{"jwks": {"keys": [{"kty": "RSA", "x": ${deep(5_000)}}]}, "name": "x", "grants": ["client_credentials"], "authMethod": "private_key_jwt"}`,
  '{"name": "\\u0000\\ud800", "email": "\\u0000@x", "password": "\\ud800\\ud800\\ud800\\ud800\\ud800", "identifier": "urn:\\u0000"}',
  `{"name": "${'x'.repeat(100_000)}", "email": "${'y'.repeat(100_000)}@x.com", "identifier": "urn:${'z'.repeat(100_000)}"}`,
  '{"grants": {}, "scopes": "a b", "resources": [1, 2], "redirectUris": [null], "accessTokenTtl": 1e309, "leadSeconds": 1e400, "graceSeconds": -0.5}',
  '{"scopes": [' + Array.from({ length: 5000 }, () => '"s"').join(',') + ']}',
  '{"name": "a\\u0000", "grants": ["client_credentials"]}',
  '{"identifier": "urn:x:y", "scopes": ["a"], "name": "a\\u0000b"}',
  '{"email": "nul@example.com", "name": "a\\u0000b"}',
  '{"disabled": "false", "emailVerified": 1, "alg": ["RS256"], "servedBy": "x"}',
];

describe('admin API: hostile input', () => {
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await createTestApp();
    await createResource(t.gatehouse.db.prisma, { identifier: 'urn:example:api', scopes: ['a'] });
    admin = await adminToken(t, ['gatehouse:admin']);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('hostile JSON bodies: a 4xx problem on every operation that takes a body, and nothing polluted', async () => {
    for (const route of ADMIN_ROUTES.filter((r) => r.body)) {
      const path = route.path.replace(/\{[^}]+\}/g, 'x');
      for (const body of BODIES) {
        const res = await t.request[route.method](`${BASE}${path}`).set('Authorization', `Bearer ${admin}`).set('Content-Type', 'application/json').send(body);
        expect(res.status, `${route.method} ${route.path} ${body.slice(0, 60)}: ${JSON.stringify(res.body).slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${route.method} ${route.path} ${body.slice(0, 60)}`).toBeLessThan(500);
        expectProblem(res, res.status);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('hostile query strings and path parameters', async () => {
    const params = ['%00', '%E0%A4%A', '..', '%2e%2e', 'x'.repeat(5000), '%F0%9F%92%A9', "'; DROP TABLE clients; --", '%25', '%2F'];
    for (const route of ADMIN_ROUTES.filter((r) => r.method === 'get' || r.method === 'delete')) {
      for (const p of params) {
        const path = route.path.replace(/\{[^}]+\}/g, p);
        const res = await t.request[route.method](`${BASE}${path}?limit=%00&cursor=%FF&since=x&email=%00`).set('Authorization', `Bearer ${admin}`);
        expect(res.status, `${route.method} ${path.slice(0, 80)}`).toBeLessThan(500);
        if (res.status >= 400) expectProblem(res, res.status);
      }
    }
    for (const q of ['cursor=%00', `cursor=${'9'.repeat(30)}`, 'limit=1e3', 'limit=-1', 'limit=%20', `email=${'%00'.repeat(100)}`, 'since=2020-13-45T99:99:99Z', 'action=%FF']) {
      for (const path of ['/clients', '/users', '/resources', '/roles', '/keys', '/audit-events']) {
        const res = await t.request.get(`${BASE}${path}?${q}`).set('Authorization', `Bearer ${admin}`);
        expect(res.status, `${path}?${q}`).toBeLessThan(500);
      }
    }
  });

  it('NUL characters: 422 naming the field (never a database error)', async () => {
    const res = await t.request.post(`${BASE}/clients`).set('Authorization', `Bearer ${admin}`).set('Content-Type', 'application/json').send('{"name": "a\\u0000", "grants": ["client_credentials"]}');
    expectProblem(res, 422, 'name');
    expectProblem(await t.request.get(`${BASE}/clients?cursor=%00`).set('Authorization', `Bearer ${admin}`), 400, 'cursor');
    expectProblem(await t.request.get(`${BASE}/clients/a%00b`).set('Authorization', `Bearer ${admin}`), 404);
  });

  it('bodies: compressed ones count their unpacked size, unknown encodings are 415, chunked ones have the same limit', async () => {
    const server = t.gatehouse.app.listen(0);
    const { port } = server.address() as AddressInfo;
    /** POSTs /clients over a plain socket: the body as given, in one or more chunks (chunked when no Content-Length). */
    const post = (headers: Record<string, string>, chunks: Buffer[]) =>
      new Promise<{ status: number; body: { type?: string } }>((resolve, reject) => {
        const req = httpRequest(
          { port, agent: false, method: 'POST', path: `${BASE}/clients`, headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json', ...headers } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { type?: string } }));
          },
        );
        // the server may answer 413 and close before the whole body is sent
        req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
        for (const c of chunks) req.write(c);
        req.end();
      });
    const sized = (body: Buffer, headers: Record<string, string> = {}) => post({ 'Content-Length': String(body.length), ...headers }, [body]);
    try {
      const client = { name: 'zipped', grants: ['client_credentials'] };
      const zipped = gzipSync(JSON.stringify(client));
      expect((await sized(zipped, { 'Content-Encoding': 'gzip' })).status).toBe(201);
      // 1 KiB on the wire, 1 MiB unpacked
      const bomb = gzipSync(JSON.stringify({ ...client, name: ' '.repeat(1024 * 1024) }));
      expect(bomb.length).toBeLessThan(BODY_LIMIT_BYTES);
      expect(await sized(bomb, { 'Content-Encoding': 'gzip' })).toMatchObject({ status: 413, body: { type: 'urn:gatehouse:problem:payload-too-large' } });
      expect(await sized(Buffer.from(JSON.stringify(client)), { 'Content-Encoding': 'compress' })).toMatchObject({ status: 415 });
      expect(await sized(Buffer.from('{"name": "a", "__proto__": {"x": 1}}'))).toMatchObject({ status: 400, body: { type: 'urn:gatehouse:problem:malformed-json' } });
      // chunked, no Content-Length: the limit holds while reading
      const chunks = [Buffer.from('{"name": "'), ...Array.from({ length: 40 }, () => Buffer.from('x'.repeat(10_000))), Buffer.from('"}')];
      expect(await post({ 'Transfer-Encoding': 'chunked' }, chunks)).toMatchObject({ status: 413 });
      expect((await post({ 'Transfer-Encoding': 'chunked' }, [Buffer.from('{"name": "chunked",'), Buffer.from(' "grants": ["client_credentials"]}')])).status).toBe(201);
    } finally {
      server.close();
    }

    // a body of only whitespace is no body (the secret rotation's body is optional)
    const svc = await api(t, admin, 'post', '/clients').send({ name: 'svc', grants: ['client_credentials'] }).expect(201);
    await t.request.post(`${BASE}/clients/${svc.body.id}/secret`).set('Authorization', `Bearer ${admin}`).set('Content-Type', 'application/json').send('  \n ').expect(200);
  });

  it('the database keeps working afterwards', async () => {
    const res = await t.request.get(`${BASE}/clients`).set('Authorization', `Bearer ${admin}`).expect(200);
    expect(Array.isArray(res.body.items)).toBe(true);
  });
});
