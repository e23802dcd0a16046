// A grant Gatehouse does not serve (the device flow, until it comes; any
// made-up one) is refused wherever a client is written: the CLI with one
// line, the admin API with a 422 problem naming the field, apply naming the
// entry and field. Nothing is stored.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { adminToken, api, expectProblem } from '../admin/helpers.ts';

const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';

describe('grants Gatehouse does not serve', () => {
  let t: TestApp;
  let token: string;
  let tmp: string;
  beforeAll(async () => {
    t = await createTestApp();
    token = await adminToken(t, ['gatehouse:admin']);
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-grants-'));
  });
  afterAll(async () => {
    await t?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const clientCount = () => t.gatehouse.db.prisma.client.count();

  it('clients create and update refuse them with one line', async () => {
    const before = await clientCount();
    for (const grant of [DEVICE, 'password', 'implicit']) {
      const r = await cli(t.database.url, ['clients', 'create', '--name', 'tv', '--grant', grant]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`gatehouse: invalid --grant: '${grant}' is not a grant type Gatehouse serves (served: authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:token-exchange)\n`);
    }
    const ok = await cli(t.database.url, ['clients', 'create', '--id', 'tv', '--name', 'tv', '--grant', 'client_credentials']);
    expect(ok.code, ok.stderr).toBe(0);
    const upd = await cli(t.database.url, ['clients', 'update', 'tv', '--grant', 'client_credentials', '--grant', DEVICE]);
    expect(upd.code).toBe(1);
    expect(upd.stderr).toMatch(new RegExp(`^gatehouse: invalid --grant: '${DEVICE}' is not a grant type Gatehouse serves`));
    expect(await clientCount()).toBe(before + 1);
    expect((await t.gatehouse.db.prisma.client.findUnique({ where: { id: 'tv' } }))?.grantTypes).toEqual(['client_credentials']);
  });

  it('the admin API answers a problem+json naming the field', async () => {
    const before = await clientCount();
    const res = await api(t, token, 'post', '/clients').send({ name: 'tv', grants: ['client_credentials', DEVICE] });
    expectProblem(res, 422, 'grants'); // the admin API's status for a value it refuses (docs/admin-api.md)
    expect(JSON.stringify(res.body)).toContain('is not a grant type Gatehouse serves');
    expect(await clientCount()).toBe(before);
  });

  it('apply names the entry and the field', async () => {
    const before = await clientCount();
    const file = path.join(tmp, 'tv.yaml');
    writeFileSync(file, `clients:\n  - id: living-room-tv\n    name: TV\n    public: true\n    grants: ["${DEVICE}"]\n`);
    for (const extra of [[], ['--dry-run']]) {
      const r = await cli(t.database.url, ['apply', '-f', file, ...extra]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
      expect(r.stderr).toContain(`clients[0] (id "living-room-tv"): grants[0]: '${DEVICE}' is not a grant type Gatehouse serves`);
    }
    expect(await clientCount()).toBe(before);
  });

  it('discovery agrees: no device endpoint, no device grant', async () => {
    const d = (await t.request.get('/.well-known/openid-configuration').expect(200)).body as Record<string, unknown>;
    expect(d.device_authorization_endpoint).toBeUndefined();
    expect(d.grant_types_supported).not.toContain(DEVICE);
  });
});
