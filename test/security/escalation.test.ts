// No caller can grant what it does not hold (issue 12 item 1): the attacks
// that were seen, replayed through the real admin API with real tokens from
// /token, and the legitimate narrow writes that must keep working.
//
// An "admin-API permission" is a scope of the built-in resource
// urn:gatehouse:admin. A client holds the ones in its scopes when its
// resources include urn:gatehouse:admin; a person holds the scopes of their
// roles on urn:gatehouse:admin (the only way a person reaches the admin API).
// gatehouse:admin implies every other one. What each write route of the
// OpenAPI document does about them (escalation-openapi.test.ts walks them all):
//
//   POST   /clients                 the new client's admin-API permissions must all be held by the caller
//   PATCH  /clients/{id}            the result's permissions must be held; a client holding permissions the
//                                   caller lacks may only be renamed, disabled, narrowed (scopes, resources),
//                                   made stricter (requireDpop, requireMfa): no redirect URIs, keys, jwksUri,
//                                   auth method, public flag, grants, back-channel URI, TTLs, first-party, enabling
//   DELETE /clients/{id}            allowed: it takes power away (a client re-created under the id starts with nothing)
//   POST   /clients/{id}/secret     refused for a client holding permissions the caller lacks (the caller would get its secret)
//   POST   /users                   allowed: a new person holds no role
//   PATCH  /users/{id}              a person holding permissions the caller lacks may only be renamed or disabled
//                                   (no email change, no emailVerified change, no enabling)
//   DELETE /users/{id}              allowed: it takes power away
//   POST   /users/{id}/password     refused for a person holding permissions the caller lacks
//   POST   /users/{id}/sessions:revoke  allowed: it takes power away
//   PUT    /users/{id}/roles/{role} the role's admin-API permissions must be held by the caller
//   DELETE /users/{id}/roles/{role} allowed: it takes power away
//   POST   /resources               cannot give an admin-API permission: the urn:gatehouse: namespace is reserved (422)
//   PATCH  /resources/{identifier}  the built-in urn:gatehouse:admin needs gatehouse:admin; other resources carry no
//                                   admin-API permission (servedBy never reaches the built-in, whose servedBy is fixed)
//   DELETE /resources/{identifier}  the built-in cannot be deleted by anyone (409); others carry no admin-API permission
//   POST   /roles                   a role on urn:gatehouse:admin needs every scope it carries
//   PATCH  /roles/{name}            the admin-API permissions the role gains must be held; the built-in
//                                   gatehouse-admin role cannot change (409)
//   DELETE /roles/{name}            allowed (takes power away); the built-in gatehouse-admin role cannot be deleted (409)
//   POST   /keys/rotate             no admin-API permission is involved
//
// Refusals are 403 problem+json naming the missing scope, and nothing is
// written (no row, no audit event). The CLI acts as the operator and may do
// anything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, getClient } from '../../src/clients/store.ts';
import type { Context } from 'koa';
import { createAccount } from '../../src/accounts/store.ts';
import { updateAccountAs } from '../../src/accounts/writes.ts';
import type { AdminPrincipal } from '../../src/admin/auth.ts';
import { actorOf } from '../../src/admin/route.ts';
import { addRoleToAccount, createRole, getRole, rolesForAccount } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE, createResource, getResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { adminClient, api, basic, expectProblem, tokenFor, type AdminClient } from '../admin/helpers.ts';
import { Browser, PASSWORD, codeFlowTokens, createWebClient } from '../sso/flow.ts';

const ORDERS = 'https://orders.example.com';
const needs = (scope: string) => `this change needs the scope ${scope}, which the caller does not hold`;

describe('admin API: no caller can grant what it does not hold', () => {
  let t: TestApp;
  let clientsWriter: AdminClient;
  let cw: string;
  let rw: string;
  let uw: string;
  let full: string;
  const db = () => t.gatehouse.db.prisma;
  const auditCount = () => db().auditEvent.count();

  /** Asserts the 403 problem naming the scope, and that nothing was audited by it. */
  async function refused(req: Promise<import('supertest').Response>, scope: string): Promise<void> {
    const before = await auditCount();
    const res = await req;
    expectProblem(res, 403);
    expect(res.body.detail).toBe(needs(scope));
    expect(await auditCount()).toBe(before);
  }

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    await createResource(db(), { identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
    clientsWriter = await adminClient(t, ['gatehouse:clients:write', 'gatehouse:clients:read']);
    cw = await tokenFor(t, clientsWriter);
    rw = await tokenFor(t, await adminClient(t, ['gatehouse:resources:write', 'gatehouse:resources:read']));
    uw = await tokenFor(t, await adminClient(t, ['gatehouse:users:write', 'gatehouse:users:read']));
    full = await tokenFor(t, await adminClient(t, ['gatehouse:admin']));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the reported attack: clients:write cannot register a client granted gatehouse:admin, so no admin token is ever minted', async () => {
    const attack = { id: 'escalator', name: 'escalator', grants: ['client_credentials'], resources: [ADMIN_RESOURCE], scopes: ['gatehouse:admin'] };
    await refused(api(t, cw, 'post', '/clients').send(attack), 'gatehouse:admin');
    expect(await db().client.findUnique({ where: { id: 'escalator' } })).toBeNull();
    // nor one with a narrower admin-API scope it lacks, nor one hiding it among scopes it holds
    await refused(api(t, cw, 'post', '/clients').send({ ...attack, scopes: ['gatehouse:users:write'] }), 'gatehouse:users:write');
    await refused(api(t, cw, 'post', '/clients').send({ ...attack, scopes: ['gatehouse:clients:read', 'gatehouse:keys:write'] }), 'gatehouse:keys:write');
    // a login client on the admin API counts too (people's tokens through it)
    await refused(
      api(t, cw, 'post', '/clients').send({ name: 'console', grants: ['authorization_code'], redirectUris: ['https://console.example.com/cb'], resources: [ADMIN_RESOURCE], scopes: ['gatehouse:admin'] }),
      'gatehouse:admin',
    );
    expect(await db().client.count({ where: { name: { in: ['escalator', 'console'] } } })).toBe(0);
  });

  it('a narrow caller cannot widen its own allowance', async () => {
    await refused(
      api(t, cw, 'patch', `/clients/${clientsWriter.id}`).send({ scopes: ['gatehouse:clients:write', 'gatehouse:clients:read', 'gatehouse:admin'] }),
      'gatehouse:admin',
    );
    await refused(api(t, cw, 'patch', `/clients/${clientsWriter.id}`).send({ scopes: ['gatehouse:clients:write', 'gatehouse:users:write'] }), 'gatehouse:users:write');
    expect((await getClient(db(), clientsWriter.id)).scopes).toEqual(['gatehouse:clients:write', 'gatehouse:clients:read']);
    // and so /token still refuses it the wider scope
    const res = await t.request
      .post('/token')
      .type('form')
      .set('Authorization', basic(clientsWriter.id, clientsWriter.secret))
      .send({ grant_type: 'client_credentials', resource: ADMIN_RESOURCE, scope: 'gatehouse:admin' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_scope');
  });

  it('nor give the admin API to a client that does not have it yet', async () => {
    const plain = await createClient(db(), { id: 'orders-worker', name: 'orders worker', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read', 'gatehouse:admin'] });
    // the scope is inert until the resource is added: adding it gives gatehouse:admin
    await refused(api(t, cw, 'patch', `/clients/${plain.client.id}`).send({ resources: [ORDERS, ADMIN_RESOURCE] }), 'gatehouse:admin');
    expect((await getClient(db(), plain.client.id)).resources).toEqual([ORDERS]);
  });

  it('resources:write cannot create a role on the admin API carrying a scope it lacks, nor move a role onto it', async () => {
    await refused(api(t, rw, 'post', '/roles').send({ name: 'sneaky-admin', resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'] }), 'gatehouse:admin');
    await refused(api(t, rw, 'post', '/roles').send({ name: 'sneaky-users', resource: ADMIN_RESOURCE, scopes: ['gatehouse:users:write'] }), 'gatehouse:users:write');
    expect(await db().role.count({ where: { name: { startsWith: 'sneaky' } } })).toBe(0);
    await createRole(db(), { name: 'orders-reader', resource: ORDERS, scopes: ['orders:read'] });
    await refused(api(t, rw, 'patch', '/roles/orders-reader').send({ resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'] }), 'gatehouse:admin');
    await createRole(db(), { name: 'resource-readers', resource: ADMIN_RESOURCE, scopes: ['gatehouse:resources:read'] });
    await refused(api(t, rw, 'patch', '/roles/resource-readers').send({ scopes: ['gatehouse:resources:read', 'gatehouse:keys:write'] }), 'gatehouse:keys:write');
    expect(await getRole(db(), 'orders-reader')).toMatchObject({ resource: ORDERS, scopes: ['orders:read'] });
    expect(await getRole(db(), 'resource-readers')).toMatchObject({ scopes: ['gatehouse:resources:read'] });
  });

  it('only gatehouse:admin changes the built-in admin resource', async () => {
    const path = `/resources/${encodeURIComponent(ADMIN_RESOURCE)}`;
    const before = await getResource(db(), ADMIN_RESOURCE);
    await refused(api(t, rw, 'patch', path).send({ accessTokenTtl: 3600 }), 'gatehouse:admin');
    await refused(api(t, rw, 'patch', path).send({ name: 'mine now' }), 'gatehouse:admin');
    await refused(api(t, rw, 'patch', path).send({ signingAlg: 'EdDSA' }), 'gatehouse:admin');
    expect(await getResource(db(), ADMIN_RESOURCE)).toEqual(before);
    const ok = await api(t, full, 'patch', path).send({ accessTokenTtl: 600 }).expect(200);
    expect(ok.body.accessTokenTtl).toBe(600);
  });

  it('users:write cannot hand out the built-in gatehouse-admin role, nor any role with an admin-API scope it lacks', async () => {
    const victim = await createAccount(db(), { email: 'mallory@example.com', password: PASSWORD });
    await refused(api(t, uw, 'put', `/users/${victim.id}/roles/gatehouse-admin`), 'gatehouse:admin');
    await createRole(db(), { name: 'key-rotators', resource: ADMIN_RESOURCE, scopes: ['gatehouse:keys:write'] });
    await refused(api(t, uw, 'put', `/users/${victim.id}/roles/key-rotators`), 'gatehouse:keys:write');
    expect(await rolesForAccount(db(), victim.id)).toEqual([]);
    // a holder of gatehouse:admin may
    await api(t, full, 'put', `/users/${victim.id}/roles/gatehouse-admin`).expect(201);
    expect((await rolesForAccount(db(), victim.id)).map((r) => r.name)).toEqual(['gatehouse-admin']);
  });

  it('no takeover of a client that holds more: its secret, redirect URIs, keys, auth method, public flag, grants, or enabling it', async () => {
    const boss = await createClient(db(), { id: 'boss', name: 'boss', grants: ['client_credentials'], resources: [ADMIN_RESOURCE], scopes: ['gatehouse:admin'] });
    const before = await getClient(db(), 'boss');
    await refused(api(t, cw, 'post', '/clients/boss/secret'), 'gatehouse:admin');
    for (const patch of [
      { grants: ['client_credentials', 'authorization_code'], redirectUris: ['https://evil.example.com/cb'] },
      { authMethod: 'client_secret_post' },
      { authMethod: 'private_key_jwt', jwksUri: 'https://evil.example.com/jwks' },
      { authMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] } },
      { public: true, grants: ['authorization_code'], redirectUris: ['https://evil.example.com/cb'] },
      { backchannelLogoutUri: 'https://evil.example.com/logout' },
      { accessTokenTtl: 86_400 },
    ]) {
      await refused(api(t, cw, 'patch', '/clients/boss').send(patch), 'gatehouse:admin');
    }
    expect(await getClient(db(), 'boss')).toEqual(before);
    expect(boss.clientSecret).toBeTruthy();

    // taking power away stays possible: rename, disable, narrow…
    await api(t, cw, 'patch', '/clients/boss').send({ name: 'boss (suspended)', disabled: true }).expect(200);
    // …but not enabling it again
    await refused(api(t, cw, 'patch', '/clients/boss').send({ disabled: false }), 'gatehouse:admin');
    expect((await getClient(db(), 'boss')).disabled).toBe(true);
    await api(t, full, 'patch', '/clients/boss').send({ disabled: false }).expect(200);
  });

  it('no takeover of a person who holds more: password, email, enabling', async () => {
    const root = await createAccount(db(), { email: 'root@example.com', password: PASSWORD, emailVerified: true });
    await addRoleToAccount(db(), root.id, 'gatehouse-admin');
    const path = `/users/${root.id}`;
    await refused(api(t, uw, 'post', `${path}/password`).send({ password: 'attacker knows this one' }), 'gatehouse:admin');
    await refused(api(t, uw, 'patch', path).send({ email: 'attacker@example.com' }), 'gatehouse:admin');
    await refused(api(t, uw, 'patch', path).send({ emailVerified: false }), 'gatehouse:admin');
    const stored = await db().account.findUniqueOrThrow({ where: { id: root.id } });
    expect(stored).toMatchObject({ email: 'root@example.com', emailVerified: true, passwordHash: (await db().account.findUniqueOrThrow({ where: { id: root.id } })).passwordHash });
    // taking power away stays possible; giving it back does not
    await api(t, uw, 'patch', path).send({ disabled: true }).expect(200);
    await refused(api(t, uw, 'patch', path).send({ disabled: false }), 'gatehouse:admin');
    await api(t, uw, 'post', `${path}/sessions:revoke`).expect(200);
    await api(t, full, 'patch', path).send({ disabled: false }).expect(200);
  });

  it('legitimate narrow writes still succeed', async () => {
    // clients:write registers ordinary clients, and admin clients within what it holds
    await api(t, cw, 'post', '/clients').send({ name: 'orders reader', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] }).expect(201);
    const reader = await api(t, cw, 'post', '/clients').send({ name: 'auditor', grants: ['client_credentials'], resources: [ADMIN_RESOURCE], scopes: ['gatehouse:clients:read'] }).expect(201);
    const tok = await tokenFor(t, { id: reader.body.id, secret: reader.body.clientSecret });
    await api(t, tok, 'get', '/clients').expect(200);
    await api(t, cw, 'post', `/clients/${reader.body.id}/secret`).expect(200);
    await api(t, cw, 'patch', `/clients/${reader.body.id}`).send({ scopes: ['gatehouse:clients:read', 'gatehouse:clients:write'] }).expect(200);
    // resources:write makes roles on the admin API within what it holds
    await api(t, rw, 'post', '/roles').send({ name: 'catalogue-keepers', resource: ADMIN_RESOURCE, scopes: ['gatehouse:resources:read'] }).expect(201);
    await api(t, rw, 'post', '/roles').send({ name: 'orders-clerk', resource: ORDERS, scopes: ['orders:read', 'orders:write'] }).expect(201);
    // users:write hands out roles that carry no admin-API permission, and manages ordinary people
    const u = await api(t, uw, 'post', '/users').send({ email: 'clerk@example.com' }).expect(201);
    await api(t, uw, 'put', `/users/${u.body.id}/roles/orders-clerk`).expect(201);
    await api(t, uw, 'post', `/users/${u.body.id}/password`).send({ password: PASSWORD }).expect(200);
    await api(t, uw, 'patch', `/users/${u.body.id}`).send({ email: 'clerk2@example.com' }).expect(200);
    // gatehouse:admin may do anything
    await api(t, full, 'post', '/clients').send({ name: 'second admin', grants: ['client_credentials'], resources: [ADMIN_RESOURCE], scopes: ['gatehouse:admin'] }).expect(201);
    await api(t, full, 'post', '/roles').send({ name: 'super', resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'] }).expect(201);
  });

  it('people reach the admin API only through a role on it; their changes are audited as them, with the client', async () => {
    const adminConsole = await createWebClient(t, {
      name: 'Console',
      firstParty: true,
      resources: [ADMIN_RESOURCE],
      scopes: ['gatehouse:users:read', 'gatehouse:users:write', 'gatehouse:admin'],
    });
    const nobody = await createAccount(db(), { email: 'nobody@example.com', password: PASSWORD, emailVerified: true });
    const params = { scope: 'openid gatehouse:users:read', resource: ADMIN_RESOURCE };
    const without = await codeFlowTokens(new Browser(t), adminConsole, params, { email: 'nobody@example.com' });
    expectProblem(await api(t, without.access_token as string, 'get', '/users'), 403);

    await createRole(db(), { name: 'user-readers', resource: ADMIN_RESOURCE, scopes: ['gatehouse:users:read', 'gatehouse:users:write'] });
    await addRoleToAccount(db(), nobody.id, 'user-readers');
    const withRole = await codeFlowTokens(new Browser(t), adminConsole, { ...params, scope: 'openid gatehouse:users:read gatehouse:users:write' }, { email: 'nobody@example.com' });
    const personal = withRole.access_token as string;
    await api(t, personal, 'get', '/users').expect(200);
    await api(t, personal, 'patch', `/users/${nobody.id}`).send({ name: 'Somebody' }).expect(200);
    const ev = await db().auditEvent.findFirstOrThrow({ where: { action: 'user.update', targetId: nobody.id } });
    expect(ev).toMatchObject({ actorType: 'user', actorId: nobody.id, details: expect.objectContaining({ viaClient: adminConsole.id }) });
    // and what a person holds is what their roles give: no gatehouse-admin role for themselves
    await refused(api(t, personal, 'put', `/users/${nobody.id}/roles/gatehouse-admin`), 'gatehouse:admin');
  });

  it("the admin API's actor: a person acting through a client, and an exchanged token's act claim, are recorded", async () => {
    const person = await createAccount(db(), { email: 'exchanged@example.com' });
    // what src/admin/auth.ts makes of an exchanged token: the person's sub, the acting client, its act claim
    const principal = { clientId: 'orders-service', subject: person.id, isUser: true, scopes: new Set(['gatehouse:users:write']), jti: 'j', exp: 0, act: { sub: 'orders-service' } };
    const ctx = { state: { requestId: 'req-act' }, ip: '192.0.2.7' } as unknown as Context;
    const actor = actorOf({ ctx, principal: principal as AdminPrincipal });
    expect(actor).toMatchObject({ type: 'user', id: person.id, clientId: 'orders-service', act: { sub: 'orders-service' }, requestId: 'req-act', ip: '192.0.2.7' });
    await updateAccountAs(db(), actor, person.id, { name: 'Exchanged' });
    const ev = await db().auditEvent.findFirstOrThrow({ where: { action: 'user.update', targetId: person.id } });
    expect(ev).toMatchObject({ actorType: 'user', actorId: person.id, requestId: 'req-act', ip: '192.0.2.7', details: expect.objectContaining({ viaClient: 'orders-service', act: { sub: 'orders-service' } }) });
    // a machine token acts as its client, with nothing extra
    const machine = actorOf({ ctx, principal: { ...principal, subject: 'orders-service', isUser: false, act: undefined } as AdminPrincipal });
    expect(machine).toMatchObject({ type: 'client', id: 'orders-service' });
    expect(machine.act).toBeUndefined();
  });

  it('the CLI (the operator) may grant anything; gatehouse-admin is built in: listed, never exported, never pruned', async () => {
    const run = async (...args: string[]) => {
      const r = await cli(t.database.url, args);
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    await run('clients', 'create', '--id', 'ops-admin', '--name', 'ops', '--grant', 'client_credentials', '--resource', ADMIN_RESOURCE, '--scope', 'gatehouse:admin');
    await createAccount(db(), { email: 'ops@example.com', password: PASSWORD });
    await run('users', 'add-role', 'ops@example.com', 'gatehouse-admin');
    const roles = (await run('roles', 'list', '--json')).json<{ name: string; resource: string; scopes: string[]; builtIn: boolean }[]>();
    expect(roles.find((r) => r.name === 'gatehouse-admin')).toMatchObject({ resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'], builtIn: true });
    const exported = (await run('export', '--json')).json<{ roles: { name: string }[] }>();
    expect(exported.roles.map((r) => r.name)).not.toContain('gatehouse-admin');
    const plan = (await cli(t.database.url, ['apply', '-f', '-', '--prune', '--dry-run', '--json'], { stdin: '{}' })).json<{ delete: { kind: string; id: string }[] }>();
    expect(plan.delete).not.toContainEqual({ kind: 'role', id: 'gatehouse-admin' });
    expect(plan.delete).toContainEqual({ kind: 'role', id: 'orders-reader' });
    // and through the API, nobody deletes or rewrites it
    expectProblem(await api(t, full, 'delete', '/roles/gatehouse-admin'), 409);
    expectProblem(await api(t, full, 'patch', '/roles/gatehouse-admin').send({ scopes: ['gatehouse:users:read'] }), 409);
    expect(await getRole(db(), 'gatehouse-admin')).toMatchObject({ resource: ADMIN_RESOURCE, scopes: ['gatehouse:admin'] });
  });
});
