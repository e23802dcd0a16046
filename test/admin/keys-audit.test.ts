import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventView, KeyRotationResult, KeyView } from '../../src/admin/schemas.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { adminClient, adminToken, api, expectProblem, expectShape, tokenFor, type AdminClient } from './helpers.ts';

const ORDERS = 'https://orders.example.com';
const PASSWORD = 'correct horse battery staple';

describe('admin API: keys', () => {
  let t: TestApp;
  let reader: string;
  let writer: string;
  const jwksKids = async () => ((await t.request.get('/jwks').expect(200)).body.keys as { kid: string }[]).map((k) => k.kid);

  beforeAll(async () => {
    t = await createTestApp();
    reader = await adminToken(t, ['gatehouse:keys:read']);
    writer = await adminToken(t, ['gatehouse:keys:write']);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lists the keys without key material; shows one; pages', async () => {
    const res = await api(t, reader, 'get', '/keys').expect(200);
    expect(res.body.items).toHaveLength(3);
    for (const k of res.body.items) expectShape(KeyView, k);
    expect(res.body.items.map((k: { alg: string }) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    expect(JSON.stringify(res.body)).not.toMatch(/"d"|private|"n"/);
    const first = await api(t, reader, 'get', '/keys').query({ limit: '2' }).expect(200);
    const second = await api(t, reader, 'get', '/keys').query({ limit: '2', cursor: first.body.nextCursor }).expect(200);
    expect([...first.body.items, ...second.body.items]).toEqual(res.body.items);
    expect(second.body.nextCursor).toBeNull();
    const one = await api(t, reader, 'get', `/keys/${res.body.items[0].kid}`).expect(200);
    expect(one.body).toEqual(res.body.items[0]);
    expectProblem(await api(t, reader, 'get', '/keys/nope'), 404);
    expectProblem(await api(t, reader, 'get', '/keys').query({ cursor: 'nope' }), 400, 'cursor');
    expectProblem(await api(t, reader, 'get', '/keys').query({ status: 'broken' }), 400, 'status');
  });

  it('rotate with a lead: the new key is in /jwks at once, pending; tokens are still signed by the current key', async () => {
    const before = (await api(t, reader, 'get', '/keys').query({ status: 'active' })).body.items.find((k: { alg: string }) => k.alg === 'RS256');
    const res = await api(t, writer, 'post', '/keys/rotate').send({ leadSeconds: 600 }).expect(201);
    const r = expectShape(KeyRotationResult, res.body);
    expect(Object.keys(res.body).sort()).toEqual(['activatesAt', 'alg', 'kid']);
    expect(r.alg).toBe('RS256');
    expect(Date.parse(r.activatesAt)).toBeGreaterThan(Date.now() + 500_000);
    expect(res.headers.location).toBe(`/admin/v1/keys/${r.kid}`);
    expect(await jwksKids()).toContain(r.kid);
    expect((await api(t, reader, 'get', `/keys/${r.kid}`)).body.status).toBe('pending');
    const tok = await adminToken(t, ['gatehouse:keys:read']);
    expect(decodeProtectedHeader(tok).kid).toBe(before.kid);
  });

  it('emergency rotation (leadSeconds 0): new tokens use the new key; a token signed before still works until it expires', async () => {
    const client = await adminClient(t, ['gatehouse:keys:read']);
    const old = await tokenFor(t, client);
    const res = await api(t, writer, 'post', '/keys/rotate').send({ alg: 'RS256', leadSeconds: 0 }).expect(201);
    const kid = res.body.kid as string;
    expect(await jwksKids()).toEqual(expect.arrayContaining([kid, decodeProtectedHeader(old).kid!]));
    const fresh = await tokenFor(t, client);
    expect(decodeProtectedHeader(fresh).kid).toBe(kid);
    await api(t, fresh, 'get', '/keys').expect(200);
    await api(t, old, 'get', '/keys').expect(200);
    const listed = (await api(t, fresh, 'get', '/keys')).body.items as { kid: string; status: string }[];
    expect(listed.find((k) => k.kid === kid)?.status).toBe('active');
    expect(listed.find((k) => k.kid === decodeProtectedHeader(old).kid)?.status).toBe('retired');
  });

  it('rotates another algorithm; refuses bad input with 422; audits each rotation', async () => {
    const es = await api(t, writer, 'post', '/keys/rotate').send({ alg: 'ES256', leadSeconds: 0 }).expect(201);
    expect(es.body.alg).toBe('ES256');
    expect(await jwksKids()).toContain(es.body.kid);
    expectProblem(await api(t, writer, 'post', '/keys/rotate').send({ alg: 'HS256' }), 422, 'alg');
    expectProblem(await api(t, writer, 'post', '/keys/rotate').send({ leadSeconds: -1 }), 422, 'leadSeconds');
    expectProblem(await api(t, writer, 'post', '/keys/rotate').send({ leadSeconds: 1.5 }), 422, 'leadSeconds');
    expectProblem(await api(t, writer, 'post', '/keys/rotate').send({ lead: 0 }), 422, 'lead');
    const events = await t.gatehouse.db.prisma.auditEvent.findMany({ where: { action: 'key.rotate' }, orderBy: { id: 'asc' } });
    expect(events).toHaveLength(3);
    expect(events[2]).toMatchObject({ targetType: 'key', targetId: es.body.kid, actorType: 'client', details: { alg: 'ES256', leadSeconds: 0 } });
  });
});

describe('admin API: audit events', () => {
  let t: TestApp;
  let bot: AdminClient;
  let admin: string;
  let auditor: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    await createResource(t.gatehouse.db.prisma, { identifier: ORDERS, scopes: ['orders:read'] });
    bot = await adminClient(t, ['gatehouse:admin'], { id: 'admin-bot' });
    admin = await tokenFor(t, bot);
    auditor = await adminToken(t, ['gatehouse:audit:read']);

    // a series of changes, some of which handle secrets
    const c = await api(t, admin, 'post', '/clients').set('X-Request-Id', 'req-create-1').send({ id: 'svc', name: 'svc', grants: ['client_credentials'], resources: [ORDERS] }).expect(201);
    secrets.push(c.body.clientSecret);
    secrets.push((await api(t, admin, 'post', '/clients/svc/secret').send({ graceSeconds: 60 }).expect(200)).body.clientSecret);
    await api(t, admin, 'patch', '/clients/svc').send({ name: 'Service', scopes: ['orders:read'] }).expect(200);
    const post = await api(t, admin, 'patch', '/clients/svc').send({ authMethod: 'client_secret_post' }).expect(200);
    expect(post.body.clientSecret).toBeUndefined();
    const u = await api(t, admin, 'post', '/users').send({ email: 'eve@example.com', password: PASSWORD }).expect(201);
    await api(t, admin, 'post', `/users/${u.body.id}/password`).send({ password: `${PASSWORD}!` }).expect(200);
    await api(t, admin, 'delete', '/clients/svc').expect(204);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('every change wrote one event: actor, target, request id, source IP, before/after without secrets', async () => {
    const events = await t.gatehouse.db.prisma.auditEvent.findMany({ where: { actorId: 'admin-bot' }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual([
      'client.create',
      'client.rotate_secret',
      'client.update',
      'client.update',
      'user.create',
      'user.set_password',
      'client.delete',
    ]);
    for (const e of events) {
      expect(e.actorType).toBe('client');
      expect(e.requestId).toEqual(expect.any(String));
      expect(e.ip).toEqual(expect.any(String));
      expect(e.targetType).toMatch(/^(client|user)$/);
    }
    expect(events[0]!.requestId).toBe('req-create-1');
    expect(events[0]!.details).toMatchObject({ after: { id: 'svc', name: 'svc' } });
    expect(events[2]!.details).toMatchObject({ before: { name: 'svc', scopes: [] }, after: { name: 'Service', scopes: ['orders:read'] }, changes: ['name', 'scopes'] });

    const all = JSON.stringify((await t.gatehouse.db.prisma.auditEvent.findMany()).map((e) => ({ ...e, id: String(e.id) })));
    for (const s of secrets) expect(all).not.toContain(s);
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toMatch(/client_secret"|clientSecret|secretDigest|digest"|passwordHash|"hash"|argon2|totp/i);
    for (const e of events) expect(Object.keys(JSON.parse(JSON.stringify(e.details)) as object).join(' ')).not.toMatch(/secret|digest|hash|password/i);
  });

  it('lists newest first with filters, pages by cursor, shows one', async () => {
    const res = await api(t, auditor, 'get', '/audit-events').query({ actor: 'admin-bot' }).expect(200);
    for (const e of res.body.items) expectShape(AuditEventView, e);
    expect(res.body.items.map((e: { action: string }) => e.action)).toEqual([
      'client.delete',
      'user.set_password',
      'user.create',
      'client.update',
      'client.update',
      'client.rotate_secret',
      'client.create',
    ]);
    const ids = res.body.items.map((e: { id: string }) => e.id);

    const updates = await api(t, auditor, 'get', '/audit-events').query({ action: 'client.update' }).expect(200);
    expect(updates.body.items).toHaveLength(2);
    const clientEvents = await api(t, auditor, 'get', '/audit-events').query({ action: 'client.*', target_type: 'client', target_id: 'svc' }).expect(200);
    expect(clientEvents.body.items).toHaveLength(5);
    const users = await api(t, auditor, 'get', '/audit-events').query({ target_type: 'user' }).expect(200);
    expect(users.body.items).toHaveLength(2);
    const future = await api(t, auditor, 'get', '/audit-events').query({ since: new Date(Date.now() + 3600_000).toISOString() }).expect(200);
    expect(future.body.items).toEqual([]);
    const past = await api(t, auditor, 'get', '/audit-events').query({ actor: 'admin-bot', until: new Date(Date.now() + 3600_000).toISOString(), since: '2000-01-01T00:00:00+00:00' }).expect(200);
    expect(past.body.items).toHaveLength(7);

    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const q: Record<string, string> = { actor: 'admin-bot', limit: '3' };
      if (cursor) q.cursor = cursor;
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await api(t, auditor, 'get', '/audit-events').query(q).expect(200);
      paged.push(...page.body.items.map((e) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(ids);

    const one = await api(t, auditor, 'get', `/audit-events/${ids[1]}`).expect(200);
    expect(one.body).toEqual(res.body.items[1]);
    expectProblem(await api(t, auditor, 'get', '/audit-events/999999999'), 404);
    expectProblem(await api(t, auditor, 'get', '/audit-events/abc'), 404);
    expectProblem(await api(t, auditor, 'get', '/audit-events').query({ since: 'yesterday' }), 400, 'since');
    expectProblem(await api(t, auditor, 'get', '/audit-events').query({ cursor: 'abc' }), 400, 'cursor');
  });

  it('the audit trail is read-only', async () => {
    const res = await api(t, admin, 'post', '/audit-events').send({});
    expectProblem(res, 405);
    expectProblem(await api(t, admin, 'delete', '/audit-events/1'), 405);
  });
});
