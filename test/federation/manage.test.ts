// Upstream identity providers: `gatehouse idps …`, /admin/v1/idps and
// apply/export, with the secret stored encrypted and never shown, audit
// events for every change, and one clear error for every bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idpSecret } from '../../src/federation/store.ts';
import { cli } from '../helpers/cli.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { adminToken, api, expectProblem } from '../admin/helpers.ts';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

interface IdpJson {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  scopes: string[];
  domains: string[];
  disabled: boolean;
  version: number;
}

const SECRET = 'upstream-client-secret-0123456789';
const oneLine = (s: string) => expect(s).toMatch(/^gatehouse: [^\n]+\n$/);

describe('upstream identity providers: CLI, admin API, apply', () => {
  let t: TestApp;
  const run = (args: string[], stdin?: string, env?: Record<string, string>) => cli(t.database.url, args, { ...(stdin !== undefined && { stdin }), ...(env && { env }) });
  const db = () => t.gatehouse.db.prisma;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('idps create stores the secret encrypted, prints no secret, and audits', async () => {
    const r = await run(
      ['idps', 'create', '--name', 'Acme', '--issuer', 'https://login.acme.example', '--client-id', 'gatehouse', '--client-secret-stdin', '--domain', 'Acme.example', '--domain', 'acme.test', '--json'],
      `${SECRET}\n`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const idp = r.json<IdpJson>();
    expect(idp).toMatchObject({ name: 'Acme', issuer: 'https://login.acme.example', clientId: 'gatehouse', scopes: ['openid', 'email', 'profile'], domains: ['acme.example', 'acme.test'], disabled: false });
    expect(r.stdout).not.toContain(SECRET);
    const row = await db().upstreamIdp.findUniqueOrThrow({ where: { id: idp.id } });
    expect(row.clientSecretEncrypted).not.toContain(SECRET);
    expect(row.clientSecretEncrypted).toMatch(/^v1\./);
    expect(idpSecret(row, t.config.keyEncryptionKey)).toBe(SECRET);
    // bound to its row: copied onto another id it does not open
    expect(() => idpSecret({ ...row, id: '00000000-0000-4000-8000-000000000000' }, t.config.keyEncryptionKey)).toThrow(/cannot decrypt/);
    const ev = await db().auditEvent.findFirstOrThrow({ where: { action: 'idp.create', targetId: idp.id } });
    expect(ev.actorType).toBe('operator');
    expect(JSON.stringify(ev.details)).not.toContain(SECRET);

    const text = await run(['idps', 'create', '--name', 'Other', '--issuer', 'https://other.example', '--client-id', 'x', '--client-secret-stdin'], 'sekret');
    expect(text.stdout).toContain('redirect URI to register at the provider: ');
    expect(text.stdout).toContain('/federation/callback');
  });

  it('list, show, update (secret, domains, disable) and delete', async () => {
    const list = await run(['idps', 'list', '--json']);
    expect(list.json<IdpJson[]>().map((i) => i.name)).toEqual(['Acme', 'Other']);
    expect((await run(['idps', 'list'])).stdout).toMatch(/^NAME\s+ISSUER\s+DOMAINS\s+DISABLED\nAcme\s+https:\/\/login\.acme\.example\s+acme\.example acme\.test\s+no/);
    const shown = (await run(['idps', 'show', 'Acme', '--json'])).json<IdpJson>();
    expect((await run(['idps', 'show', shown.id, '--json'])).json<IdpJson>().name).toBe('Acme');

    const up = await run(['idps', 'update', 'Acme', '--client-secret-stdin', '--scope', 'openid email', '--no-domains', '--disable', '--json'], 'new-secret-value');
    expect(up.code, up.stderr).toBe(0);
    expect(up.json<IdpJson>()).toMatchObject({ scopes: ['openid', 'email'], domains: [], disabled: true, version: 2 });
    const row = await db().upstreamIdp.findUniqueOrThrow({ where: { name: 'Acme' } });
    expect(idpSecret(row, t.config.keyEncryptionKey)).toBe('new-secret-value');
    const ev = await db().auditEvent.findFirstOrThrow({ where: { action: 'idp.update', targetId: row.id } });
    expect(ev.details).toMatchObject({ changes: expect.arrayContaining(['clientSecret', 'domains', 'disabled', 'scopes']) });
    expect(JSON.stringify(ev.details)).not.toContain('new-secret-value');

    const del = await run(['idps', 'delete', 'Other']);
    expect(del.stdout).toBe('deleted identity provider Other\n');
    expect(await db().auditEvent.count({ where: { action: 'idp.delete' } })).toBe(1);
  });

  it('bad input gets one line naming the flag, and changes nothing', async () => {
    const before = await db().upstreamIdp.count();
    const cases: [string[], string | undefined, RegExp][] = [
      [['idps', 'create', '--issuer', 'https://a.example', '--client-id', 'x', '--client-secret-stdin'], 's', /--name is required/],
      [['idps', 'create', '--name', 'A', '--issuer', 'https://a.example', '--client-id', 'x'], undefined, /--client-secret-stdin is required/],
      [['idps', 'create', '--name', 'A', '--issuer', 'https://a.example', '--client-id', 'x', '--client-secret-stdin'], undefined, /standard input is a terminal/],
      [['idps', 'create', '--name', 'A', '--issuer', 'https://a.example', '--client-id', 'x', '--client-secret-stdin'], '\n', /standard input is empty/],
      [['idps', 'create', '--name', 'A', '--issuer', 'http://a.example', '--client-id', 'x', '--client-secret-stdin'], 's', /invalid --issuer: .*must use https/],
      [['idps', 'create', '--name', 'A', '--issuer', 'not a url', '--client-id', 'x', '--client-secret-stdin'], 's', /invalid --issuer/],
      [['idps', 'create', '--name', 'A', '--issuer', 'https://a.example', '--client-id', 'x', '--client-secret-stdin', '--domain', 'not_a domain'], 's', /invalid --domain/],
      [['idps', 'create', '--name', '<b>', '--issuer', 'https://a.example', '--client-id', 'x', '--client-secret-stdin'], 's', /invalid --name/],
      [['idps', 'create', '--name', 'Acme', '--issuer', 'https://a.example', '--client-id', 'x', '--client-secret-stdin'], 's', /already exists/],
      [['idps', 'show', 'nope'], undefined, /identity provider 'nope' not found/],
      [['idps', 'update', 'Acme'], undefined, /nothing to change/],
      [['idps', 'update', 'Acme', '--disable', '--enable'], undefined, /exclude each other/],
      [['idps', 'delete', 'nope'], undefined, /not found/],
    ];
    for (const [args, stdin, message] of cases) {
      const r = await run(args, stdin);
      expect(r.code, args.join(' ')).not.toBe(0);
      oneLine(r.stderr);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    // a domain routes to one provider only
    await run(['idps', 'create', '--name', 'B', '--issuer', 'https://b.example', '--client-id', 'x', '--client-secret-stdin', '--domain', 'b.example'], 's');
    const dup = await run(['idps', 'create', '--name', 'C', '--issuer', 'https://c.example', '--client-id', 'x', '--client-secret-stdin', '--domain', 'b.example'], 's');
    expect(dup.stderr).toMatch(/invalid --domain.*'b\.example' is already routed to identity provider 'B'/);
    expect(await db().upstreamIdp.count()).toBe(before + 1);
    await run(['idps', 'delete', 'B']);
  });

  it('admin API: CRUD with gatehouse:admin, never answering the secret; refuses narrower tokens and bad bodies', async () => {
    const token = await adminToken(t, ['gatehouse:admin']);
    const narrow = await adminToken(t, ['gatehouse:clients:write', 'gatehouse:users:write']);
    const body = { name: 'Entra', issuer: 'https://login.microsoftonline.com/tenant/v2.0', clientId: 'app-id', clientSecret: 'entra-secret-xyz', domains: ['corp.example'] };

    expectProblem(await api(t, narrow, 'post', '/idps').send(body), 403);
    expectProblem(await api(t, narrow, 'get', '/idps'), 403);

    const created = await api(t, token, 'post', '/idps').send(body);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(JSON.stringify(created.body)).not.toContain('entra-secret-xyz');
    expect(created.body).not.toHaveProperty('clientSecret');
    expect(created.headers.location).toBe(`/admin/v1/idps/${created.body.id}`);

    const list = await api(t, token, 'get', '/idps');
    expect(list.status).toBe(200);
    expect(list.body.items.map((i: IdpJson) => i.name)).toContain('Entra');
    expect(JSON.stringify(list.body)).not.toMatch(/secret/i);

    const got = await api(t, token, 'get', '/idps/Entra');
    expect(got.status).toBe(200);
    expect(got.headers.etag).toBe('"1"');

    const patched = await api(t, token, 'patch', `/idps/${created.body.id}`).set('If-Match', '"1"').send({ disabled: true, clientSecret: 'rotated' });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ disabled: true, version: 2 });
    expectProblem(await api(t, token, 'patch', '/idps/Entra').set('If-Match', '"1"').send({ disabled: false }), 412);

    expectProblem(await api(t, token, 'post', '/idps').send({ ...body, name: 'X', issuer: 'ftp://x' }), 422, 'issuer');
    expectProblem(await api(t, token, 'post', '/idps').send({ ...body, name: 'Y', clientSecret: undefined }), 422, 'clientSecret');
    expectProblem(await api(t, token, 'post', '/idps').send({ ...body, name: 'Z', extra: 1 }), 422, 'extra');
    expectProblem(await api(t, token, 'post', '/idps').send({ ...body, name: 'Z', domains: ['corp.example'] }), 422, 'domains');
    expectProblem(await api(t, token, 'post', '/idps').send(body), 409);
    expectProblem(await api(t, token, 'patch', '/idps/Entra').send({ clientSecret: '' }), 422, 'clientSecret');
    expectProblem(await api(t, token, 'get', '/idps/nope'), 404);

    const del = await api(t, token, 'delete', '/idps/Entra');
    expect(del.status).toBe(204);
    expectProblem(await api(t, token, 'delete', '/idps/Entra'), 404);
  });

  it('the OpenAPI document lists /idps and never a secret in a response schema', async () => {
    const res = await t.request.get('/admin/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/idps', '/idps/{ref}']));
    expect(Object.keys(res.body.components.schemas.IdpView.properties).join(' ')).not.toMatch(/secret/i);
    expect(res.body.paths['/idps'].post.security).toEqual(expect.arrayContaining([expect.objectContaining({ oauth2: ['gatehouse:admin'] })]));
  });

  it('apply creates, updates and prunes idps; the secret only ever comes from an environment variable', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-idps-'));
    const file = (name: string, text: string) => {
      const p = path.join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const ok = file('ok.yaml', `idps:\n  - name: Google\n    issuer: https://accounts.google.com\n    clientId: g-client\n    clientSecretEnv: GOOGLE_SECRET\n    domains: [gmail.example]\n`);
    const missingEnv = await run(['apply', '-f', ok]);
    oneLine(missingEnv.stderr);
    expect(missingEnv.stderr).toMatch(/idps\[0\] \(name "Google"\): clientSecretEnv: the environment variable GOOGLE_SECRET is not set or empty/);

    const applied = await run(['apply', '-f', ok, '--json'], undefined, { GOOGLE_SECRET: 'google-secret-1' });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.json()).toMatchObject({ create: [{ kind: 'idp', id: 'Google' }] });
    const row = await db().upstreamIdp.findUniqueOrThrow({ where: { name: 'Google' } });
    expect(idpSecret(row, t.config.keyEncryptionKey)).toBe('google-secret-1');
    expect(await db().auditEvent.count({ where: { action: 'idp.create', targetId: row.id, details: { path: ['via'], equals: 'apply' } } })).toBe(1);

    // the same file and secret again: nothing to do; a new secret: one change
    expect((await run(['apply', '-f', ok, '--json'], undefined, { GOOGLE_SECRET: 'google-secret-1' })).json()).toMatchObject({ create: [], update: [] });
    expect((await run(['apply', '-f', ok, '--json'], undefined, { GOOGLE_SECRET: 'google-secret-2' })).json()).toMatchObject({ update: [{ kind: 'idp', id: 'Google', changes: ['clientSecret'] }] });

    // export: the idp without any secret; applying it back plans nothing
    const exported = await run(['export']);
    expect(exported.stdout).toMatch(/idps:\n(.*\n)* {2}- name: Google\n {4}issuer: https:\/\/accounts\.google\.com\n {4}clientId: g-client\n {4}domains:\n {6}- gmail\.example\n/);
    expect(exported.stdout).not.toMatch(/secret/i);
    const back = await run(['apply', '-f', file('export.yaml', exported.stdout), '--json']);
    expect(back.json()).toMatchObject({ create: [], update: [], delete: [] });

    // a secret in the file, or a new idp without clientSecretEnv: refused
    const inline = await run(['apply', '-f', file('inline.yaml', `idps:\n  - name: X\n    issuer: https://x.example\n    clientId: x\n    clientSecret: oops\n`)]);
    oneLine(inline.stderr);
    expect(inline.stderr).toMatch(/idps\[0\] \(name "X"\): clientSecret: secrets never appear in config files/);
    const noEnv = await run(['apply', '-f', file('noenv.yaml', `idps:\n  - name: X\n    issuer: https://x.example\n    clientId: x\n`)]);
    expect(noEnv.stderr).toMatch(/idps\[0\] \(name "X"\): clientSecretEnv: is required for a new identity provider/);
    const badIssuer = await run(['apply', '-f', file('bad.yaml', `idps:\n  - name: X\n    issuer: http://x.example\n    clientId: x\n    clientSecretEnv: S\n`)], undefined, { S: 'v' });
    expect(badIssuer.stderr).toMatch(/idps\[0\] \(name "X"\): issuer: .*must use https/);
    expect(await db().upstreamIdp.count({ where: { name: 'X' } })).toBe(0);

    // prune deletes idps the file does not name
    const pruned = await run(['apply', '-f', file('empty.yaml', 'resources: []\n'), '--prune', '--json']);
    expect(pruned.json<{ delete: { kind: string; id: string }[] }>().delete).toEqual(expect.arrayContaining([{ kind: 'idp', id: 'Google' }]));
    expect(await db().upstreamIdp.count({ where: { name: 'Google' } })).toBe(0);
  });
});
