// Walks the admin API's own OpenAPI document: for every write operation and
// every admin-API permission (the scopes the document lists), a caller holding
// only the operation's own scope tries each way that operation could give the
// permission, or hand over something that holds it. Each try must be refused
// with 403 naming the permission, and change nothing (rows and audit trail
// compared before and after). The same try with a permission the caller does
// hold must succeed: so the refusals are about the permission, not the request.
//
// Every write operation of the document must appear in WIDENINGS, either with
// its tries or with the reason it cannot give anything; a new write route
// fails this test until someone has thought about it. The decisions are listed
// at the top of escalation.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/store.ts';
import { createClient, type ClientInput } from '../../src/clients/store.ts';
import { addRoleToAccount, createRole } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE, createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { adminClient, api, expectProblem, tokenFor, type AdminClient } from '../admin/helpers.ts';

const ORDERS = 'https://orders.example.com';
const PASSWORD = 'correct horse battery staple';
const CB = 'https://app.example.com/cb';

type Method = 'post' | 'put' | 'patch' | 'delete';
interface Operation {
  operationId: string;
  method: Method;
  path: string;
  /** the narrow scope the operation needs */
  scope: string;
}
interface Try {
  label: string;
  method: Method;
  path: string;
  body?: unknown;
  /** the scope a refusal must name (default: the permission tried) */
  needs?: string;
}
interface Ctx {
  t: TestApp;
  /** the caller (holds only the operation's scope) */
  caller: AdminClient;
  /** the operation's scope */
  scope: string;
  /** a fresh id */
  id: (prefix: string) => string;
}
type Widenings = { tries: (perm: string, c: Ctx) => Promise<Try[]> } | { none: string };

const db = (c: Ctx) => c.t.gatehouse.db.prisma;
const slug = (perm: string) => perm.replace(/[^a-z]+/g, '-');
const roleFor = (perm: string) => (perm === 'gatehouse:admin' ? 'gatehouse-admin' : `perm-${slug(perm)}`);

/** A client (seeded by the operator) that holds `perm` on the admin API. */
async function holderClient(c: Ctx, perm: string, input: Partial<ClientInput> = {}): Promise<string> {
  const id = c.id('holder');
  await createClient(db(c), { id, name: id, grants: ['client_credentials'], resources: [ADMIN_RESOURCE], scopes: [perm], ...input });
  return id;
}

/** A person (seeded by the operator) whose role gives `perm` on the admin API. */
async function holderPerson(c: Ctx, perm: string, input: { disabled?: boolean } = {}): Promise<string> {
  const a = await createAccount(db(c), { email: `${c.id('p')}@example.com`, password: PASSWORD, emailVerified: true });
  await addRoleToAccount(db(c), a.id, roleFor(perm));
  if (input.disabled) await db(c).account.update({ where: { id: a.id }, data: { disabled: true } });
  return a.id;
}

const WIDENINGS: Record<string, Widenings> = {
  createClient: {
    async tries(perm, c) {
      const base = { resources: [ADMIN_RESOURCE], scopes: [perm] };
      return [
        { label: 'a machine client', method: 'post', path: '/clients', body: { name: c.id('m'), grants: ['client_credentials'], ...base } },
        { label: 'a login client', method: 'post', path: '/clients', body: { name: c.id('l'), grants: ['authorization_code'], redirectUris: [CB], ...base } },
        {
          label: 'a token-exchange client',
          method: 'post',
          path: '/clients',
          body: { name: c.id('x'), grants: ['urn:ietf:params:oauth:grant-type:token-exchange'], ...base },
        },
      ];
    },
  },
  updateClient: {
    async tries(perm, c) {
      const inert = c.id('inert');
      await createClient(db(c), { id: inert, name: inert, grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read', perm] });
      const partial = c.id('partial');
      await createClient(db(c), { id: partial, name: partial, grants: ['client_credentials'], resources: [ORDERS, ADMIN_RESOURCE], scopes: ['orders:read'] });
      const disabled = await holderClient(c, perm, { disabled: true });
      const takeover = async (label: string, body: unknown): Promise<Try> => ({ label, method: 'patch', path: `/clients/${await holderClient(c, perm)}`, body });
      return [
        { label: 'widen its own allowance', method: 'patch', path: `/clients/${c.caller.id}`, body: { scopes: [c.scope, perm] } },
        { label: 'add the admin API to a client', method: 'patch', path: `/clients/${inert}`, body: { resources: [ORDERS, ADMIN_RESOURCE] } },
        { label: 'add the scope to a client', method: 'patch', path: `/clients/${partial}`, body: { scopes: ['orders:read', perm] } },
        { label: 'enable a client that holds it', method: 'patch', path: `/clients/${disabled}`, body: { disabled: false } },
        await takeover('give a holder a redirect URI', { grants: ['client_credentials', 'authorization_code'], redirectUris: [CB] }),
        await takeover('switch a holder to a secret sent in the body', { authMethod: 'client_secret_post' }),
        await takeover('give a holder the caller\'s key set URL', { authMethod: 'private_key_jwt', jwksUri: 'https://attacker.example.com/jwks' }),
        await takeover('make a holder public', { public: true, grants: ['authorization_code'], redirectUris: [CB] }),
        await takeover('point a holder\'s back-channel logout elsewhere', { backchannelLogoutUri: 'https://attacker.example.com/logout' }),
        await takeover('lengthen a holder\'s tokens', { accessTokenTtl: 86_400 }),
      ];
    },
  },
  deleteClient: { none: 'deleting takes power away; a client registered again under the id starts with nothing' },
  rotateClientSecret: {
    async tries(perm, c) {
      return [{ label: "take a holder's secret", method: 'post', path: `/clients/${await holderClient(c, perm)}/secret` }];
    },
  },
  createUser: { none: 'a new person holds no role' },
  inviteUser: {
    async tries(perm, c) {
      return [{ label: 'invite a person with a role carrying it', method: 'post', path: '/users/invitations', body: { email: `${c.id('i')}@example.com`, roles: [roleFor(perm)] } }];
    },
  },
  resendUserInvitation: {
    async tries(perm, c) {
      // an invited holder who has not chosen a password: whoever gets the new link could act as them
      const a = await createAccount(db(c), { email: `${c.id('inv')}@example.com` });
      await addRoleToAccount(db(c), a.id, roleFor(perm));
      return [{ label: "resend a holder's invitation", method: 'post', path: `/users/${a.id}/invitation:resend` }];
    },
  },
  updateUser: {
    async tries(perm, c) {
      const disabled = await holderPerson(c, perm, { disabled: true });
      return [
        { label: "change a holder's email", method: 'patch', path: `/users/${await holderPerson(c, perm)}`, body: { email: `${c.id('new')}@example.com` } },
        { label: "change a holder's email verification", method: 'patch', path: `/users/${await holderPerson(c, perm)}`, body: { emailVerified: false } },
        { label: 'enable a holder', method: 'patch', path: `/users/${disabled}`, body: { disabled: false } },
      ];
    },
  },
  deleteUser: { none: 'deleting takes power away' },
  setUserPassword: {
    async tries(perm, c) {
      return [{ label: "set a holder's password", method: 'post', path: `/users/${await holderPerson(c, perm)}/password`, body: { password: 'the caller knows this one' } }];
    },
  },
  revokeUserSessions: { none: 'ending sessions takes power away' },
  resetUserMfa: {
    // turning a holder's second factor off would weaken their sign-in: refused like a takeover
    async tries(perm, c) {
      return [{ label: "turn a holder's MFA off", method: 'post', path: `/users/${await holderPerson(c, perm)}/mfa:reset` }];
    },
  },
  removeUserFactor: {
    // removing a holder's authenticator app would weaken their sign-in: refused like a takeover
    async tries(perm, c) {
      const id = await holderPerson(c, perm);
      await db(c).account.update({ where: { id }, data: { totpSecret: 'sealed-secret', totpEnabledAt: new Date() } });
      return [{ label: "remove a holder's authenticator app", method: 'delete', path: `/users/${id}/factors/totp` }];
    },
  },
  endUserSession: { none: 'ending a session takes power away' },
  addUserRole: {
    async tries(perm, c) {
      const a = await createAccount(db(c), { email: `${c.id('p')}@example.com` });
      return [{ label: 'give a person a role carrying it', method: 'put', path: `/users/${a.id}/roles/${roleFor(perm)}` }];
    },
  },
  removeUserRole: { none: 'taking a role away takes power away' },
  createResource: { none: 'admin-API permissions are scopes of the built-in resource only, and the urn:gatehouse: namespace is reserved (422)' },
  updateResource: {
    async tries(perm) {
      if (perm !== 'gatehouse:admin') return [];
      const path = `/resources/${encodeURIComponent(ADMIN_RESOURCE)}`;
      return [
        { label: 'rename the admin API', method: 'patch', path, body: { name: 'mine' } },
        { label: "lengthen the admin API's tokens", method: 'patch', path, body: { accessTokenTtl: 86_400 } },
        { label: "change the admin API's algorithm", method: 'patch', path, body: { signingAlg: 'EdDSA' } },
      ];
    },
  },
  deleteResource: { none: 'nobody deletes the built-in resource (409); other resources carry no admin-API permission' },
  createRole: {
    async tries(perm, c) {
      return [{ label: 'a role on the admin API', method: 'post', path: '/roles', body: { name: c.id('r'), resource: ADMIN_RESOURCE, scopes: [perm] } }];
    },
  },
  updateRole: {
    async tries(perm, c) {
      const elsewhere = c.id('r');
      await createRole(db(c), { name: elsewhere, resource: ORDERS, scopes: ['orders:read'] });
      const onAdmin = c.id('r');
      await createRole(db(c), { name: onAdmin, resource: ADMIN_RESOURCE, scopes: [c.scope] });
      return [
        { label: 'move a role onto the admin API', method: 'patch', path: `/roles/${elsewhere}`, body: { resource: ADMIN_RESOURCE, scopes: [perm] } },
        { label: 'add the scope to an admin-API role', method: 'patch', path: `/roles/${onAdmin}`, body: { scopes: [c.scope, perm] } },
      ];
    },
  },
  deleteRole: { none: 'deleting a role takes power away; nobody deletes the built-in gatehouse-admin role (409)' },
  rotateKey: { none: 'signing keys carry no admin-API permission' },
  createIdp: { none: 'only gatehouse:admin may call it (a provider can sign in as any verified email): the caller already holds every permission' },
  updateIdp: { none: 'only gatehouse:admin may call it: the caller already holds every permission' },
  deleteIdp: { none: 'only gatehouse:admin may call it, and deleting takes power away' },
};

describe('admin API: every write route of the OpenAPI document refuses every widening', () => {
  let t: TestApp;
  let operations: Operation[];
  let permissions: string[];
  const callers = new Map<string, { client: AdminClient; token: string }>();
  let n = 0;

  /** Every row a widening could touch, and the audit trail's length. */
  const snapshot = async () => {
    const p = t.gatehouse.db.prisma;
    const rows = {
      clients: await p.client.findMany({ orderBy: { id: 'asc' } }),
      resources: await p.resource.findMany({ orderBy: { identifier: 'asc' } }),
      roles: await p.role.findMany({ orderBy: { name: 'asc' } }),
      accountRoles: await p.accountRole.findMany({ orderBy: [{ accountId: 'asc' }, { roleId: 'asc' }] }),
      accounts: await p.account.findMany({ orderBy: { id: 'asc' } }),
      keys: await p.signingKey.count(),
      audit: await p.auditEvent.count(),
    };
    return JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  };

  beforeAll(async () => {
    t = await createTestApp();
    await createResource(t.gatehouse.db.prisma, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
    const doc = (await t.request.get('/admin/v1/openapi.json').expect(200)).body as {
      paths: Record<string, Record<string, { operationId: string; 'x-required-scopes'?: string[] }>>;
      components: { securitySchemes: { oauth2: { flows: { clientCredentials: { scopes: Record<string, string> } } } } };
    };
    permissions = Object.keys(doc.components.securitySchemes.oauth2.flows.clientCredentials.scopes);
    operations = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
        operations.push({ operationId: op.operationId, method: method as Method, path, scope: op['x-required-scopes']![0]! });
      }
    }
    // one role per permission, for the people who hold it
    for (const perm of permissions) {
      if (perm !== 'gatehouse:admin') await createRole(t.gatehouse.db.prisma, { name: roleFor(perm), resource: ADMIN_RESOURCE, scopes: [perm] });
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  async function caller(scope: string) {
    let c = callers.get(scope);
    if (!c) {
      const client = await adminClient(t, [scope]);
      c = { client, token: await tokenFor(t, client) };
      callers.set(scope, c);
    }
    return c;
  }

  it('the document lists the admin-API permissions and every write operation is accounted for', () => {
    expect(permissions).toContain('gatehouse:admin');
    expect(permissions.length).toBeGreaterThan(5);
    expect(operations.length).toBeGreaterThanOrEqual(18);
    expect(operations.map((o) => o.operationId).sort()).toEqual(Object.keys(WIDENINGS).sort());
  });

  const operationIds = Object.keys(WIDENINGS).filter((id) => 'tries' in WIDENINGS[id]!);
  it.each(operationIds)('%s: each widening is refused for each permission the caller lacks, and allowed for one it holds', async (operationId) => {
    const op = operations.find((o) => o.operationId === operationId)!;
    const w = WIDENINGS[operationId] as Extract<Widenings, { tries: unknown }>;
    const { client, token } = await caller(op.scope);
    const c: Ctx = { t, caller: client, scope: op.scope, id: (prefix) => `${prefix}-${++n}` };
    let refusedCount = 0;
    let allowedCount = 0;
    for (const perm of permissions) {
      for (const attempt of await w.tries(perm, c)) {
        const what = `${operationId} (${op.method.toUpperCase()} ${attempt.path}) ${attempt.label} → ${perm}`;
        const needs = attempt.needs ?? perm;
        const holds = needs === op.scope;
        const before = await snapshot();
        const req = api(t, token, attempt.method, attempt.path);
        const res = await (attempt.body === undefined ? req : req.send(attempt.body as object));
        if (holds) {
          expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(200);
          expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
          allowedCount++;
        } else {
          expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(403);
          expectProblem(res, 403);
          expect(res.body.detail, what).toBe(`this change needs the scope ${needs}, which the caller does not hold`);
          expect(await snapshot(), `${what} changed something`).toBe(before);
          refusedCount++;
        }
      }
    }
    expect(refusedCount, `${operationId}: nothing was tried`).toBeGreaterThan(0);
    // updateResource's tries are all about gatehouse:admin, which no narrow caller holds
    if (operationId !== 'updateResource') expect(allowedCount, `${operationId}: no try with a held permission`).toBeGreaterThan(0);
  });
});
