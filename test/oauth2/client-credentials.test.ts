import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, rotateClientSecret, updateClient } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const ORDERS = 'https://orders.example.com';
const PAYMENTS = 'https://payments.example.com';
const INVENTORY = 'urn:example:inventory';

describe('client_credentials', () => {
  let t: TestApp;
  let id: string;
  let secret: string;
  const basic = (cid: string, s: string) => `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(s)}`).toString('base64')}`;
  const token = (form: Record<string, string>, auth?: string) => {
    const r = t.request.post('/token').type('form');
    if (auth) r.set('Authorization', auth);
    return r.send(form);
  };
  const jwks = async () => createLocalJWKSet((await t.request.get('/jwks')).body);

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER: 'http://localhost:3000' } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'], accessTokenTtl: 120 });
    await createResource(db, { identifier: PAYMENTS, scopes: ['payments:read', 'payments:charge'], signingAlg: 'ES256' });
    await createResource(db, { identifier: INVENTORY, scopes: ['inventory:read'], signingAlg: 'EdDSA' });
    const created = await createClient(db, {
      id: 'orders-service',
      name: 'Orders service',
      grants: ['client_credentials'],
      resources: [ORDERS, PAYMENTS, INVENTORY],
      scopes: ['orders:read', 'payments:read', 'inventory:read'],
    });
    id = created.client.id;
    secret = created.clientSecret!;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('issues an RFC 9068 JWT access token for the requested resource', async () => {
    const res = await token({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, basic(id, secret)).expect(200);
    expect(res.body.token_type).toBe('Bearer');
    expect(res.body.expires_in).toBe(120);
    expect(res.body.scope).toBe('orders:read');
    expect(res.body.refresh_token).toBeUndefined();
    const header = decodeProtectedHeader(res.body.access_token);
    expect(header).toMatchObject({ typ: 'at+jwt', alg: 'RS256' });
    const { payload } = await jwtVerify(res.body.access_token, await jwks(), {
      issuer: 'http://localhost:3000',
      audience: ORDERS,
      typ: 'at+jwt',
    });
    expect(payload).toMatchObject({ sub: id, client_id: id, scope: 'orders:read', aud: ORDERS });
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBe(120);
  });

  it('signs with the algorithm of the resource (ES256, EdDSA)', async () => {
    const es = await token({ grant_type: 'client_credentials', resource: PAYMENTS, scope: 'payments:read' }, basic(id, secret)).expect(200);
    expect(decodeProtectedHeader(es.body.access_token).alg).toBe('ES256');
    const ed = await token({ grant_type: 'client_credentials', resource: INVENTORY, scope: 'inventory:read' }, basic(id, secret)).expect(200);
    expect(decodeProtectedHeader(ed.body.access_token).alg).toBe('EdDSA');
    await jwtVerify(ed.body.access_token, await jwks(), { audience: INVENTORY });
  });

  it('grants every scope the client holds on the API when none is asked for', async () => {
    const res = await token({ grant_type: 'client_credentials', resource: PAYMENTS }, basic(id, secret)).expect(200);
    expect(res.body.scope).toBe('payments:read');
  });

  it('writes nothing to the database on the token path', async () => {
    const before = await t.gatehouse.db.prisma.oidcPayload.count();
    await token({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, basic(id, secret)).expect(200);
    expect(await t.gatehouse.db.prisma.oidcPayload.count()).toBe(before);
  });

  it('accepts client_secret_post for a client registered with it', async () => {
    const db = t.gatehouse.db.prisma;
    const c = await createClient(db, { name: 'post', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'], authMethod: 'client_secret_post' });
    // single resource: used by default when none is requested
    const res = await token({ grant_type: 'client_credentials', client_id: c.client.id, client_secret: c.clientSecret!, scope: 'orders:read' }).expect(200);
    const { payload } = await jwtVerify(res.body.access_token, await jwks());
    expect(payload.aud).toBe(ORDERS);
    // a wrong secret in the body is refused like in the header
    const bad = await token({ grant_type: 'client_credentials', client_id: c.client.id, client_secret: 'x'.repeat(43) }).expect(401);
    expect(bad.body.error).toBe('invalid_client');
  });

  describe('refusals', () => {
    it('wrong secret → 401 invalid_client with WWW-Authenticate', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: ORDERS }, basic(id, 'wrong')).expect(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm=/);
    });
    it('unknown client → invalid_client', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: ORDERS }, basic('nobody', secret)).expect(401);
      expect(res.body.error).toBe('invalid_client');
    });
    it('no credentials → invalid_client', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: ORDERS }).expect(401);
      expect(res.body.error).toBe('invalid_client');
    });
    it('a scope the client was not granted → invalid_scope', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:write' }, basic(id, secret)).expect(400);
      expect(res.body.error).toBe('invalid_scope');
    });
    it('a scope of another resource → invalid_scope', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: ORDERS, scope: 'payments:read' }, basic(id, secret)).expect(400);
      expect(res.body.error).toBe('invalid_scope');
    });
    it('a resource the client was not granted → invalid_target', async () => {
      const db = t.gatehouse.db.prisma;
      await createResource(db, { identifier: 'https://secret.example.com', scopes: ['secret:read'] });
      const res = await token({ grant_type: 'client_credentials', resource: 'https://secret.example.com', scope: 'secret:read' }, basic(id, secret)).expect(400);
      expect(res.body.error).toBe('invalid_target');
    });
    it('an unknown resource → invalid_target', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: 'https://nowhere.example.com' }, basic(id, secret)).expect(400);
      expect(res.body.error).toBe('invalid_target');
    });
    it('no resource while the client has several → invalid_target', async () => {
      const res = await token({ grant_type: 'client_credentials', scope: 'orders:read' }, basic(id, secret)).expect(400);
      expect(res.body.error).toBe('invalid_target');
    });
    it('two resources at once → invalid_target (one audience per token)', async () => {
      const res = await t.request.post('/token').type('form').set('Authorization', basic(id, secret))
        .send(`grant_type=client_credentials&resource=${encodeURIComponent(ORDERS)}&resource=${encodeURIComponent(PAYMENTS)}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_target');
    });
    it('a grant the client does not have → unauthorized_client', async () => {
      const db = t.gatehouse.db.prisma;
      const c = await createClient(db, { name: 'web', grants: ['authorization_code'], redirectUris: ['https://app.example.com/cb'], resources: [ORDERS], scopes: ['orders:read'] });
      const res = await token({ grant_type: 'client_credentials', resource: ORDERS }, basic(c.client.id, c.clientSecret!)).expect(400);
      expect(res.body.error).toBe('unauthorized_client');
    });
    it('malformed input never yields a 5xx', async () => {
      for (const body of ['grant_type=client_credentials&resource=%00', 'grant_type=client_credentials&scope=%ZZ', 'resource=not a uri&grant_type=client_credentials', '']) {
        const res = await t.request.post('/token').type('form').set('Authorization', basic(id, secret)).send(body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(res.body.error).toBeTruthy();
      }
    });
  });

  it('a disabled client gets invalid_client at once; enabling restores it', async () => {
    const db = t.gatehouse.db.prisma;
    const c = await createClient(db, { name: 'tmp', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] });
    await token({ grant_type: 'client_credentials' }, basic(c.client.id, c.clientSecret!)).expect(200);
    await updateClient(db, c.client.id, { disabled: true });
    // the change reaches this instance's cache through LISTEN/NOTIFY; poll briefly
    const deadline = Date.now() + 2_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await token({ grant_type: 'client_credentials' }, basic(c.client.id, c.clientSecret!))).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);
    await updateClient(db, c.client.id, { disabled: false });
    const back = Date.now() + 2_000;
    while (Date.now() < back && (await token({ grant_type: 'client_credentials' }, basic(c.client.id, c.clientSecret!))).status !== 200) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await token({ grant_type: 'client_credentials' }, basic(c.client.id, c.clientSecret!)).expect(200);
  });

  it('a rotated secret keeps working during the grace period, the new one at once', async () => {
    const db = t.gatehouse.db.prisma;
    const c = await createClient(db, { name: 'rot', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] });
    const old = c.clientSecret!;
    const { clientSecret: fresh } = await rotateClientSecret(db, c.client.id, { graceSeconds: 3600 });
    const waitFor = async (s: string) => {
      const deadline = Date.now() + 2_000;
      while (Date.now() < deadline && (await token({ grant_type: 'client_credentials' }, basic(c.client.id, s))).status !== 200) {
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitFor(fresh);
    await token({ grant_type: 'client_credentials' }, basic(c.client.id, fresh)).expect(200);
    await token({ grant_type: 'client_credentials' }, basic(c.client.id, old)).expect(200);
    // no grace: the old secret stops working
    const { clientSecret: third } = await rotateClientSecret(db, c.client.id, { graceSeconds: 0 });
    await waitFor(third);
    await token({ grant_type: 'client_credentials' }, basic(c.client.id, fresh)).expect(401);
    await token({ grant_type: 'client_credentials' }, basic(c.client.id, old)).expect(401);
  });
});
