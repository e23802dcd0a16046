// Every policy kind, on every write path (apply, the CLI, the admin API): a
// change that would break it is refused with the policy named, and nothing is
// written (the rest of an apply neither). `gatehouse check` says the same and
// changes nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { TOKEN_EXCHANGE } from '../../src/access/model.ts';
import { AccessMapView } from '../../src/admin/schemas.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { adminToken, api, expectProblem, expectShape } from '../admin/helpers.ts';

const PAY = 'https://payments.test';
const ORDERS = 'https://orders.test';
const HISTORY = 'https://history.test';
const LEDGER = 'https://ledger.test';
const SHIPPING = 'https://shipping.test';

const base = {
  resources: [
    { identifier: PAY, scopes: ['payments:charge', 'payments:read'], sensitive: ['payments:charge'], requireRoles: true },
    { identifier: ORDERS, scopes: ['orders:write'], servedBy: ['orders-svc'] },
    { identifier: HISTORY, scopes: ['history:read'] },
    { identifier: LEDGER, scopes: ['ledger:write'], sensitive: ['ledger:write'], requireRoles: true },
    { identifier: SHIPPING, scopes: ['shipping:write'] },
  ],
  clients: [
    { id: 'checkout', name: 'Checkout', grants: ['client_credentials'], scopes: ['payments:charge'], resources: [PAY] },
    { id: 'orders-svc', name: 'Orders service', grants: ['client_credentials', TOKEN_EXCHANGE], scopes: ['payments:read'], resources: [PAY] },
    { id: 'storefront', name: 'Storefront', grants: ['client_credentials'], scopes: ['orders:write'], resources: [ORDERS] },
    { id: 'recommender', name: 'Recommender', grants: ['client_credentials'], scopes: ['history:read'], resources: [HISTORY] },
    { id: 'web', name: 'Web', grants: ['authorization_code'], redirectUris: ['https://web.test/cb'], scopes: ['history:read'], resources: [HISTORY] },
    { id: 'ledger-svc', name: 'Ledger service', grants: [TOKEN_EXCHANGE], scopes: ['ledger:write'], resources: [LEDGER] },
    { id: 'shipping-svc', name: 'Shipping service', grants: [TOKEN_EXCHANGE], scopes: ['shipping:write'], resources: [SHIPPING] },
  ],
  policies: [
    { name: 'only-checkout-charges', kind: 'only-clients', api: PAY, scope: 'payments:charge', clients: ['checkout'] },
    { name: 'history-stays-private', kind: 'only-people-and-clients', scope: 'history:read', clients: ['recommender'] },
    { name: 'short-chains', kind: 'max-chain', length: 1 },
    { name: 'few-secrets-each', kind: 'max-sensitive-per-client', count: 1 },
    { name: 'sensitive-needs-roles', kind: 'sensitive-requires-roles' },
  ],
};

/** Each kind, the policy it breaks, and the same change for the three paths. */
const CASES = [
  {
    policy: 'only-checkout-charges',
    client: { id: 'storefront', patch: { scopes: ['orders:write', 'payments:charge'], resources: [ORDERS, PAY] } },
    flags: ['clients', 'update', 'storefront', '--scope', 'orders:write payments:charge', '--resource', ORDERS, '--resource', PAY],
    path: 'storefront -[client_credentials]-> https://payments.test',
  },
  {
    policy: 'history-stays-private',
    client: { id: 'storefront', patch: { scopes: ['orders:write', 'history:read'], resources: [ORDERS, HISTORY] } },
    flags: ['clients', 'update', 'storefront', '--scope', 'orders:write history:read', '--resource', ORDERS, '--resource', HISTORY],
    path: 'storefront -[client_credentials]-> https://history.test',
  },
  {
    policy: 'short-chains',
    resource: { id: PAY, patch: { servedBy: ['shipping-svc'] } },
    flags: ['resources', 'update', PAY, '--served-by', 'shipping-svc'],
    path: 'storefront -[client_credentials]-> https://orders.test -[exchange by orders-svc]-> https://payments.test -[exchange by shipping-svc]-> https://shipping.test',
  },
  {
    policy: 'few-secrets-each',
    client: { id: 'checkout', patch: { scopes: ['payments:charge', 'ledger:write'], resources: [PAY, LEDGER] } },
    flags: ['clients', 'update', 'checkout', '--scope', 'payments:charge ledger:write', '--resource', PAY, '--resource', LEDGER],
    path: undefined,
  },
  {
    policy: 'sensitive-needs-roles',
    resource: { id: PAY, patch: { requireRoles: false } },
    flags: ['resources', 'update', PAY, '--no-require-roles'],
    path: undefined,
  },
] as const;

let t: TestApp;
let h: DbHandle;
let tmp: string;
let token: string;
const run = (...args: string[]) => cli(t.database.url, args);
const write = (name: string, doc: unknown) => {
  const file = path.join(tmp, name);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
};
/** Every row a registry write could touch, and the audit trail's length. */
const snapshot = async () => {
  const p = h.prisma;
  return JSON.stringify({
    resources: await p.resource.findMany({ orderBy: { identifier: 'asc' } }),
    clients: await p.client.findMany({ orderBy: { id: 'asc' } }),
    roles: await p.role.findMany({ orderBy: { name: 'asc' } }),
    policies: await p.accessPolicy.findMany({ orderBy: { name: 'asc' } }),
    audit: await p.auditEvent.count(),
  });
};

/** The apply file with one entry changed the way a case changes it, and an unrelated new client. */
function fileWith(c: (typeof CASES)[number]) {
  const doc = structuredClone(base) as { resources: Record<string, unknown>[]; clients: Record<string, unknown>[]; policies: unknown[] };
  if ('client' in c) Object.assign(doc.clients.find((x) => x.id === c.client.id)!, c.client.patch);
  if ('resource' in c) Object.assign(doc.resources.find((x) => x.identifier === c.resource.id)!, c.resource.patch);
  doc.clients.push({ id: 'unrelated', name: 'Unrelated', grants: ['client_credentials'], scopes: ['orders:write'], resources: [ORDERS] });
  return doc;
}

beforeAll(async () => {
  t = await createTestApp();
  h = openDb({ url: t.database.url, poolSize: 2 });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-access-'));
  const applied = await run('apply', '-f', write('base.json', base), '--json');
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);
  token = await adminToken(t, ['gatehouse:clients:write', 'gatehouse:resources:write', 'gatehouse:clients:read', 'gatehouse:resources:read']);
}, 60_000);

afterAll(async () => {
  await h?.close();
  await t?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('access policies', () => {
  it('are stored by apply, exported, and a second apply plans nothing', async () => {
    const exported = await run('export', '--json');
    expect(exported.json<{ policies: { name: string }[] }>().policies.map((p) => p.name)).toEqual([
      'few-secrets-each',
      'history-stays-private',
      'only-checkout-charges',
      'sensitive-needs-roles',
      'short-chains',
    ]);
    const again = await run('apply', '-f', write('again.json', exported.json()), '--json');
    expect(again.json()).toMatchObject({ create: [], update: [], delete: [] });
  });

  describe.each(CASES)('$policy', (c) => {
    it('apply: the plan is shown with the violation, nothing of the file is applied, exit 1', async () => {
      const before = await snapshot();
      const r = await run('apply', '-f', write(`${c.policy}.json`, fileWith(c)));
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('+ client unrelated');
      expect(r.stdout).toContain(`refused by policy '${c.policy}'`);
      if (c.path) expect(r.stdout).toContain(`path: ${c.path}`);
      expect(r.stdout).toContain('nothing applied');
      expect(await snapshot()).toBe(before);

      const json = await run('apply', '-f', write(`${c.policy}.json`, fileWith(c)), '--json');
      expect(json.code).toBe(1);
      expect(json.json()).toMatchObject({ refused: true, violations: [expect.objectContaining({ policy: c.policy })] });
      expect(await snapshot()).toBe(before);
    });

    it('check -f: names the violation, exit 1, changes nothing', async () => {
      const before = await snapshot();
      const r = await run('check', '-f', write(`${c.policy}-check.json`, fileWith(c)));
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`violation: policy '${c.policy}'`);
      expect(await snapshot()).toBe(before);
    });

    it('the CLI: one line naming the policy, exit 1, nothing written', async () => {
      const before = await snapshot();
      const r = await run(...c.flags);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^gatehouse: refused by policy '${c.policy}'[^\\n]*\\n$`));
      if (c.path) expect(r.stderr).toContain(c.path);
      expect(await snapshot()).toBe(before);
    });

    it('the admin API: 422 problem+json naming the policy and the path, nothing written', async () => {
      const before = await snapshot();
      const res =
        'client' in c
          ? await api(t, token, 'patch', `/clients/${c.client.id}`).send(c.client.patch)
          : await api(t, token, 'patch', `/resources/${encodeURIComponent(c.resource.id)}`).send(c.resource.patch);
      expectProblem(res, 422);
      expect(res.body.type).toBe('urn:gatehouse:problem:policy-violation');
      expect(res.body.detail).toContain(`refused by policy '${c.policy}'`);
      expect(res.body.violations[0]).toMatchObject({ policy: c.policy });
      if (c.path) expect(res.body.violations.map((v: { path?: string }) => v.path)).toContain(c.path);
      expect(await snapshot()).toBe(before);
    });
  });

  it('a change that keeps every policy goes through on every path', async () => {
    const r = await run('clients', 'update', 'storefront', '--name', 'Shop front');
    expect(r.stderr).toBe('');
    const res = await api(t, token, 'patch', `/resources/${encodeURIComponent(HISTORY)}`).send({ name: 'Viewing history' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const ok = await run('check', '-f', write('ok.json', base));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: /);
  });

  it('a policy the registry already breaks cannot be added (apply refuses it, nothing written)', async () => {
    const before = await snapshot();
    const doc = { ...structuredClone(base), policies: [...base.policies, { name: 'nobody-charges', kind: 'only-clients', scope: 'payments:charge', clients: [] }] };
    const r = await run('apply', '-f', write('new-policy.json', doc));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("refused by policy 'nobody-charges' (only-clients): checkout reaches payments:charge on https://payments.test");
    expect(await snapshot()).toBe(before);
  });

  it('an invalid policy in a file is refused naming the entry and the field', async () => {
    const doc = { policies: [{ name: 'bad', kind: 'max-chain', length: -1 }] };
    const r = await run('apply', '-f', write('bad.json', doc));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/policies\[0\] \(name "bad"\): length: /);
    const kind = await run('apply', '-f', write('bad-kind.json', { policies: [{ name: 'x', kind: 'nobody-may' }] }));
    expect(kind.stderr).toContain('kind: must be one of: only-clients, only-people-and-clients, max-chain, max-sensitive-per-client, sensitive-requires-roles');
  });

  it('GET /admin/v1/access-map answers with the map, needs clients:read as well as resources:read', async () => {
    const res = await api(t, token, 'get', `/access-map?api=${encodeURIComponent(PAY)}&scope=payments:charge`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const view = expectShape(AccessMapView, res.body);
    expect(view.entries.map((e) => e.principal)).toEqual(['client:checkout']);
    const narrow = await adminToken(t, ['gatehouse:resources:read']);
    expectProblem(await api(t, narrow, 'get', '/access-map'), 403);
    const svg = await api(t, token, 'get', '/access-map?ifLeaked=storefront&format=svg');
    expect(svg.status).toBe(200);
    expect(svg.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(String(svg.body ?? svg.text)).toContain('<title id="am-title">Access map: if storefront leaks</title>');
    expectProblem(await api(t, token, 'get', '/access-map?client=nobody'), 404);
    expectProblem(await api(t, token, 'get', '/access-map?client=a&api=b'), 422);
  });
});
