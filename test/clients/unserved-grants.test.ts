// A grant Gatehouse does not serve (any made-up one, the implicit and
// password grants) is refused wherever a client is written: the CLI with one
// line, the admin API with a 422 problem naming the field, apply naming the
// entry and field. Nothing is stored. The device code grant is served
// (RFC 8628): `clients create --grant …device_code` makes a public client
// with auth method none.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { adminToken, api, expectProblem } from '../admin/helpers.ts';

const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
const SERVED = `authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:token-exchange, ${DEVICE}`;

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
    for (const grant of ['password', 'implicit', 'urn:ietf:params:oauth:grant-type:device']) {
      const r = await cli(t.database.url, ['clients', 'create', '--name', 'tv', '--grant', grant]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`gatehouse: invalid --grant: '${grant}' is not a grant type Gatehouse serves (served: ${SERVED})\n`);
    }
    const ok = await cli(t.database.url, ['clients', 'create', '--id', 'svc', '--name', 'svc', '--grant', 'client_credentials']);
    expect(ok.code, ok.stderr).toBe(0);
    const upd = await cli(t.database.url, ['clients', 'update', 'svc', '--grant', 'client_credentials', '--grant', 'password']);
    expect(upd.code).toBe(1);
    expect(upd.stderr).toMatch(/^gatehouse: invalid --grant: 'password' is not a grant type Gatehouse serves/);
    expect(await clientCount()).toBe(before + 1);
    expect((await t.gatehouse.db.prisma.client.findUnique({ where: { id: 'svc' } }))?.grantTypes).toEqual(['client_credentials']);
  });

  it('the device code grant is served: clients create --grant …device_code makes a public client', async () => {
    const r = await cli(t.database.url, ['clients', 'create', '--id', 'tv', '--name', 'TV', '--public', '--grant', DEVICE]);
    expect(r.code, r.stderr).toBe(0);
    const row = await t.gatehouse.db.prisma.client.findUnique({ where: { id: 'tv' } });
    expect(row).toMatchObject({ public: true, authMethod: 'none', grantTypes: [DEVICE], secretDigest: null });
    const res = await t.request.post('/device/auth').type('form').send({ client_id: 'tv', scope: 'openid' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it('the admin API answers a problem+json naming the field', async () => {
    const before = await clientCount();
    const res = await api(t, token, 'post', '/clients').send({ name: 'tv', grants: ['client_credentials', 'password'] });
    expectProblem(res, 422, 'grants'); // the admin API's status for a value it refuses (docs/admin-api.md)
    expect(JSON.stringify(res.body)).toContain('is not a grant type Gatehouse serves');
    expect(await clientCount()).toBe(before);
  });

  it('apply names the entry and the field', async () => {
    const before = await clientCount();
    const file = path.join(tmp, 'tv.yaml');
    writeFileSync(file, `clients:\n  - id: living-room-tv\n    name: TV\n    public: true\n    grants: ["implicit"]\n`);
    for (const extra of [[], ['--dry-run']]) {
      const r = await cli(t.database.url, ['apply', '-f', file, ...extra]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
      expect(r.stderr).toContain(`clients[0] (id "living-room-tv"): grants[0]: 'implicit' is not a grant type Gatehouse serves`);
    }
    expect(await clientCount()).toBe(before);
  });
});
