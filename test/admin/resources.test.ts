import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceView, RoleView } from '../../src/admin/schemas.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { adminToken, api, expectProblem, expectShape } from './helpers.ts';

const ORDERS = 'https://orders.example.com';
const enc = encodeURIComponent;

describe('admin API: resources and roles', () => {
  let t: TestApp;
  let admin: string;
  let reader: string;
  let writer: string;

  beforeAll(async () => {
    t = await createTestApp();
    admin = await adminToken(t, ['gatehouse:admin']);
    reader = await adminToken(t, ['gatehouse:resources:read']);
    writer = await adminToken(t, ['gatehouse:resources:write']);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates, shows (percent-encoded identifier), lists with the built-in admin API', async () => {
    const res = await api(t, writer, 'post', '/resources').send({ identifier: ORDERS, name: 'Orders', scopes: ['orders:read', 'orders:write'] }).expect(201);
    const r = expectShape(ResourceView, res.body);
    expect(r).toMatchObject({ identifier: ORDERS, accessTokenTtl: 300, signingAlg: 'RS256', servedBy: [], builtIn: false, version: 1 });
    expect(res.headers.location).toBe(`/admin/v1/resources/${enc(ORDERS)}`);
    const got = await api(t, reader, 'get', `/resources/${enc(ORDERS)}`).expect(200);
    expect(got.body).toEqual(res.body);
    expect(got.headers.etag).toBe('"1"');
    await api(t, reader, 'get', '/resources/urn:gatehouse:admin').expect(200);
    const list = await api(t, reader, 'get', '/resources').expect(200);
    expect(list.body.items.map((x: { identifier: string }) => x.identifier)).toEqual([ORDERS, 'urn:gatehouse:admin']);
    expect(list.body.nextCursor).toBeNull();
  });

  it('409 duplicate, 422 invalid (field named), 404 unknown', async () => {
    expectProblem(await api(t, writer, 'post', '/resources').send({ identifier: ORDERS, scopes: ['x'] }), 409);
    expectProblem(await api(t, writer, 'post', '/resources').send({ identifier: 'not a uri', scopes: ['x'] }), 422, 'identifier');
    expectProblem(await api(t, writer, 'post', '/resources').send({ identifier: 'urn:gatehouse:mine', scopes: ['x'] }), 422, 'identifier');
    expectProblem(await api(t, writer, 'post', '/resources').send({ identifier: 'urn:x:y', scopes: [] }), 422, 'scopes');
    expectProblem(await api(t, writer, 'post', '/resources').send({ identifier: 'urn:x:y', scopes: ['a'], servedBy: ['nobody'] }), 422, 'servedBy');
    expectProblem(await api(t, writer, 'post', '/resources').send({ identifier: 'urn:x:y', scopes: ['a'], accessTokenTtl: '300' }), 422, 'accessTokenTtl');
    expectProblem(await api(t, reader, 'get', `/resources/${enc('https://nothing.example.com')}`), 404);
    expectProblem(await api(t, writer, 'patch', `/resources/${enc('https://nothing.example.com')}`).send({ name: 'x' }), 404);
    expectProblem(await api(t, writer, 'delete', `/resources/${enc('https://nothing.example.com')}`), 404);
  });

  it('PATCH with If-Match (412 when stale); the built-in resource keeps its scopes and cannot be deleted', async () => {
    const a = await api(t, reader, 'get', `/resources/${enc(ORDERS)}`).expect(200);
    await api(t, writer, 'patch', `/resources/${enc(ORDERS)}`).set('If-Match', a.headers.etag!).send({ accessTokenTtl: 600 }).expect(200);
    expectProblem(await api(t, writer, 'patch', `/resources/${enc(ORDERS)}`).set('If-Match', a.headers.etag!).send({ accessTokenTtl: 900 }), 412);
    expect((await api(t, reader, 'get', `/resources/${enc(ORDERS)}`)).body.accessTokenTtl).toBe(600);
    expectProblem(await api(t, admin, 'patch', '/resources/urn:gatehouse:admin').send({ scopes: ['x'] }), 422, 'scopes');
    // only gatehouse:admin changes the built-in resource
    expectProblem(await api(t, writer, 'patch', '/resources/urn:gatehouse:admin').send({ accessTokenTtl: 120 }), 403);
    await api(t, admin, 'patch', '/resources/urn:gatehouse:admin').send({ accessTokenTtl: 120 }).expect(200);
    expectProblem(await api(t, writer, 'delete', '/resources/urn:gatehouse:admin'), 409);
  });

  it('roles: create, show, list by resource, patch, If-Match, delete; the resource cannot go while roles exist', async () => {
    const res = await api(t, writer, 'post', '/roles').send({ name: 'orders-reader', resource: ORDERS, scopes: ['orders:read'] }).expect(201);
    const role = expectShape(RoleView, res.body);
    expect(role).toMatchObject({ name: 'orders-reader', accountCount: 0 });
    expect(res.headers.location).toBe('/admin/v1/roles/orders-reader');
    expectProblem(await api(t, writer, 'post', '/roles').send({ name: 'orders-reader', resource: ORDERS, scopes: ['orders:read'] }), 409);
    expectProblem(await api(t, writer, 'post', '/roles').send({ name: 'bad name!', resource: ORDERS, scopes: ['orders:read'] }), 422, 'name');
    expectProblem(await api(t, writer, 'post', '/roles').send({ name: 'r2', resource: ORDERS, scopes: ['payments:charge'] }), 422, 'scopes');
    expectProblem(await api(t, writer, 'post', '/roles').send({ name: 'r2', resource: 'https://nothing.example.com', scopes: ['x'] }), 422, 'resource');

    await api(t, writer, 'post', '/roles').send({ name: 'orders-clerk', resource: ORDERS, scopes: ['orders:read', 'orders:write'] }).expect(201);
    const list = await api(t, reader, 'get', '/roles').query({ resource: ORDERS, limit: '1' }).expect(200);
    expect(list.body.items.map((r: { name: string }) => r.name)).toEqual(['orders-clerk']);
    const next = await api(t, reader, 'get', '/roles').query({ resource: ORDERS, limit: '1', cursor: list.body.nextCursor }).expect(200);
    expect(next.body.items.map((r: { name: string }) => r.name)).toEqual(['orders-reader']);
    expect(next.body.nextCursor).toBeNull();

    const got = await api(t, reader, 'get', '/roles/orders-clerk').expect(200);
    expectProblem(await api(t, reader, 'get', '/roles/nobody'), 404);
    const etag = got.headers.etag!;
    const patched = await api(t, writer, 'patch', '/roles/orders-clerk').set('If-Match', etag).send({ scopes: ['orders:write'] }).expect(200);
    expect(patched.body.scopes).toEqual(['orders:write']);
    expect(patched.headers.etag).not.toBe(etag);
    expectProblem(await api(t, writer, 'patch', '/roles/orders-clerk').set('If-Match', etag).send({ scopes: ['orders:read'] }), 412);
    expectProblem(await api(t, writer, 'patch', '/roles/orders-clerk').send({ name: 'renamed' }), 422, 'name');
    expectProblem(await api(t, writer, 'patch', '/roles/nobody').send({ scopes: ['orders:read'] }), 404);

    expectProblem(await api(t, writer, 'delete', `/resources/${enc(ORDERS)}`), 409);
    expectProblem(await api(t, writer, 'delete', '/roles/orders-clerk').set('If-Match', etag), 412);
    await api(t, writer, 'delete', '/roles/orders-clerk').set('If-Match', patched.headers.etag!).expect(204);
    await api(t, writer, 'delete', '/roles/orders-reader').expect(204);
    expectProblem(await api(t, writer, 'delete', '/roles/orders-reader'), 404);
    await api(t, admin, 'delete', `/resources/${enc(ORDERS)}`).expect(204);
    expectProblem(await api(t, reader, 'get', `/resources/${enc(ORDERS)}`), 404);

    const actions = (await t.gatehouse.db.prisma.auditEvent.findMany({ where: { targetType: { in: ['resource', 'role'] } }, orderBy: { id: 'asc' } })).map(
      (e) => `${e.action} ${e.targetId}`,
    );
    expect(actions).toEqual([
      `resource.create ${ORDERS}`,
      `resource.update ${ORDERS}`,
      'resource.update urn:gatehouse:admin',
      'role.create orders-reader',
      'role.create orders-clerk',
      'role.update orders-clerk',
      'role.delete orders-clerk',
      'role.delete orders-reader',
      `resource.delete ${ORDERS}`,
    ]);
  });
});
