import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate } from '../../src/accounts/store.ts';
import { UserRoles, UserView } from '../../src/admin/schemas.ts';
import { addRoleToAccount, createRole } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE, createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, codeFlowTokens, createWebClient, pkce, redirect, refresh, type TestClient } from '../sso/flow.ts';
import { adminToken, api, expectProblem, expectShape } from './helpers.ts';

const ORDERS = 'https://orders.example.com';
const PASSWORD = 'correct horse battery staple';
const POLICY = { maxFailures: 10, lockSeconds: 60, maxLockSeconds: 600, ipMaxFailures: 1000 };

describe('admin API: users', () => {
  let t: TestApp;
  let admin: string;
  let reader: string;
  let writer: string;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    await createResource(t.gatehouse.db.prisma, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
    admin = await adminToken(t, ['gatehouse:admin']);
    reader = await adminToken(t, ['gatehouse:users:read']);
    writer = await adminToken(t, ['gatehouse:users:write']);
  });
  afterAll(async () => {
    await t?.close();
  });

  const create = async (email: string, extra: Record<string, unknown> = {}) =>
    (await api(t, writer, 'post', '/users').send({ email, ...extra }).expect(201)).body as { id: string; version: number };

  it('creates a person: 201, Location, ETag; no hash in the answer; the password works', async () => {
    const res = await api(t, writer, 'post', '/users').send({ email: ' Alice@Example.com ', name: 'Alice', password: PASSWORD, emailVerified: true }).expect(201);
    const u = expectShape(UserView, res.body);
    expect(u).toMatchObject({ email: 'alice@example.com', name: 'Alice', emailVerified: true, disabled: false, hasPassword: true, version: 1 });
    expect(res.headers.location).toBe(`/admin/v1/users/${u.id}`);
    expect(res.headers.etag).toBe('"1"');
    expect(JSON.stringify(res.body)).not.toMatch(/argon2|passwordHash|totp/i);
    const login = await authenticate(t.gatehouse.db.prisma, 'alice@example.com', PASSWORD, { policy: POLICY });
    expect(login.ok).toBe(true);
    const got = await api(t, reader, 'get', `/users/${u.id}`).expect(200);
    // lastLoginAt is not an edit: it moves without a new version
    expect({ ...got.body, lastLoginAt: null }).toEqual(res.body);
    expect(got.headers.etag).toBe('"1"');
  });

  it('409 for a duplicate email (case-insensitive); 422 naming the field', async () => {
    await create('dup@example.com');
    expectProblem(await api(t, writer, 'post', '/users').send({ email: 'DUP@example.com' }), 409);
    expectProblem(await api(t, writer, 'post', '/users').send({ email: 'not-an-email' }), 422, 'email');
    expectProblem(await api(t, writer, 'post', '/users').send({}), 422, 'email');
    expectProblem(await api(t, writer, 'post', '/users').send({ email: 'p@example.com', password: 'short' }), 422, 'password');
    expectProblem(await api(t, writer, 'post', '/users').send({ email: 'p@example.com', emailVerified: 'yes' }), 422, 'emailVerified');
    expectProblem(await api(t, writer, 'post', '/users').send({ email: 'p@example.com', passwordHash: 'x' }), 422, 'passwordHash');
    expectProblem(await api(t, writer, 'post', '/users').send({ email: 'p@example.com', name: '' }), 422, 'name');
    expectProblem(await api(t, writer, 'post', '/users').set('Content-Type', 'application/json').send('{"email":'), 400);
  });

  it('404 for an unknown or malformed id on every route', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      expectProblem(await api(t, admin, 'get', `/users/${id}`), 404);
      expectProblem(await api(t, admin, 'patch', `/users/${id}`).send({ name: 'x' }), 404);
      expectProblem(await api(t, admin, 'delete', `/users/${id}`), 404);
      expectProblem(await api(t, admin, 'post', `/users/${id}/password`).send({ password: PASSWORD }), 404);
      expectProblem(await api(t, admin, 'post', `/users/${id}/sessions:revoke`), 404);
      expectProblem(await api(t, admin, 'get', `/users/${id}/roles`), 404);
      expectProblem(await api(t, admin, 'put', `/users/${id}/roles/anything`), 404);
      expectProblem(await api(t, admin, 'delete', `/users/${id}/roles/anything`), 404);
    }
  });

  it('PATCH with If-Match: the second of two admins gets 412; disabling is audited as user.disable', async () => {
    const u = await create('bob@example.com', { name: 'Bob' });
    const a = await api(t, admin, 'get', `/users/${u.id}`).expect(200);
    const b = await api(t, reader, 'get', `/users/${u.id}`).expect(200);
    await api(t, admin, 'patch', `/users/${u.id}`).set('If-Match', a.headers.etag!).send({ name: 'Robert' }).expect(200);
    expectProblem(await api(t, writer, 'patch', `/users/${u.id}`).set('If-Match', b.headers.etag!).send({ name: 'Bobby' }), 412);
    expect((await api(t, reader, 'get', `/users/${u.id}`)).body.name).toBe('Robert');
    const disabled = await api(t, writer, 'patch', `/users/${u.id}`).send({ disabled: true }).expect(200);
    expect(disabled.body).toMatchObject({ disabled: true, version: 3 });
    expect(disabled.headers.etag).toBe('"3"');
    expectProblem(await api(t, writer, 'patch', `/users/${u.id}`).send({ email: 'nope' }), 422, 'email');
    expectProblem(await api(t, writer, 'patch', `/users/${u.id}`).send({ disabled: 'yes' }), 422, 'disabled');
    expectProblem(await api(t, writer, 'patch', `/users/${u.id}`).send({ email: 'dup@example.com' }), 409);
    const events = await t.gatehouse.db.prisma.auditEvent.findMany({ where: { targetId: u.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['user.create', 'user.update', 'user.disable']);
    expect(events[1]!.details).toMatchObject({ changes: ['name'], before: { name: 'Bob' }, after: { name: 'Robert' } });
  });

  it('sets a password (audited without it) and deletes (stale If-Match: 412)', async () => {
    const u = await create('carol@example.com');
    const res = await api(t, writer, 'post', `/users/${u.id}/password`).send({ password: PASSWORD }).expect(200);
    expect(res.body.hasPassword).toBe(true);
    expect(res.headers.etag).toBe('"2"');
    expect((await authenticate(t.gatehouse.db.prisma, 'carol@example.com', PASSWORD, { policy: POLICY })).ok).toBe(true);
    expectProblem(await api(t, writer, 'post', `/users/${u.id}/password`).send({ password: 'short' }), 422, 'password');
    expectProblem(await api(t, writer, 'post', `/users/${u.id}/password`).send({}), 422, 'password');
    const ev = await t.gatehouse.db.prisma.auditEvent.findFirstOrThrow({ where: { action: 'user.set_password', targetId: u.id } });
    expect(JSON.stringify(ev.details)).not.toContain(PASSWORD);

    expectProblem(await api(t, writer, 'delete', `/users/${u.id}`).set('If-Match', '"1"'), 412);
    await api(t, writer, 'delete', `/users/${u.id}`).set('If-Match', '"2"').expect(204);
    expectProblem(await api(t, reader, 'get', `/users/${u.id}`), 404);
  });

  it('lists by email with a filter, page by page', async () => {
    for (let i = 0; i < 5; i++) await create(`page${i}@list.example.com`);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: Record<string, string> = { email: '@list.example.com', limit: '2' };
      if (cursor) q.cursor = cursor;
      const res: { body: { items: { email: string }[]; nextCursor: string | null } } = await api(t, reader, 'get', '/users').query(q).expect(200);
      for (const u of res.body.items) expectShape(UserView, u);
      seen.push(...res.body.items.map((u) => u.email));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `page${i}@list.example.com`));
    expectProblem(await api(t, reader, 'get', '/users').query({ cursor: '!!!' }), 400, 'cursor');
  });

  it('role assignment: PUT adds (201, then 204), GET lists, DELETE removes (then 404)', async () => {
    await createRole(t.gatehouse.db.prisma, { name: 'orders-reader', resource: ORDERS, scopes: ['orders:read'] });
    const u = await create('dave@example.com');
    await api(t, writer, 'put', `/users/${u.id}/roles/orders-reader`).expect(201);
    await api(t, writer, 'put', `/users/${u.id}/roles/orders-reader`).expect(204);
    expectProblem(await api(t, writer, 'put', `/users/${u.id}/roles/no-such-role`), 404);
    const roles = await api(t, reader, 'get', `/users/${u.id}/roles`).expect(200);
    expect(expectShape(UserRoles, roles.body).items).toEqual([{ name: 'orders-reader', resource: ORDERS, scopes: ['orders:read'] }]);
    await api(t, writer, 'delete', `/users/${u.id}/roles/orders-reader`).expect(204);
    expectProblem(await api(t, writer, 'delete', `/users/${u.id}/roles/orders-reader`), 404);
    expect((await api(t, reader, 'get', `/users/${u.id}/roles`)).body.items).toEqual([]);
    const actions = (await t.gatehouse.db.prisma.auditEvent.findMany({ where: { targetId: u.id }, orderBy: { id: 'asc' } })).map((e) => [e.action, e.details]);
    expect(actions).toEqual([
      ['user.create', expect.anything()],
      ['user.role_add', { role: 'orders-reader' }],
      ['user.role_remove', { role: 'orders-reader' }],
    ]);
  });

  describe('sessions:revoke', () => {
    let web: TestClient;
    let adminConsole: TestClient;
    let userId: string;

    beforeAll(async () => {
      userId = (await create('erin@example.com', { password: PASSWORD, emailVerified: true })).id;
      web = await createWebClient(t, { name: 'Web', firstParty: true });
      // an admin console: people log in to it and call the admin API with their own token,
      // carrying what their role on the admin API gives them
      adminConsole = await createWebClient(t, { name: 'Console', firstParty: true, resources: [ADMIN_RESOURCE], scopes: ['gatehouse:users:read', 'gatehouse:users:write'] });
      await createRole(t.gatehouse.db.prisma, { name: 'user-admins', resource: ADMIN_RESOURCE, scopes: ['gatehouse:users:read', 'gatehouse:users:write'] });
      await addRoleToAccount(t.gatehouse.db.prisma, userId, 'user-admins');
    });

    async function signedIn(b: Browser, client: TestClient): Promise<boolean> {
      const { challenge } = pkce();
      const r = redirect(await authorize(b, { client_id: client.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
      return r.searchParams.has('code');
    }

    it("logs the person out everywhere: sessions end, refresh tokens and the person's own admin token stop working", async () => {
      const b1 = new Browser(t);
      const b2 = new Browser(t);
      const offline = await codeFlowTokens(b1, web, { scope: 'openid offline_access', prompt: 'consent' }, { email: 'erin@example.com', password: PASSWORD });
      await codeFlowTokens(b2, web, { scope: 'openid' }, { email: 'erin@example.com', password: PASSWORD });
      const own = await codeFlowTokens(b2, adminConsole, { scope: 'openid gatehouse:users:read gatehouse:users:write', resource: ADMIN_RESOURCE });
      const personal = own.access_token as string;
      // a person's token works, and their changes are audited as them
      await api(t, personal, 'get', `/users/${userId}`).expect(200);
      await api(t, personal, 'patch', `/users/${userId}`).send({ name: 'Erin' }).expect(200);
      const byPerson = await t.gatehouse.db.prisma.auditEvent.findFirstOrThrow({ where: { action: 'user.update', targetId: userId } });
      expect(byPerson).toMatchObject({ actorType: 'user', actorId: userId, details: expect.objectContaining({ viaClient: adminConsole.id }) });
      expect(await signedIn(b1, web)).toBe(true);
      expect(await signedIn(b2, web)).toBe(true);

      const res = await api(t, writer, 'post', `/users/${userId}/sessions:revoke`).expect(200);
      expect(res.body.sessions).toBe(2);
      expect(res.body.grants).toBeGreaterThanOrEqual(2);
      expect(await signedIn(b1, web)).toBe(false);
      expect(await signedIn(b2, web)).toBe(false);
      const r = await refresh(t, web, offline.refresh_token as string);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_grant');
      expectProblem(await api(t, personal, 'get', `/users/${userId}`), 401);

      const ev = await t.gatehouse.db.prisma.auditEvent.findFirstOrThrow({ where: { action: 'user.sessions_revoke', targetId: userId } });
      expect(ev.actorType).toBe('client');
      expect(ev.details).toMatchObject({ sessions: 2 });
    });

    it("a person's token is refused once their account is disabled", async () => {
      const b = new Browser(t);
      const own = await codeFlowTokens(b, adminConsole, { scope: 'openid gatehouse:users:read', resource: ADMIN_RESOURCE }, { email: 'erin@example.com', password: PASSWORD });
      const personal = own.access_token as string;
      await api(t, personal, 'get', '/users').expect(200);
      await api(t, writer, 'patch', `/users/${userId}`).send({ disabled: true }).expect(200);
      expectProblem(await api(t, personal, 'get', '/users'), 401);
    });
  });
});
