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

  describe('a client_assertion that is not a JWT is a failed client authentication (RFC 6749 §5.2, RFC 7523 §3.2)', () => {
    const NOT_JWTS = ['not-a-jwt', '...', 'a.b.c', 'e30.not-json.x', 'a.b.c.d.e', ''];
    const ENDPOINTS = [
      { path: '/token', params: { grant_type: 'client_credentials', resource: ORDERS } },
      { path: '/token/introspection', params: { token: 'some-token' } },
      { path: '/token/revocation', params: { token: 'some-token' } },
    ];
    // the assertion names no client; client_id names a known one, or one nobody knows
    const CLIENT_IDS = [undefined, CLIENT, 'nobody'];

    it.each(ENDPOINTS)('$path → 401 invalid_client with WWW-Authenticate', async ({ path, params }) => {
      for (const clientId of CLIENT_IDS) {
        for (const a of NOT_JWTS) {
          const res = await t.request
            .post(path)
            .type('form')
            .send({ ...params, ...(clientId ? { client_id: clientId } : {}), client_assertion_type: ASSERTION_TYPE, client_assertion: a });
          const what = `${path} client_id=${clientId ?? '(none)'} client_assertion=${JSON.stringify(a)}`;
          expect(res.status, what).toBe(401);
          expect(res.body.error, what).toBe('invalid_client');
          expect(res.headers['www-authenticate'], what).toMatch(/^Basic realm="/);
        }
      }
    });

    it('the client can still authenticate with a good assertion afterwards', async () => {
      expectInvalidClient(await token('not-a-jwt', { client_id: CLIENT }));
      expect((await token(await assertion(), { client_id: CLIENT })).status).toBe(200);
    });
  });

  describe('malformed requests that are not failed client authentications stay invalid_request', () => {
    const expectInvalidRequest = (res: { status: number; body: { error?: string } }, what: string) => {
      expect(res.status, what).toBe(400);
      expect(res.body.error, what).toBe('invalid_request');
    };

    it('no or another client_assertion_type', async () => {
      for (const type of [undefined, 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer']) {
        for (const a of ['not-a-jwt', await assertion()]) {
          const res = await t.request
            .post('/token')
            .type('form')
            .send({ grant_type: 'client_credentials', resource: ORDERS, client_assertion: a, ...(type ? { client_assertion_type: type } : {}) });
          expectInvalidRequest(res, `type=${type ?? '(none)'} assertion=${a.slice(0, 12)}`);
        }
      }
    });

    it('two authentication mechanisms at once, or client_assertion given twice', async () => {
      const both = await t.request
        .post('/token')
        .type('form')
        .set('Authorization', `Basic ${Buffer.from(`${CLIENT}:whatever`).toString('base64')}`)
        .send({ grant_type: 'client_credentials', resource: ORDERS, client_assertion_type: ASSERTION_TYPE, client_assertion: 'not-a-jwt' });
      expectInvalidRequest(both, 'Basic + client_assertion');
      const twice = await t.request
        .post('/token')
        .type('form')
        .send(`grant_type=client_credentials&client_assertion_type=${encodeURIComponent(ASSERTION_TYPE)}&client_assertion=not-a-jwt&client_assertion=a.b.c`);
      expectInvalidRequest(twice, 'client_assertion twice');
    });

    it('a well-authenticated request that lacks what the endpoint needs', async () => {
      expectInvalidRequest(await token(await assertion(), { grant_type: '' }), 'no grant_type');
      const intro = await t.request
        .post('/token/introspection')
        .type('form')
        .send({ client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion() });
      expectInvalidRequest(intro, 'introspection without token');
    });
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
