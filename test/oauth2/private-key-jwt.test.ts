import { randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('private_key_jwt client authentication', () => {
  let t: TestApp;
  let clientKey: CryptoKey;
  let otherKey: CryptoKey;
  const CLIENT = 'signer';
  const now = () => Math.floor(Date.now() / 1000);

  const assertion = (claims: JWTPayload = {}, key: CryptoKey = clientKey, alg = 'ES256') =>
    new SignJWT({ iss: CLIENT, sub: CLIENT, aud: `${ISSUER}/token`, jti: randomUUID(), iat: now(), exp: now() + 60, ...claims })
      .setProtectedHeader({ alg })
      .sign(key);
  const token = (clientAssertion: string, extra: Record<string, string> = {}) =>
    t.request
      .post('/token')
      .type('form')
      .send({ grant_type: 'client_credentials', resource: ORDERS, client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion, ...extra });
  const expectInvalidClient = (res: { status: number; body: { error?: string } }) => {
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  };

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read'] });
    const pair = await generateKeyPair('ES256');
    clientKey = pair.privateKey;
    otherKey = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'signer-1', use: 'sig', alg: 'ES256' };
    const created = await createClient(db, {
      id: CLIENT,
      name: 'signer',
      grants: ['client_credentials'],
      resources: [ORDERS],
      scopes: ['orders:read'],
      authMethod: 'private_key_jwt',
      jwks: { keys: [jwk] },
    });
    expect(created.clientSecret).toBeUndefined();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a client assertion signed with the client’s key authenticates (aud = token endpoint)', async () => {
    const res = await token(await assertion());
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('Bearer');
    expect(decodeJwt(res.body.access_token)).toMatchObject({ client_id: CLIENT, sub: CLIENT, aud: ORDERS, scope: 'orders:read' });
  });

  it('aud = the issuer is accepted too', async () => {
    expect((await token(await assertion({ aud: ISSUER }))).status).toBe(200);
  });

  it('the same client may introspect and revoke its tokens with an assertion', async () => {
    const at = (await token(await assertion())).body.access_token as string;
    const intro = await t.request
      .post('/token/introspection')
      .type('form')
      .send({ token: at, client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion({ aud: `${ISSUER}/token/introspection` }) });
    expect(intro.status).toBe(200);
    expect(intro.body).toMatchObject({ active: true, client_id: CLIENT });
    const rev = await t.request
      .post('/token/revocation')
      .type('form')
      .send({ token: at, client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion() });
    expect(rev.status).toBe(200);
    const again = await t.request
      .post('/token/introspection')
      .type('form')
      .send({ token: at, client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion() });
    expect(again.body).toEqual({ active: false });
  });

  it('an assertion signed with another key → invalid_client', async () => {
    expectInvalidClient(await token(await assertion({}, otherKey)));
  });

  it('a replayed assertion → invalid_client', async () => {
    const a = await assertion();
    expect((await token(a)).status).toBe(200);
    expectInvalidClient(await token(a));
  });

  it('an assertion replayed concurrently succeeds exactly once', async () => {
    const a = await assertion();
    const results = await Promise.all(Array.from({ length: 8 }, () => token(a)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expectInvalidClient(r);
  });

  it('wrong claims → invalid_client', async () => {
    const cases = [
      await assertion({ iss: 'someone-else' }),
      await assertion({ aud: 'https://elsewhere.example.com/token' }),
      await assertion({ iat: now() - 300, exp: now() - 120 }),
      await assertion({ jti: undefined }),
    ];
    for (const a of cases) expectInvalidClient(await token(a));
  });

  it('something that is not a JWT → 400 invalid_request (never a 5xx)', async () => {
    for (const a of ['not-a-jwt', 'a.b.c', '']) {
      const res = await token(a);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(['invalid_request', 'invalid_client']).toContain(res.body.error);
    }
    expect((await token('not-a-jwt')).body).toMatchObject({ error: 'invalid_request', error_description: 'invalid client_assertion format' });
  });

  it('a client secret is no substitute for the assertion', async () => {
    const res = await t.request
      .post('/token')
      .type('form')
      .set('Authorization', `Basic ${Buffer.from(`${CLIENT}:whatever`).toString('base64')}`)
      .send({ grant_type: 'client_credentials', resource: ORDERS });
    expectInvalidClient(res);
  });
});
