import { decodeJwt } from 'jose';
import { knownRevoked } from '../helpers/revocations.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/clients/store.ts';
import { createResource, updateResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';



const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';
/** PRODUCT.md: client changes reach every instance within one second */
const PROPAGATION_MS = 1_000;

describe('two instances on one database', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  const secrets: Record<string, string> = {};
  const basic = (cid: string) => `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(secrets[cid]!)}`).toString('base64')}`;
  const token = (app: TestApp, cid: string, form: Record<string, string> = {}) =>
    app.request.post('/token').type('form').set('Authorization', basic(cid)).send({ grant_type: 'client_credentials', resource: ORDERS, ...form });
  const introspect = (app: TestApp, caller: string, value: string) =>
    app.request.post('/token/introspection').type('form').set('Authorization', basic(caller)).send({ token: value });
  /** polls until check() holds or the propagation budget (counted from now) is spent; returns the last result */
  const within = async (check: () => Promise<boolean>, ms = PROPAGATION_MS): Promise<boolean> => {
    const deadline = Date.now() + ms;
    for (;;) {
      if (await check()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    a = await createTestApp({ database, env: { ISSUER } });
    b = await createTestApp({ database, env: { ISSUER } });
    const db = a.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
    secrets['orders-api'] = (await createClient(db, { id: 'orders-api', name: 'orders-api', grants: ['client_credentials'] })).clientSecret!;
    await updateResource(db, ORDERS, { servedBy: ['orders-api'] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it('both instances sign with the same keys: a token from A is active on B', async () => {
    const db = a.gatehouse.db.prisma;
    secrets.shared = (await createClient(db, { id: 'shared', name: 'shared', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] })).clientSecret!;
    const res = await token(a, 'shared');
    expect(res.status).toBe(200);
    expect(await within(async () => (await introspect(b, 'orders-api', res.body.access_token)).body.active === true)).toBe(true);
  });

  it('a client created through A is served by B (even after B cached its absence)', async () => {
    secrets.fresh = 'x'.repeat(43);
    expect((await token(b, 'fresh')).status).toBe(401); // B now caches "no such client"
    const created = await createClient(a.gatehouse.db.prisma, { id: 'fresh', name: 'fresh', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] });
    secrets.fresh = created.clientSecret!;
    expect(await within(async () => (await token(b, 'fresh')).status === 200)).toBe(true);
  });

  it('an update through A is seen by B', async () => {
    const db = a.gatehouse.db.prisma;
    secrets.grow = (await createClient(db, { id: 'grow', name: 'grow', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] })).clientSecret!;
    expect((await token(b, 'grow', { scope: 'orders:write' })).body.error).toBe('invalid_scope');
    await updateClient(db, 'grow', { scopes: ['orders:read', 'orders:write'] });
    expect(await within(async () => (await token(b, 'grow', { scope: 'orders:write' })).status === 200)).toBe(true);
  });

  it('a grant type taken away through A is refused by B (B rebuilds the client oidc-provider sees)', async () => {
    const db = a.gatehouse.db.prisma;
    secrets.shrink = (await createClient(db, { id: 'shrink', name: 'shrink', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] })).clientSecret!;
    expect((await token(b, 'shrink')).status).toBe(200);
    await updateClient(db, 'shrink', { grants: ['urn:ietf:params:oauth:grant-type:token-exchange'] });
    expect(await within(async () => (await token(b, 'shrink')).body.error === 'unauthorized_client')).toBe(true);
  });

  it('disabling through A: B answers invalid_client and its introspection of the client’s tokens says inactive', async () => {
    const db = a.gatehouse.db.prisma;
    secrets.victim = (await createClient(db, { id: 'victim', name: 'victim', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] })).clientSecret!;
    const outstanding = (await token(b, 'victim')).body.access_token as string;
    expect((await introspect(b, 'orders-api', outstanding)).body.active).toBe(true);
    expect((await introspect(b, 'victim', outstanding)).body.active).toBe(true);

    await updateClient(db, 'victim', { disabled: true });
    expect(await within(async () => (await token(b, 'victim')).status === 401)).toBe(true);
    const refused = await token(b, 'victim');
    expect(refused.body.error).toBe('invalid_client');
    expect(await within(async () => (await introspect(b, 'orders-api', outstanding)).body.active === false)).toBe(true);
    expect((await introspect(b, 'orders-api', outstanding)).body).toEqual({ active: false });
    expect((await introspect(b, 'victim', outstanding)).status).toBe(401);
    // and on A as well
    expect((await introspect(a, 'orders-api', outstanding)).body).toEqual({ active: false });
  });

  it('a revocation through A makes B’s introspection inactive', async () => {
    const issued = (await token(b, 'shared')).body.access_token as string;
    expect((await introspect(b, 'orders-api', issued)).body.active).toBe(true);
    const rev = await a.request.post('/token/revocation').type('form').set('Authorization', basic('shared')).send({ token: issued });
    expect(rev.status).toBe(200);
    // B learns it through the change feed (within milliseconds; the contract allows a second)
    await knownRevoked(b.gatehouse.revocations, decodeJwt(issued).jti!, 1_000);
    expect((await introspect(b, 'orders-api', issued)).body).toEqual({ active: false });
    expect((await introspect(b, 'shared', issued)).body).toEqual({ active: false });
    expect(await b.gatehouse.db.prisma.revokedToken.findUnique({ where: { jti: decodeJwt(issued).jti! } })).not.toBeNull();
  });

  it('a grant revoked through A makes its JWT access tokens inactive on B', async () => {
    const db = a.gatehouse.db.prisma;
    secrets.web = (
      await createClient(db, {
        id: 'web',
        name: 'web',
        grants: ['authorization_code', 'refresh_token'],
        redirectUris: ['https://web.example.com/cb'],
        resources: [ORDERS],
        scopes: ['orders:read'],
      })
    ).clientSecret!;
    const provider = a.gatehouse.provider();
    const client = (await provider.Client.find('web'))!;
    const grant = new provider.Grant({ accountId: 'user-1', clientId: 'web' });
    grant.addResourceScope(ORDERS, 'orders:read');
    const grantId = await grant.save();
    const resourceServer = new provider.ResourceServer(ORDERS, { audience: ORDERS, scope: 'orders:read', accessTokenTTL: 60, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } });
    const at = await new provider.AccessToken({ client, accountId: 'user-1', grantId, gty: 'authorization_code', scope: 'orders:read', resourceServer }).save();
    expect(await within(async () => (await introspect(b, 'orders-api', at)).body.active === true)).toBe(true);
    await provider.AccessToken.revokeByGrantId(grantId);
    expect((await introspect(b, 'orders-api', at)).body).toEqual({ active: false });
  });
});
