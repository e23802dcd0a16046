import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseDoc, expectOk, expectOneLineError, setupEnv, type Env, type PlanJson } from './helpers.ts';

type Doc = ReturnType<typeof baseDoc>;
const client = (doc: Doc, i: number) => doc.clients[i] as Record<string, unknown>;
const resource = (doc: Doc, i: number) => doc.resources[i] as Record<string, unknown>;

describe('gatehouse apply: an invalid file changes nothing and names the entry and field', () => {
  let env: Env;

  beforeAll(async () => {
    env = await setupEnv();
    expectOk(await env.run('apply', '-f', env.write('base.json', baseDoc())));
  });
  afterAll(async () => {
    await env?.close();
  });

  /** Applies a broken variant of the base file (also with --dry-run), expecting one line naming the file, entry and field. */
  async function refused(name: string, edit: (doc: Doc) => unknown, ...parts: string[]): Promise<string> {
    const doc = baseDoc();
    const out = edit(doc) ?? doc;
    const file = env.write(name, out);
    const before = await env.snapshot();
    const r = await env.run('apply', '-f', file, '--json');
    expectOneLineError(r, `gatehouse: ${file}: `, ...parts);
    const dry = await env.run('apply', '-f', file, '--dry-run');
    expect(dry.stderr).toBe(r.stderr);
    expect(await env.snapshot()).toBe(before);
    return r.stderr;
  }

  it('a bad field value', async () => {
    await refused(
      'bad-uri.json',
      (d) => {
        client(d, 1).redirectUris = ['https://app.example/cb', 'http://app.example/cb'];
        d.clients.push({ id: 'new-one', name: 'New', grants: ['client_credentials'], scopes: [], resources: [] });
      },
      'clients[1] (id "web"): redirectUris[1]: ',
      'must use https',
    );
    await refused('bad-ttl.json', (d) => void (resource(d, 1).ttl = 5), 'resources[1] (identifier "https://records.example"): ttl: must be between 30 and 86400 seconds');
    await refused('bad-type.json', (d) => void (client(d, 0).requireDpop = 'yes'), 'clients[0] (id "orders-service"): requireDpop: must be a boolean');
    await refused('bad-grant.json', (d) => void (client(d, 0).grants = ['password']), "clients[0] (id \"orders-service\"): grants[0]: 'password' is not a grant type Gatehouse serves");
    await refused('bad-scope.json', (d) => void (d.roles[1]!.scopes = ['records:read', 'bad scope']), 'roles[1] (name "doctor"): scopes[1]: ', 'not a valid scope');
    await refused('bad-id.json', (d) => void (client(d, 0).id = '-x'), 'clients[0] (id "-x"): id: ', 'not a valid client id');
  });

  it('rules that span fields, as the CLI and admin API apply them', async () => {
    await refused(
      'public-cc.json',
      (d) => void (client(d, 0).public = true),
      'clients[0] (id "orders-service"): grants: ',
      'needs a confidential client',
    );
    await refused('no-redirect.json', (d) => void (client(d, 1).redirectUris = []), 'clients[1] (id "web"): redirectUris: at least one redirect URI is required');
    await refused('pkjwt.json', (d) => void (client(d, 0).authMethod = 'private_key_jwt'), 'clients[0] (id "orders-service"): jwks: private_key_jwt needs');
  });

  it('a missing required field', async () => {
    await refused('no-id.json', (d) => void delete client(d, 1).id, 'clients[1]: id: is required');
    await refused('no-name.json', (d) => void delete client(d, 0).name, 'clients[0] (id "orders-service"): name: is required');
    await refused('no-scopes.json', (d) => void delete resource(d, 0).scopes, 'resources[0] (identifier "https://orders.example"): scopes: is required');
  });

  it('an unknown field, in an entry or at the top', async () => {
    await refused('unknown.json', (d) => void (client(d, 1).colour = 'blue'), 'clients[1] (id "web"): colour: unknown field');
    await refused('unknown-flag-name.json', (d) => void (resource(d, 0).accessTokenTtl = 300), 'resources[0] (identifier "https://orders.example"): accessTokenTtl: unknown field');
    await refused('users.json', (d) => ({ ...d, users: [{ email: 'a@example.com' }] }), 'users: unknown field');
  });

  it('a secret field, whatever its spelling', async () => {
    for (const key of ['secret', 'client_secret', 'clientSecret', 'secretDigest']) {
      await refused(`secret-${key}.json`, (d) => void (client(d, 0)[key] = 'hunter2hunter2'), `clients[0] (id "orders-service"): ${key}: secrets never appear in config files`);
    }
    await refused('top-secret.json', (d) => ({ ...d, client_secret: 'x' }), 'client_secret: secrets never appear');
  });

  it('a reference to something missing', async () => {
    await refused(
      'missing-resource.json',
      (d) => void (client(d, 1).resources = ['https://records.example', 'https://missing.example']),
      "clients[1] (id \"web\"): resources[1]: unknown resource 'https://missing.example'",
    );
    await refused('missing-server.json', (d) => void (resource(d, 0).servedBy = ['nobody']), "resources[0] (identifier \"https://orders.example\"): servedBy[0]: unknown client 'nobody'");
    await refused('missing-role-resource.json', (d) => void (d.roles[0]!.resource = 'https://nowhere.example'), "roles[0] (name \"nurse\"): resource: unknown resource 'https://nowhere.example'");
    await refused('missing-role-scope.json', (d) => void d.roles[0]!.scopes.push('invoices:read'), "roles[0] (name \"nurse\"): scopes[1]: 'invoices:read' is not a scope of https://records.example");
    // with --prune, what the file leaves out is going away, so it cannot be referenced
    const doc = baseDoc();
    doc.resources.pop();
    const file = env.write('prune-ref.json', doc);
    const before = await env.snapshot();
    expectOneLineError(await env.run('apply', '-f', file, '--prune'), "clients[1] (id \"web\"): resources[0]: unknown resource 'https://records.example' (not in the file, so --prune deletes it)");
    expect(await env.snapshot()).toBe(before);
  });

  it('a duplicate entry', async () => {
    await refused('dup.json', (d) => void d.clients.push({ ...d.clients[0]! }), 'clients[2] (id "orders-service"): id: "orders-service" is also declared by clients[0]');
  });

  it('the reserved urn:gatehouse: namespace', async () => {
    await refused('reserved.json', (d) => void d.resources.push({ identifier: 'urn:gatehouse:mine', scopes: ['x'] } as Doc['resources'][number]), 'resources[2] (identifier "urn:gatehouse:mine"): identifier: ', 'reserved');
  });

  it('a file that is not a config file', async () => {
    const before = await env.snapshot();
    expectOneLineError(await env.run('apply', '-f', env.write('broken.json', '{"clients": [')), 'broken.json: not valid JSON');
    expectOneLineError(await env.run('apply', '-f', env.write('list.json', [])), 'list.json: must be a mapping');
    expectOneLineError(await env.run('apply', '-f', env.write('empty.json', '')), 'empty.json: the file is empty');
    expectOneLineError(await env.run('apply', '-f', env.write('not-list.json', { clients: { id: 'x' } })), 'not-list.json: clients: must be a list');
    expectOneLineError(await env.run('apply', '-f', env.write('entry.json', { roles: ['nurse'] })), 'entry.json: roles[0]: must be a mapping of fields');
    expectOneLineError(await env.run('apply', '-f', `${env.tmp}/no-such-file.json`), 'cannot read', 'ENOENT');
    expect(await env.snapshot()).toBe(before);
  });

  it('a YAML file is read; bad YAML is one line naming the file and position', async () => {
    const yamlDoc = 'resources:\n  - identifier: https://yaml.example\n    scopes: [yaml:read]\n';
    const ok = await env.run('apply', '-f', env.write('ok.yaml', yamlDoc), '--dry-run', '--json');
    expectOk(ok);
    expect(ok.json<PlanJson>().create).toEqual([{ kind: 'resource', id: 'https://yaml.example' }]);
    const bad = await env.run('apply', '-f', env.write('bad.yaml', 'resources:\n  - identifier: [unclosed\n'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^gatehouse: .*bad\.yaml:\d+:\d+: not valid YAML: /);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const bomb = await env.run('apply', '-f', env.write('alias.yaml', 'a: &x [1, 2]\nb: *x\n'));
    expect(bomb.code).toBe(1);
    expect(bomb.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a .yaml file holding JSON is read', async () => {
    const r = await env.run('apply', '-f', env.write('json-in.yaml', baseDoc()), '--json');
    expectOk(r);
  });
});
