// The bootstrap of docs/admin-api.md, step by step: the CLI creates the first
// admin API caller, it fetches a token at /token, and calls the API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { BASE, basic } from './helpers.ts';

describe('admin API bootstrap (docs/admin-api.md)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('gatehouse clients create … --scope gatehouse:admin, client_credentials at /token, then the API', async () => {
    const created = await cli(t.database.url, [
      'clients', 'create', '--name', 'admin-bot', '--grant', 'client_credentials',
      '--resource', 'urn:gatehouse:admin', '--scope', 'gatehouse:admin', '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const { client_id: id, client_secret: secret } = created.json<{ client_id: string; client_secret: string }>();

    // curl -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d resource=urn:gatehouse:admin -d scope=gatehouse:admin $ISSUER/token
    const tok = await t.request
      .post('/token')
      .type('form')
      .set('Authorization', basic(id, secret))
      .send({ grant_type: 'client_credentials', resource: 'urn:gatehouse:admin', scope: 'gatehouse:admin' });
    expect(tok.status, JSON.stringify(tok.body)).toBe(200);
    expect(tok.body.scope).toBe('gatehouse:admin');

    // the only resource of the client: also the default when none is named
    const dflt = await t.request.post('/token').type('form').set('Authorization', basic(id, secret)).send({ grant_type: 'client_credentials' });
    expect(dflt.status).toBe(200);

    const list = await t.request.get(`${BASE}/clients`).set('Authorization', `Bearer ${tok.body.access_token}`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((c: { id: string }) => c.id)).toContain(id);
    const me = await t.request.get(`${BASE}/clients/${id}`).set('Authorization', `Bearer ${dflt.body.access_token}`);
    expect(me.status).toBe(200);
    expect(me.body.name).toBe('admin-bot');
  });
});
