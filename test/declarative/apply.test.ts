import { userInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { digestSecret } from '../../src/clients/secrets.ts';
import { getClientRecord } from '../../src/clients/store.ts';
import { baseDoc, expectOk, expectOneLineError, setupEnv, type Env, type PlanJson } from './helpers.ts';

describe('gatehouse apply', () => {
  let env: Env;
  let file: string;
  let ordersSecret: string;

  beforeAll(async () => {
    env = await setupEnv();
    file = env.write('gatehouse.json', baseDoc());
  });
  afterAll(async () => {
    await env?.close();
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    expectOk(await env.run('resources', 'list')); // the CLI makes the built-ins on first use
    const before = await env.snapshot();
    const r = await env.run('apply', '-f', file, '--dry-run', '--json');
    expectOk(r);
    expect(r.json<PlanJson>()).toEqual({
      create: [
        { kind: 'resource', id: 'https://orders.example' },
        { kind: 'resource', id: 'https://records.example' },
        { kind: 'client', id: 'orders-service' },
        { kind: 'client', id: 'web' },
        { kind: 'role', id: 'nurse' },
        { kind: 'role', id: 'doctor' },
      ],
      update: [],
      delete: [],
      secrets: [],
    });
    expect(await env.snapshot()).toBe(before);

    const human = await env.run('apply', '-f', file, '--dry-run');
    expectOk(human);
    expect(human.stdout).toContain('+ resource https://orders.example\n');
    expect(human.stdout).toContain('+ client orders-service\n');
    expect(human.stdout).toContain('+ role doctor\n');
    expect(human.stdout).toContain('nothing changed');
    expect(human.stdout).not.toContain('client_secret');
    expect(await env.snapshot()).toBe(before);
  });

  it('applies everything in one go, the servedBy cycle included, and prints new secrets once', async () => {
    const r = await env.run('apply', '-f', file, '--json');
    expectOk(r);
    const plan = r.json<PlanJson>();
    expect(Object.keys(plan)).toEqual(['create', 'update', 'delete', 'secrets']);
    expect(plan.create).toHaveLength(6);
    expect(plan.update).toEqual([]);
    expect(plan.delete).toEqual([]);
    // only the confidential client gets a secret; the public one does not
    expect(plan.secrets).toHaveLength(1);
    expect(plan.secrets[0]!.client_id).toBe('orders-service');
    ordersSecret = plan.secrets[0]!.client_secret;
    expect(ordersSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // only the digest is stored
    const record = await getClientRecord(env.h.prisma, 'orders-service');
    expect(record!.secretDigest).toBe(digestSecret(ordersSecret));
    expect(JSON.stringify(await env.h.prisma.client.findMany())).not.toContain(ordersSecret);
    expect((await getClientRecord(env.h.prisma, 'web'))!.secretDigest).toBeNull();

    // the cycle: the orders API is served by the client that may call it
    const orders = await env.h.prisma.resource.findUniqueOrThrow({ where: { identifier: 'https://orders.example' } });
    expect(orders.servedBy).toEqual(['orders-service']);
    expect(record!.resources).toEqual(['https://orders.example']);
    const records = await env.h.prisma.resource.findUniqueOrThrow({ where: { identifier: 'https://records.example' } });
    expect(records).toMatchObject({ accessTokenTtl: 600, requireRoles: true, name: null, signingAlg: 'RS256' });
    const web = await getClientRecord(env.h.prisma, 'web');
    expect(web).toMatchObject({ public: true, authMethod: 'none', requireDpop: true, redirectUris: ['https://app.example/cb'] });

    // roles
    const roles = await env.h.prisma.role.findMany({ where: { name: { not: 'gatehouse-admin' } }, orderBy: { name: 'asc' } });
    expect(roles.map((x) => [x.name, x.resource, x.scopes])).toEqual([
      ['doctor', 'https://records.example', ['records:read', 'prescriptions:write']],
      ['nurse', 'https://records.example', ['records:read']],
    ]);

    // never shown again
    const shown = await env.run('clients', 'show', 'orders-service', '--json');
    expect(shown.stdout).not.toContain(ordersSecret);
  });

  it('writes an audit event per change, without secrets', async () => {
    const { items } = await listAuditEvents(env.h.prisma, { limit: 500 });
    const actions = items.map((e) => `${e.action} ${e.targetId}`).sort();
    expect(actions).toEqual(
      [
        'client.create orders-service',
        'client.create web',
        'resource.create https://orders.example',
        'resource.create https://records.example',
        'role.create doctor',
        'role.create nurse',
      ].sort(),
    );
    for (const e of items) expect(e).toMatchObject({ actorType: 'operator', actorId: process.env.SUDO_USER || userInfo().username });
    const created = items.find((e) => e.action === 'resource.create' && e.targetId === 'https://orders.example')!;
    // the event shows the final state (servedBy set after the client existed)
    expect(created.details).toMatchObject({ via: 'apply', after: { identifier: 'https://orders.example', servedBy: ['orders-service'] } });
    const text = JSON.stringify(items);
    expect(text).not.toContain(ordersSecret);
    expect(text).not.toMatch(/digest/i);
  });

  it('a second apply of the same file plans nothing and changes nothing', async () => {
    const before = await env.snapshot();
    const r = await env.run('apply', '-f', file, '--json');
    expectOk(r);
    expect(r.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
    const human = await env.run('apply', '-f', file);
    expectOk(human);
    expect(human.stdout).toBe('no changes\n');
    expect(await env.snapshot()).toBe(before);
  });

  it('compares lists as sets: reordering plans nothing', async () => {
    const doc = baseDoc();
    doc.resources[1]!.scopes.reverse();
    doc.clients[0]!.grants.reverse();
    doc.roles.reverse();
    const r = await env.run('apply', '-f', env.write('reordered.json', doc), '--json');
    expectOk(r);
    expect(r.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
  });

  it('detects updates and names the changed fields; an omitted field means its default', async () => {
    const doc = baseDoc();
    doc.resources[1]!.scopes.push('invoices:read');
    doc.resources[1]!.ttl = 900;
    const web = doc.clients[1] as Record<string, unknown>;
    web.redirectUris = ['https://app.example/callback'];
    delete web.requireDpop; // back to the default: false
    doc.roles[0]!.scopes = ['records:read', 'records:write'];
    const f = env.write('changed.json', doc);

    const dry = await env.run('apply', '-f', f, '--dry-run');
    expectOk(dry);
    expect(dry.stdout).toBe(
      [
        '~ resource https://records.example (scopes, ttl)',
        '~ client web (redirectUris, requireDpop)',
        '~ role nurse (scopes)',
        'dry run: 0 to create, 3 to update, 0 to delete; nothing changed',
        '',
      ].join('\n'),
    );

    const r = await env.run('apply', '-f', f, '--json');
    expectOk(r);
    expect(r.json<PlanJson>()).toEqual({
      create: [],
      update: [
        { kind: 'resource', id: 'https://records.example', changes: ['scopes', 'ttl'] },
        { kind: 'client', id: 'web', changes: ['redirectUris', 'requireDpop'] },
        { kind: 'role', id: 'nurse', changes: ['scopes'] },
      ],
      delete: [],
      secrets: [],
    });
    expect(await getClientRecord(env.h.prisma, 'web')).toMatchObject({ requireDpop: false, redirectUris: ['https://app.example/callback'] });
    const records = await env.h.prisma.resource.findUniqueOrThrow({ where: { identifier: 'https://records.example' } });
    expect(records).toMatchObject({ accessTokenTtl: 900, scopes: ['records:read', 'records:write', 'prescriptions:write', 'invoices:read'] });
    // the confidential client was not touched: its secret still works
    expect((await getClientRecord(env.h.prisma, 'orders-service'))!.secretDigest).toBe(digestSecret(ordersSecret));

    const { items } = await listAuditEvents(env.h.prisma, { action: 'client.update' });
    expect(items).toHaveLength(1);
    expect(items[0]!.details).toMatchObject({
      via: 'apply',
      changes: ['redirectUris', 'requireDpop'],
      before: { requireDpop: true },
      after: { requireDpop: false },
    });

    const again = await env.run('apply', '-f', f, '--json');
    expect(again.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
    file = f;
  });

  it('prints human plans with + ~ - lines and the new secrets', async () => {
    const doc = JSON.parse(JSON.stringify(baseDoc())) as ReturnType<typeof baseDoc>;
    doc.resources[1]!.scopes.push('invoices:read');
    doc.resources[1]!.ttl = 900;
    (doc.clients[1] as Record<string, unknown>).redirectUris = ['https://app.example/callback'];
    delete (doc.clients[1] as Record<string, unknown>).requireDpop;
    doc.roles[0]!.scopes = ['records:read', 'records:write'];
    doc.clients.push({
      id: 'billing-batch',
      name: 'Billing batch',
      grants: ['client_credentials'],
      scopes: ['invoices:read'],
      resources: ['https://records.example'],
    });
    const r = await env.run('apply', '-f', env.write('billing.json', doc));
    expectOk(r);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('+ client billing-batch');
    expect(lines[1]).toBe('applied: 1 created, 0 updated, 0 deleted');
    expect(lines[2]).toMatch(/^client_secret billing-batch {2}[A-Za-z0-9_-]{43} {2}\(shown only once: store it now\)$/);
    const secret = lines[2]!.split(/\s+/)[2]!;
    expect((await getClientRecord(env.h.prisma, 'billing-batch'))!.secretDigest).toBe(digestSecret(secret));
    // printed once: the next apply of the same file does not print it
    const again = await env.run('apply', '-f', env.write('billing.json', doc));
    expect(again.stdout).toBe('no changes\n');
    file = env.write('billing.json', doc);
  });

  it('switching a public client to confidential generates its secret, printed once', async () => {
    const doc = JSON.parse(JSON.stringify(baseDoc())) as ReturnType<typeof baseDoc>;
    doc.resources[1]!.scopes.push('invoices:read');
    doc.resources[1]!.ttl = 900;
    doc.roles[0]!.scopes = ['records:read', 'records:write'];
    doc.clients.push({ id: 'billing-batch', name: 'Billing batch', grants: ['client_credentials'], scopes: ['invoices:read'], resources: ['https://records.example'] });
    const web = doc.clients[1] as Record<string, unknown>;
    web.redirectUris = ['https://app.example/callback'];
    delete web.requireDpop;
    delete web.public;
    const r = await env.run('apply', '-f', env.write('confidential-web.json', doc), '--json');
    expectOk(r);
    const plan = r.json<PlanJson>();
    expect(plan.update).toEqual([{ kind: 'client', id: 'web', changes: ['public', 'authMethod'] }]);
    expect(plan.secrets.map((s) => s.client_id)).toEqual(['web']);
    expect((await getClientRecord(env.h.prisma, 'web'))!.secretDigest).toBe(digestSecret(plan.secrets[0]!.client_secret));
    file = env.write('current.json', doc);
  });

  it('deletes only with --prune, never the built-in resource', async () => {
    // things the file does not name
    expectOk(await env.run('resources', 'create', '--identifier', 'https://legacy.example', '--scope', 'legacy:read'));
    expectOk(await env.run('clients', 'create', '--id', 'legacy-job', '--name', 'Legacy job', '--grant', 'client_credentials', '--resource', 'https://legacy.example'));
    expectOk(await env.run('roles', 'create', '--name', 'legacy-reader', '--resource', 'https://legacy.example', '--scope', 'legacy:read'));

    const without = await env.run('apply', '-f', file, '--json');
    expectOk(without);
    expect(without.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
    expect(await env.h.prisma.resource.count({ where: { identifier: 'https://legacy.example' } })).toBe(1);

    const before = await env.snapshot();
    const dry = await env.run('apply', '-f', file, '--prune', '--dry-run', '--json');
    expectOk(dry);
    const expected = [
      { kind: 'role', id: 'legacy-reader' },
      { kind: 'client', id: 'legacy-job' },
      { kind: 'resource', id: 'https://legacy.example' },
    ];
    expect(dry.json<PlanJson>()).toEqual({ create: [], update: [], delete: expected, secrets: [] });
    expect(await env.snapshot()).toBe(before);

    const human = await env.run('apply', '-f', file, '--prune');
    expectOk(human);
    expect(human.stdout).toBe(
      ['- role legacy-reader', '- client legacy-job', '- resource https://legacy.example', 'applied: 0 created, 0 updated, 3 deleted', ''].join('\n'),
    );
    expect(await env.h.prisma.resource.count({ where: { identifier: 'https://legacy.example' } })).toBe(0);
    expect(await env.h.prisma.client.count({ where: { id: 'legacy-job' } })).toBe(0);
    expect(await env.h.prisma.role.count({ where: { name: 'legacy-reader' } })).toBe(0);
    // the built-in admin API resource survives --prune
    const admin = await env.h.prisma.resource.findUniqueOrThrow({ where: { identifier: 'urn:gatehouse:admin' } });
    expect(admin.builtIn).toBe(true);
    const { items } = await listAuditEvents(env.h.prisma, { action: 'client.delete' });
    expect(items.map((e) => e.targetId)).toEqual(['legacy-job']);

    // an empty file with --prune deletes everything but the built-in
    const all = await env.run('apply', '-f', env.write('empty.json', {}), '--prune', '--json');
    expectOk(all);
    expect(all.json<PlanJson>().delete.map((e) => `${e.kind} ${e.id}`)).toEqual([
      'role doctor',
      'role nurse',
      'client billing-batch',
      'client orders-service',
      'client web',
      'resource https://orders.example',
      'resource https://records.example',
    ]);
    expect(await env.h.prisma.resource.findMany({ select: { identifier: true } })).toEqual([{ identifier: 'urn:gatehouse:admin' }]);
    expect(await env.h.prisma.client.count()).toBe(0);
  });

  it('the built-in resource may appear in a file only unchanged', async () => {
    const admin = await env.run('resources', 'show', 'urn:gatehouse:admin', '--json');
    const a = admin.json<{ identifier: string; name: string; scopes: string[]; accessTokenTtl: number; requireRoles: boolean }>();
    const same = { resources: [{ identifier: a.identifier, name: a.name, scopes: a.scopes, ttl: a.accessTokenTtl, requireRoles: a.requireRoles }] };
    const r = await env.run('apply', '-f', env.write('admin.json', same), '--json');
    expectOk(r);
    expect(r.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });

    const before = await env.snapshot();
    const changed = { resources: [{ ...same.resources[0], ttl: 120 }] };
    expectOneLineError(
      await env.run('apply', '-f', env.write('admin-changed.json', changed)),
      'admin-changed.json: resources[0] (identifier "urn:gatehouse:admin"): ttl: ',
      'built-in',
    );
    expect(await env.snapshot()).toBe(before);
  });

  it('clients may reference the built-in admin API; roles may grant its scopes', async () => {
    const doc = {
      clients: [{ id: 'ops-bot', name: 'Ops bot', grants: ['client_credentials'], scopes: ['gatehouse:clients:read'], resources: ['urn:gatehouse:admin'] }],
      roles: [{ name: 'auditor', resource: 'urn:gatehouse:admin', scopes: ['gatehouse:audit:read'] }],
    };
    const r = await env.run('apply', '-f', env.write('ops.json', doc), '--json');
    expectOk(r);
    expect(r.json<PlanJson>().create).toEqual([
      { kind: 'client', id: 'ops-bot' },
      { kind: 'role', id: 'auditor' },
    ]);
  });

  it('reads the file from standard input with -f -', async () => {
    const doc = { resources: [{ identifier: 'urn:example:stdin', scopes: ['a'] }] };
    const r = await env.runStdin(JSON.stringify(doc), 'apply', '-f', '-', '--json');
    expectOk(r);
    expect(r.json<PlanJson>().create).toEqual([{ kind: 'resource', id: 'urn:example:stdin' }]);
    expectOneLineError(await env.run('apply', '-f', '-'), 'nothing on standard input');
  });

  it('a failure half-way through rolls everything back', async () => {
    // a trigger makes the role insert fail after the resource and client were written
    await env.h.prisma.$executeRawUnsafe(`
      CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.name = 'boom' THEN RAISE EXCEPTION 'role boom refused by test trigger'; END IF; RETURN NEW; END $$`);
    await env.h.prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_boom BEFORE INSERT ON roles FOR EACH ROW EXECUTE FUNCTION refuse_boom()`);
    const doc = {
      resources: [{ identifier: 'https://boom.example', scopes: ['boom:read'], servedBy: ['boom-service'] }],
      clients: [{ id: 'boom-service', name: 'Boom', grants: ['client_credentials'], resources: ['https://boom.example'] }],
      roles: [{ name: 'boom', resource: 'https://boom.example', scopes: ['boom:read'] }],
    };
    const before = await env.snapshot();
    const r = await env.run('apply', '-f', env.write('boom.json', doc));
    expectOneLineError(r, 'boom.json: roles[0] (name "boom"): ', 'refused by test trigger');
    expect(await env.snapshot()).toBe(before);
    await env.h.prisma.$executeRawUnsafe(`DROP TRIGGER refuse_boom ON roles`);
  });

  it('has --help', async () => {
    const r = await env.run('apply', '--help');
    expectOk(r);
    expect(r.stdout).toContain('--prune');
    const e = await env.run('export', '--help');
    expectOk(e);
    expectOneLineError(await env.run('apply'), '-f FILE is required');
  });
});
