import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRoleToAccount } from '../../src/resources/roles.ts';
import { baseDoc, expectOk, setupEnv, type Env, type PlanJson } from './helpers.ts';

interface ExportJson {
  resources: Record<string, unknown>[];
  clients: Record<string, unknown>[];
  roles: Record<string, unknown>[];
}

describe('gatehouse export', () => {
  let env: Env;
  let other: Env;
  const secrets: string[] = [];
  let jwk: Record<string, unknown>;

  beforeAll(async () => {
    env = await setupEnv();
    other = await setupEnv();
    const applied = await env.run('apply', '-f', env.write('base.json', baseDoc()), '--json');
    expectOk(applied);
    secrets.push(...applied.json<PlanJson>().secrets.map((s) => s.client_secret));

    // every client setting, through the CLI
    jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
    const jwksFile = env.write('jwks.json', { keys: [{ ...jwk, kid: 'k1', use: 'sig' }] });
    expectOk(await env.run('resources', 'create', '--identifier', 'urn:example:ledger', '--scope', 'ledger:read ledger:write', '--ttl', '120', '--alg', 'ES256', '--name', 'Ledger'));
    expectOk(
      await env.run(
        'clients', 'create', '--id', 'a-signed-jwt', '--name', 'Signed', '--grant', 'authorization_code', '--grant', 'refresh_token',
        '--redirect-uri', 'https://signed.example/cb', '--post-logout-redirect-uri', 'https://signed.example/bye',
        '--auth-method', 'private_key_jwt', '--jwks-file', jwksFile, '--first-party', '--require-mfa', '--require-dpop',
        '--backchannel-logout-uri', 'https://signed.example/bc', '--access-token-ttl', '60', '--id-token-ttl', '120',
        '--refresh-token-ttl', '3600', '--resource', 'urn:example:ledger', '--scope', 'openid ledger:read',
      ),
    );
    const post = await env.run('clients', 'create', '--id', 'b-post', '--name', 'Post', '--grant', 'client_credentials', '--auth-method', 'client_secret_post', '--json');
    expectOk(post);
    secrets.push(post.json<{ client_secret: string }>().client_secret);
    expectOk(await env.run('clients', 'create', '--id', 'c-uri', '--name', 'By URI', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks-uri', 'https://c.example/jwks'));
    expectOk(await env.run('clients', 'update', 'c-uri', '--disable'));
    expectOk(await env.run('roles', 'create', '--name', 'auditor', '--resource', 'urn:gatehouse:admin', '--scope', 'gatehouse:audit:read'));
    // a person holding a role: people never appear in an export
    const user = await env.runStdin('correct horse battery staple\n', 'users', 'create', '--email', 'nurse.jones@example.com', '--name', 'Nurse Jones', '--password-stdin', '--json');
    expectOk(user);
    await addRoleToAccount(env.h.prisma, user.json<{ id: string }>().id, 'nurse');
  });
  afterAll(async () => {
    await env?.close();
    await other?.close();
  });

  it('writes the config, sorted by id, without secrets, users or built-ins', async () => {
    const r = await env.run('export', '--json');
    expectOk(r);
    const doc = r.json<ExportJson>();
    expect(Object.keys(doc)).toEqual(['resources', 'clients', 'roles']);
    expect(doc.resources.map((x) => x.identifier)).toEqual(['https://orders.example', 'https://records.example', 'urn:example:ledger']);
    expect(doc.clients.map((x) => x.id)).toEqual(['a-signed-jwt', 'b-post', 'c-uri', 'orders-service', 'web']);
    expect(doc.roles.map((x) => x.name)).toEqual(['auditor', 'doctor', 'nurse']);

    // only non-default fields besides the required ones
    expect(doc.resources[2]).toEqual({ identifier: 'urn:example:ledger', name: 'Ledger', scopes: ['ledger:read', 'ledger:write'], ttl: 120, signingAlg: 'ES256' });
    expect(doc.resources[1]).toEqual({ identifier: 'https://records.example', scopes: ['records:read', 'records:write', 'prescriptions:write'], ttl: 600, requireRoles: true });
    expect(doc.clients[0]).toEqual({
      id: 'a-signed-jwt',
      name: 'Signed',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://signed.example/cb'],
      postLogoutRedirectUris: ['https://signed.example/bye'],
      scopes: ['openid', 'ledger:read'],
      resources: ['urn:example:ledger'],
      authMethod: 'private_key_jwt',
      jwks: { keys: [{ ...jwk, kid: 'k1', use: 'sig' }] },
      requireDpop: true,
      firstParty: true,
      requireMfa: true,
      backchannelLogoutUri: 'https://signed.example/bc',
      accessTokenTtl: 60,
      idTokenTtl: 120,
      refreshTokenTtl: 3600,
    });
    expect(doc.clients[2]).toEqual({ id: 'c-uri', name: 'By URI', grants: ['client_credentials'], authMethod: 'private_key_jwt', jwksUri: 'https://c.example/jwks', disabled: true });
    expect(doc.clients[4]).toMatchObject({ id: 'web', public: true });
    expect(doc.clients[4]).not.toHaveProperty('authMethod');

    expect(doc.resources.some((x) => String(x.identifier).startsWith('urn:gatehouse:'))).toBe(false);
    for (const s of secrets) expect(r.stdout).not.toContain(s);
    // no field that could hold one (the value client_secret_post is an auth method)
    expect(r.stdout).not.toMatch(/"\w*(secret|digest|password|hash)\w*"\s*:/i);
    expect(r.stdout).toContain('"authMethod": "client_secret_post"');
    expect(r.stdout).not.toContain('nurse.jones');
    expect(r.stdout).not.toContain('Nurse Jones');
  });

  it('applying the export plans nothing', async () => {
    const r = await env.run('export', '--json');
    const before = await env.snapshot();
    const again = await env.run('apply', '-f', env.write('export.json', r.stdout), '--json');
    expectOk(again);
    expect(again.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
    const pruned = await env.run('apply', '-f', env.write('export.json', r.stdout), '--prune', '--json');
    expect(pruned.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
    expect(await env.snapshot()).toBe(before);
    // the account still holds its role
    expect(await env.h.prisma.accountRole.count()).toBe(1);
  });

  it('an export applied to another installation reproduces it, with new secrets', async () => {
    const exported = (await env.run('export', '--json')).stdout;
    const r = await other.runStdin(exported, 'apply', '-f', '-', '--json');
    expectOk(r);
    const plan = r.json<PlanJson>();
    expect(plan.create).toHaveLength(11);
    expect(plan.secrets.map((s) => s.client_id).sort()).toEqual(['b-post', 'orders-service']);
    for (const s of secrets) expect(plan.secrets.map((x) => x.client_secret)).not.toContain(s);
    expect((await other.run('export', '--json')).stdout).toBe(exported);
    const again = await other.runStdin(exported, 'apply', '-f', '-', '--json');
    expect(again.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
  });

  it('exports YAML by default, and applying the YAML export plans nothing', async () => {
    const yamlText = (await env.run('export')).stdout;
    expect(yamlText).toMatch(/^resources:\n/);
    expect(yamlText).not.toMatch(/client_secret:|secretDigest|digest|password/i);
    const before = await env.snapshot();
    const again = await env.run('apply', '-f', env.write('export.yaml', yamlText), '--prune', '--json');
    expectOk(again);
    expect(again.json<PlanJson>()).toEqual({ create: [], update: [], delete: [], secrets: [] });
    expect(await env.snapshot()).toBe(before);
    // and YAML carries the same content as the JSON export
    const { parse } = await import('yaml');
    expect(parse(yamlText)).toEqual(JSON.parse((await env.run('export', '--json')).stdout));
  });
});
