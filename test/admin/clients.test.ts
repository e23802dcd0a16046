import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResource } from '../../src/resources/store.ts';
import { ClientView, ClientWithSecret } from '../../src/admin/schemas.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { adminToken, api, basic, expectProblem, expectShape } from './helpers.ts';

const ORDERS = 'https://orders.example.com';

describe('admin API: clients', () => {
  let t: TestApp;
  let admin: string;
  let reader: string;
  let writer: string;
  let admin2: string;

  beforeAll(async () => {
    t = await createTestApp();
    await createResource(t.gatehouse.db.prisma, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
    admin = await adminToken(t, ['gatehouse:admin']);
    reader = await adminToken(t, ['gatehouse:clients:read']);
    writer = await adminToken(t, ['gatehouse:clients:write']);
    admin2 = await adminToken(t, ['gatehouse:clients:read', 'gatehouse:clients:write']);
  });
  afterAll(async () => {
    await t?.close();
  });

  const newClient = { name: 'Orders worker', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] };

  it('creates a confidential client: 201, Location, ETag, the secret once, and the secret works at /token', async () => {
    const res = await api(t, writer, 'post', '/clients').send({ ...newClient, id: 'orders-worker' }).expect(201);
    const body = expectShape(ClientWithSecret, res.body);
    expect(body).toMatchObject({ id: 'orders-worker', name: 'Orders worker', hasSecret: true, version: 1, authMethod: 'client_secret_basic' });
    expect(body.clientSecret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(res.headers.location).toBe('/admin/v1/clients/orders-worker');
    expect(res.headers.etag).toBe('"1"');
    expect(res.headers['cache-control']).toBe('no-store');
    const tok = await t.request
      .post('/token')
      .type('form')
      .set('Authorization', basic('orders-worker', body.clientSecret!))
      .send({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' });
    expect(tok.status).toBe(200);

    const got = await api(t, reader, 'get', '/clients/orders-worker').expect(200);
    const view = expectShape(ClientView, got.body);
    expect(got.headers.etag).toBe('"1"');
    expect(JSON.stringify(view)).not.toContain(body.clientSecret!);
    expect(got.body).not.toHaveProperty('clientSecret');
  });

  it('a public client gets no secret', async () => {
    const res = await api(t, admin, 'post', '/clients')
      .send({ name: 'SPA', public: true, grants: ['authorization_code'], redirectUris: ['https://spa.example.com/cb'] })
      .expect(201);
    expect(res.body.clientSecret).toBeUndefined();
    expect(res.body).toMatchObject({ public: true, authMethod: 'none', hasSecret: false });
  });

  it('409 for a duplicate id', async () => {
    await api(t, admin, 'post', '/clients').send({ ...newClient, id: 'dup-client' }).expect(201);
    const res = await api(t, admin, 'post', '/clients').send({ ...newClient, id: 'dup-client' });
    expectProblem(res, 409);
    expect(res.body.detail).toMatch(/already exists/);
  });

  it('422 for invalid input, naming the field', async () => {
    expectProblem(await api(t, admin, 'post', '/clients').send({ ...newClient, grants: ['password'] }), 422, 'grants');
    expectProblem(await api(t, admin, 'post', '/clients').send({ grants: ['client_credentials'] }), 422, 'name');
    expectProblem(await api(t, admin, 'post', '/clients').send({ ...newClient, colour: 'blue' }), 422, 'colour');
    expectProblem(await api(t, admin, 'post', '/clients').send({ ...newClient, client_secret: 'mine' }), 422, 'client_secret');
    expectProblem(await api(t, admin, 'post', '/clients').send({ ...newClient, resources: ['https://unknown.example.com'] }), 422, 'resources');
    expectProblem(await api(t, admin, 'post', '/clients').send({ ...newClient, accessTokenTtl: 5 }), 422, 'accessTokenTtl');
    expectProblem(await api(t, admin, 'post', '/clients').send([newClient]), 422, '(body)');
    expectProblem(await api(t, admin, 'post', '/clients'), 422, '(body)');
    expectProblem(await api(t, admin, 'patch', '/clients/orders-worker').send({ redirectUris: ['http://evil.example.com/cb'] }), 422, 'redirectUris');
    expectProblem(await api(t, admin, 'patch', '/clients/orders-worker').send({ name: null }), 422, 'name');
    expectProblem(await api(t, admin, 'patch', '/clients/orders-worker').send({ id: 'renamed' }), 422, 'id');
  });

  it('400 for malformed JSON, 415 for a body that is not JSON, 413 for a huge one', async () => {
    const bad = await api(t, admin, 'post', '/clients').set('Content-Type', 'application/json').send('{"name": "x",');
    expectProblem(bad, 400);
    expect(bad.body.type).toBe('urn:gatehouse:problem:malformed-json');
    expectProblem(await api(t, admin, 'post', '/clients').type('form').send({ name: 'x' }), 415);
    expectProblem(await api(t, admin, 'post', '/clients').set('Content-Type', 'text/plain').send('hello'), 415);
    expectProblem(await api(t, admin, 'post', '/clients').set('Content-Type', 'application/json').send(JSON.stringify({ name: 'x'.repeat(300_000) })), 413);
  });

  it('404 for an unknown id, on every route', async () => {
    expectProblem(await api(t, admin, 'get', '/clients/nobody'), 404);
    expectProblem(await api(t, admin, 'patch', '/clients/nobody').send({ name: 'x' }), 404);
    expectProblem(await api(t, admin, 'delete', '/clients/nobody'), 404);
    expectProblem(await api(t, admin, 'post', '/clients/nobody/secret'), 404);
    expectProblem(await api(t, admin, 'get', '/clients/%E0%A4%A'), 404);
    expectProblem(await api(t, admin, 'get', '/no-such-collection'), 404);
  });

  it('PATCH merges, bumps the version and the ETag', async () => {
    await api(t, admin, 'post', '/clients').send({ ...newClient, id: 'patch-me' }).expect(201);
    const res = await api(t, admin, 'patch', '/clients/patch-me')
      .set('Content-Type', 'application/merge-patch+json')
      .send(JSON.stringify({ name: 'Renamed', accessTokenTtl: 120 }))
      .expect(200);
    expect(res.body).toMatchObject({ id: 'patch-me', name: 'Renamed', accessTokenTtl: 120, scopes: ['orders:read'], version: 2 });
    expect(res.headers.etag).toBe('"2"');
    const cleared = await api(t, admin, 'patch', '/clients/patch-me').send({ accessTokenTtl: null }).expect(200);
    expect(cleared.body.accessTokenTtl).toBeNull();
  });

  it('two admins: both GET, the first PATCH wins, the second gets 412 and nothing changes', async () => {
    await api(t, admin, 'post', '/clients').send({ ...newClient, id: 'contended' }).expect(201);
    const a = await api(t, admin, 'get', '/clients/contended').expect(200);
    const b = await api(t, admin2, 'get', '/clients/contended').expect(200);
    expect(a.headers.etag).toBe(b.headers.etag);
    await api(t, admin, 'patch', '/clients/contended').set('If-Match', a.headers.etag!).send({ name: 'first' }).expect(200);
    const second = await api(t, admin2, 'patch', '/clients/contended').set('If-Match', b.headers.etag!).send({ name: 'second' });
    expectProblem(second, 412);
    expect(second.headers.etag).toBe('"2"');
    const now = await api(t, admin, 'get', '/clients/contended').expect(200);
    expect(now.body.name).toBe('first');
    // a stale If-Match on DELETE and on secret rotation is refused too
    expectProblem(await api(t, writer, 'delete', '/clients/contended').set('If-Match', '"1"'), 412);
    expectProblem(await api(t, writer, 'post', '/clients/contended/secret').set('If-Match', '"1"'), 412);
    expectProblem(await api(t, writer, 'patch', '/clients/contended').set('If-Match', '"garbage"').send({ name: 'x' }), 412);
    // the current ETag (and *) pass
    await api(t, writer, 'patch', '/clients/contended').set('If-Match', '"2"').send({ name: 'third' }).expect(200);
    await api(t, writer, 'patch', '/clients/contended').set('If-Match', '*').send({ name: 'fourth' }).expect(200);
    await api(t, writer, 'delete', '/clients/contended').set('If-Match', '"4"').expect(204);
    expectProblem(await api(t, admin, 'get', '/clients/contended'), 404);
  });

  it('rotates the secret: the new one works at /token, the old one stops when graceSeconds is 0', async () => {
    const created = await api(t, admin, 'post', '/clients').send({ ...newClient, id: 'rotating' }).expect(201);
    const old = created.body.clientSecret as string;
    const res = await api(t, writer, 'post', '/clients/rotating/secret').send({ graceSeconds: 0 }).expect(200);
    const body = expectShape(ClientWithSecret, res.body);
    expect(body.clientSecret).toBeDefined();
    expect(body.clientSecret).not.toBe(old);
    expect(res.headers.etag).toBe('"2"');
    const form = { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' };
    await t.request.post('/token').type('form').set('Authorization', basic('rotating', body.clientSecret!)).send(form).expect(200);
    await t.request.post('/token').type('form').set('Authorization', basic('rotating', old)).send(form).expect(401);
    // with a grace period both work; the default is CLIENT_SECRET_ROTATION_GRACE_SECONDS
    const again = await api(t, writer, 'post', '/clients/rotating/secret').expect(200);
    expect(again.body.previousSecretExpiresAt).not.toBeNull();
    await t.request.post('/token').type('form').set('Authorization', basic('rotating', body.clientSecret!)).send(form).expect(200);
    await t.request.post('/token').type('form').set('Authorization', basic('rotating', again.body.clientSecret)).send(form).expect(200);
    expectProblem(await api(t, writer, 'post', '/clients/rotating/secret').send({ graceSeconds: -1 }), 422, 'graceSeconds');
    // a public client has no secret to rotate
    const spa = await api(t, admin, 'post', '/clients')
      .send({ name: 'SPA 2', public: true, grants: ['authorization_code'], redirectUris: ['https://spa.example.com/cb'] })
      .expect(201);
    expectProblem(await api(t, writer, 'post', `/clients/${spa.body.id}/secret`), 409);
  });

  it('deletes: 204, then 404', async () => {
    await api(t, admin, 'post', '/clients').send({ ...newClient, id: 'doomed' }).expect(201);
    await api(t, writer, 'delete', '/clients/doomed').expect(204);
    expectProblem(await api(t, writer, 'delete', '/clients/doomed'), 404);
  });

  it('pages through 7 clients with limit 3 by cursor', async () => {
    for (let i = 0; i < 7; i++) await api(t, admin, 'post', '/clients').send({ ...newClient, id: `page-${i}` }).expect(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: Record<string, string> = { limit: '3' };
      if (cursor) q.cursor = cursor;
      const res = await api(t, reader, 'get', '/clients').query(q).expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      for (const c of res.body.items) expectShape(ClientView, c);
      seen.push(...res.body.items.map((c: { id: string }) => c.id));
      cursor = res.body.nextCursor;
      if (cursor) expect(res.headers.link).toMatch(/rel="next"/);
      pages++;
    } while (cursor && pages < 50);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => id.startsWith('page-'))).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6']);
    const all = await api(t, reader, 'get', '/clients').query({ limit: '500' }).expect(200);
    expect(seen).toEqual(all.body.items.map((c: { id: string }) => c.id));
    expect(all.body.nextCursor).toBeNull();
  });

  it('400 for bad query parameters', async () => {
    expectProblem(await api(t, reader, 'get', '/clients').query({ limit: '0' }), 400, 'limit');
    expectProblem(await api(t, reader, 'get', '/clients').query({ limit: 'ten' }), 400, 'limit');
    expectProblem(await api(t, reader, 'get', '/clients').query({ limit: '1001' }), 400, 'limit');
    expectProblem(await api(t, reader, 'get', '/clients').query({ colour: 'blue' }), 400, 'colour');
    expectProblem(await api(t, reader, 'get', '/clients?limit=1&limit=2'), 400, 'limit');
  });

  it('405 with Allow for a method the path does not have', async () => {
    const res = await api(t, admin, 'put', '/clients/orders-worker').send({});
    expectProblem(res, 405);
    expect(res.headers.allow).toMatch(/PATCH/);
  });
});
