import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { digestSecret, verifyClientSecret } from '../../src/clients/secrets.ts';
import { getClientRecord } from '../../src/clients/store.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

interface ClientJson {
  client_id: string;
  client_secret?: string;
  name: string;
  public: boolean;
  authMethod: string;
  grants: string[];
  redirectUris: string[];
  scopes: string[];
  resources: string[];
  requireDpop: boolean;
  disabled: boolean;
  hasSecret: boolean;
  version: number;
  [k: string]: unknown;
}

const oneLine = (s: string) => expect(s).toMatch(/^gatehouse: [^\n]+\n$/);

describe('gatehouse clients', () => {
  let tdb: TestDatabase;
  let h: DbHandle;
  let tmp: string;
  const run = (...args: string[]) => cli(tdb.url, args);
  const count = () => h.prisma.client.count();

  beforeAll(async () => {
    tdb = await createTestDatabase();
    h = openDb({ url: tdb.url, poolSize: 2 });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-clients-'));
    const r = await run('resources', 'create', '--identifier', 'https://orders.example', '--scope', 'orders:read orders:write');
    expect(r.stderr).toBe('');
  });
  afterAll(async () => {
    await h?.close();
    await tdb?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('creates a confidential client, printing the secret once and storing only its digest', async () => {
    const r = await run(
      'clients', 'create', '--name', 'Orders web', '--grant', 'authorization_code', '--grant', 'refresh_token',
      '--redirect-uri', 'https://app.example/cb', '--scope', 'openid profile', '--scope', 'orders:read',
      '--resource', 'https://orders.example', '--require-dpop', '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = r.json<ClientJson>();
    expect(Object.keys(c).slice(0, 2)).toEqual(['client_id', 'client_secret']);
    expect(c).toMatchObject({
      name: 'Orders web',
      public: false,
      authMethod: 'client_secret_basic',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://app.example/cb'],
      scopes: ['openid', 'profile', 'orders:read'],
      resources: ['https://orders.example'],
      requireDpop: true,
      hasSecret: true,
    });
    expect(c).not.toHaveProperty('id');
    expect(c.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [raw] = await h.prisma.$queryRaw<{ secret_digest: string }[]>`SELECT secret_digest FROM clients WHERE id = ${c.client_id}`;
    expect(raw!.secret_digest).toBe(digestSecret(c.client_secret!));

    // never shown again
    const shown = await run('clients', 'show', c.client_id, '--json');
    expect(shown.code).toBe(0);
    expect(shown.stdout).not.toContain(c.client_secret!);
    expect(shown.stdout).not.toMatch(/digest/i);
    expect(shown.json<ClientJson>()).toMatchObject({ client_id: c.client_id, hasSecret: true });
    expect(shown.json<ClientJson>()).not.toHaveProperty('client_secret');
    const list = await run('clients', 'list', '--json');
    expect(list.stdout).not.toContain(c.client_secret!);
  });

  it('prints client_id and client_secret as aligned text without --json', async () => {
    const r = await run('clients', 'create', '--name', 'svc', '--id', 'orders-svc', '--grant', 'client_credentials', '--resource', 'https://orders.example', '--scope', 'orders:read');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^client_id\s+orders-svc\nclient_secret\s+[A-Za-z0-9_-]{43}\s+\(shown only once/);
    const show = await run('clients', 'show', 'orders-svc');
    expect(show.stdout).toMatch(/^client_id\s+orders-svc$/m);
    expect(show.stdout).toMatch(/^grants\s+client_credentials$/m);
  });

  it('creates public clients without a secret', async () => {
    const r = await run('clients', 'create', '--name', 'SPA', '--id', 'spa', '--public', '--grant', 'authorization_code', '--redirect-uri', 'http://localhost:5173/cb', '--json');
    expect(r.code).toBe(0);
    expect(r.json<ClientJson>()).toMatchObject({ client_id: 'spa', public: true, authMethod: 'none', hasSecret: false });
    expect(r.json<ClientJson>()).not.toHaveProperty('client_secret');
    const text = await run('clients', 'create', '--name', 'SPA2', '--public', '--grant', 'authorization_code', '--redirect-uri', 'https://spa.example/cb');
    expect(text.stdout).not.toContain('client_secret');
  });

  it('reads --jwks-file for private_key_jwt', async () => {
    const file = path.join(tmp, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] }));
    const r = await run('clients', 'create', '--name', 'pkjwt', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks-file', file, '--json');
    expect(r.stderr).toBe('');
    expect(r.json<ClientJson>()).toMatchObject({ authMethod: 'private_key_jwt', hasSecret: false });
    expect(r.json<ClientJson>()).not.toHaveProperty('client_secret');
  });

  it.each<[string, string[], RegExp]>([
    ['missing --name', ['--grant', 'client_credentials'], /--name is required/],
    ['missing --grant', ['--name', 'x'], /--grant is required/],
    ['unknown grant', ['--name', 'x', '--grant', 'password'], /invalid --grant: 'password' is not a grant type Gatehouse serves/],
    ['bad redirect URI', ['--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'http://evil.example/cb'], /invalid --redirect-uri: .*https/],
    ['redirect URI with fragment', ['--name', 'x', '--grant', 'authorization_code', '--redirect-uri', 'https://a.example/cb#f'], /invalid --redirect-uri: .*fragment/],
    ['authorization_code without redirect URI', ['--name', 'x', '--grant', 'authorization_code'], /invalid --redirect-uri: at least one/],
    ['public client with a secret auth method', ['--name', 'x', '--public', '--grant', 'authorization_code', '--redirect-uri', 'https://a.example/cb', '--auth-method', 'client_secret_post'], /invalid --auth-method: a public client/],
    ['unknown auth method', ['--name', 'x', '--grant', 'client_credentials', '--auth-method', 'magic'], /invalid --auth-method: 'magic' is not valid/],
    ['private_key_jwt without jwks', ['--name', 'x', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt'], /invalid --jwks-file: private_key_jwt needs .*--jwks-uri/],
    ['unknown resource', ['--name', 'x', '--grant', 'client_credentials', '--resource', 'https://nope.example'], /invalid --resource: unknown resource 'https:\/\/nope\.example'/],
    ['bad ttl', ['--name', 'x', '--grant', 'client_credentials', '--access-token-ttl', 'soon'], /--access-token-ttl must be a whole number/],
    ['missing jwks file', ['--name', 'x', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks-file', '/nonexistent/jwks.json'], /cannot read --jwks-file/],
    ['taken id', ['--name', 'x', '--id', 'spa', '--grant', 'client_credentials'], /client 'spa' already exists/],
    ['unknown flag', ['--name', 'x', '--grant', 'client_credentials', '--client-secret', 's'], /--client-secret/],
  ])('refuses %s with one line and creates nothing', async (_label, args, message) => {
    const before = await count();
    const r = await run('clients', 'create', ...args);
    expect(r.code).not.toBe(0);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(await count()).toBe(before);
  });

  it('lists clients as a table and as JSON', async () => {
    const r = await run('clients', 'list');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^CLIENT_ID\s+NAME\s+TYPE\s+GRANTS\s+STATUS\n/);
    expect(r.stdout).toMatch(/^orders-svc\s+svc\s+confidential\s+client_credentials\s+enabled$/m);
    const j = await run('clients', 'list', '--json');
    const all = j.json<ClientJson[]>();
    expect(all.length).toBe(await count());
    expect(all.map((c) => c.client_id)).toContain('spa');
  });

  it('updates: a list flag replaces the list, other fields stay; --disable / --enable', async () => {
    const r = await run('clients', 'update', 'spa', '--redirect-uri', 'https://spa.example/a', '--redirect-uri', 'https://spa.example/b', '--disable', '--json');
    expect(r.stderr).toBe('');
    expect(r.json<ClientJson>()).toMatchObject({ client_id: 'spa', redirectUris: ['https://spa.example/a', 'https://spa.example/b'], disabled: true, public: true, version: 2 });
    const text = await run('clients', 'update', 'spa', '--enable');
    expect(text.stdout).toBe('updated client spa (version 3)\n');
    expect((await run('clients', 'show', 'spa', '--json')).json<ClientJson>().disabled).toBe(false);
    const cleared = await run('clients', 'update', 'orders-svc', '--scope', '', '--json');
    expect(cleared.json<ClientJson>().scopes).toEqual([]);
  });

  it('update refuses bad input with one line and changes nothing', async () => {
    const before = (await run('clients', 'show', 'spa', '--json')).json<ClientJson>();
    for (const args of [
      ['spa', '--redirect-uri', 'notauri'],
      ['spa', '--auth-method', 'client_secret_basic'],
      ['spa', '--disable', '--enable'],
      ['spa'],
      ['nope', '--name', 'x'],
    ]) {
      const r = await run('clients', 'update', ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      oneLine(r.stderr);
    }
    expect((await run('clients', 'update', 'nope', '--name', 'x')).stderr).toBe("gatehouse: client 'nope' not found\n");
    expect((await run('clients', 'show', 'spa', '--json')).json<ClientJson>()).toEqual(before);
  });

  it('update --no-public makes a confidential client and prints its new secret once', async () => {
    const r = await run('clients', 'update', 'spa', '--no-public', '--json');
    expect(r.stderr).toBe('');
    const c = r.json<ClientJson>();
    expect(c).toMatchObject({ public: false, authMethod: 'client_secret_basic', hasSecret: true });
    expect(verifyClientSecret((await getClientRecord(h.prisma, 'spa'))!, c.client_secret!)).toBe('current');
  });

  it('rotate-secret: the new secret works at once, the old one until the grace period ends', async () => {
    const created = (await run('clients', 'create', '--name', 'rot', '--id', 'rot', '--grant', 'client_credentials', '--json')).json<ClientJson>();
    const r = await run('clients', 'rotate-secret', 'rot', '--grace', '600', '--json');
    expect(r.stderr).toBe('');
    const j = r.json<{ client_id: string; client_secret: string; previousSecretExpiresAt: string }>();
    expect(j.client_id).toBe('rot');
    expect(j.client_secret).not.toBe(created.client_secret);
    const expires = new Date(j.previousSecretExpiresAt);
    const rec = (await getClientRecord(h.prisma, 'rot'))!;
    expect(verifyClientSecret(rec, j.client_secret)).toBe('current');
    expect(verifyClientSecret(rec, created.client_secret!)).toBe('previous');
    expect(verifyClientSecret(rec, created.client_secret!, new Date(expires.getTime() + 1))).toBe(false);

    // default grace comes from CLIENT_SECRET_ROTATION_GRACE_SECONDS
    const d = await cli(tdb.url, ['clients', 'rotate-secret', 'rot', '--json'], { env: { CLIENT_SECRET_ROTATION_GRACE_SECONDS: '120' } });
    const dj = d.json<{ client_secret: string; previousSecretExpiresAt: string }>();
    const rec2 = (await getClientRecord(h.prisma, 'rot'))!;
    expect(rec2.previousSecretDigest).toBe(digestSecret(j.client_secret));
    expect(new Date(dj.previousSecretExpiresAt).getTime() - rec2.updatedAt.getTime()).toBeGreaterThan(100_000);
    expect(verifyClientSecret(rec2, created.client_secret!)).toBe(false);

    const text = await run('clients', 'rotate-secret', 'rot', '--grace', '0');
    expect(text.stdout).toMatch(/^client_secret\s+[A-Za-z0-9_-]{43}\s+\(shown only once/m);
    expect(text.stdout).toMatch(/^old secret\s+no longer valid$/m);

    for (const [args, message] of [
      [['nope'], /client 'nope' not found/],
      [['rot', '--grace', '-5'], /--grace/],
      [['rot', '--grace', 'soon'], /--grace must be a whole number/],
    ] as const) {
      const bad = await run('clients', 'rotate-secret', ...args);
      expect(bad.code).not.toBe(0);
      oneLine(bad.stderr);
      expect(bad.stderr).toMatch(message);
    }
    const pub = await run('clients', 'create', '--name', 'p', '--id', 'pub2', '--public', '--grant', 'authorization_code', '--redirect-uri', 'https://p.example/cb');
    expect(pub.code).toBe(0);
    const refused = await run('clients', 'rotate-secret', 'pub2');
    expect(refused.stderr).toBe("gatehouse: client 'pub2' does not use a client secret (auth method none)\n");
  });

  it('deletes, and refuses unknown ids with one line', async () => {
    const r = await run('clients', 'delete', 'rot', '--json');
    expect(r.json()).toEqual({ client_id: 'rot', deleted: true });
    expect(await getClientRecord(h.prisma, 'rot')).toBeUndefined();
    for (const cmd of [['delete', 'rot'], ['show', 'rot']]) {
      const bad = await run('clients', ...cmd);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toBe("gatehouse: client 'rot' not found\n");
    }
    const missing = await run('clients', 'show');
    expect(missing.code).toBe(2);
    oneLine(missing.stderr);
  });

  it('documents the flags in --help', async () => {
    const r = await run('clients', 'create', '--help');
    expect(r.code).toBe(0);
    for (const flag of ['--name', '--grant', '--redirect-uri', '--post-logout-redirect-uri', '--scope', '--resource', '--auth-method', '--require-dpop', '--jwks-file']) {
      expect(r.stdout).toContain(flag);
    }
  });
});
