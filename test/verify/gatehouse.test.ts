// gatehouse/verify against a real Gatehouse on 127.0.0.1: tokens issued by the
// token endpoint, keys found through discovery, token exchange, DPoP, rotation.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/clients/store.ts';
import { rotateSigningKey } from '../../src/keys/index.ts';
import { createResource, updateResource } from '../../src/resources/store.ts';
import {
  accessTokenHash,
  createTokenClient,
  createVerifier,
  requireScopes,
  VerifyError,
  type AuthenticatedRequest,
  type FetchFunction,
  type TokenClient,
} from '../../src/verify/index.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const ORDERS = 'https://orders.example.com';
const PAYMENTS = 'https://payments.example.com';
const INVENTORY = 'urn:example:inventory';

async function refusal(p: Promise<unknown>): Promise<VerifyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VerifyError);
  return err as VerifyError;
}

describe('gatehouse/verify against a real Gatehouse', () => {
  let t: TestApp;
  let server: http.Server;
  let issuer: string;
  const secrets = new Map<string, string>();
  let tokenRequests = 0;
  /** counts the token requests the clients make */
  const countingFetch: FetchFunction = (input, init) => {
    if (String(input).endsWith('/token')) tokenRequests++;
    return fetch(input, init);
  };
  const tokenClient = (clientId: string, extra: Partial<Parameters<typeof createTokenClient>[0]> = {}): TokenClient =>
    createTokenClient({ issuer, clientId, clientSecret: secrets.get(clientId)!, fetch: countingFetch, ...extra });

  beforeAll(async () => {
    // listen first, so the issuer URL (with its port) is known before the app is built
    let handler: http.RequestListener = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    server = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await createTestApp({ env: { ISSUER: issuer } });
    handler = t.gatehouse.app.callback();

    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'], accessTokenTtl: 300 });
    await createResource(db, { identifier: PAYMENTS, scopes: ['payments:read', 'payments:charge'], signingAlg: 'ES256', accessTokenTtl: 120 });
    await createResource(db, { identifier: INVENTORY, scopes: ['inventory:read'], signingAlg: 'EdDSA' });
    const clients = [
      { id: 'storefront', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read', 'orders:write'] },
      { id: 'orders-service', grants: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'], resources: [PAYMENTS, INVENTORY], scopes: ['payments:read', 'payments:charge', 'inventory:read'] },
      { id: 'mobile', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'], requireDpop: true },
    ] as const;
    for (const { id, ...rest } of clients) {
      const c = await createClient(db, { id, name: id, ...rest, grants: [...rest.grants], resources: [...rest.resources], scopes: [...rest.scopes] });
      secrets.set(id, c.clientSecret!);
    }
    await updateResource(db, ORDERS, { servedBy: ['orders-service'] });
  });
  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await t?.close();
  });

  it('a client_credentials token for API A is accepted by A (keys found through discovery) and refused by B', async () => {
    const tokens = tokenClient('storefront');
    const { accessToken, tokenType } = await tokens.clientCredentials({ resource: ORDERS, scope: 'orders:read' });
    expect(tokenType).toBe('Bearer');
    const orders = createVerifier({ issuer, audience: ORDERS });
    const claims = await orders.verify(accessToken, { scopes: ['orders:read'] });
    expect(claims).toMatchObject({ iss: issuer, aud: ORDERS, sub: 'storefront', client_id: 'storefront', scope: 'orders:read' });

    const payments = createVerifier({ issuer, audience: PAYMENTS });
    const err = await refusal(payments.verify(accessToken));
    expect(err).toMatchObject({ status: 401, error: 'invalid_token', description: 'the token is not meant for this API' });

    // the scope it was not given
    const scopeErr = await refusal(orders.verify(accessToken, { scopes: ['orders:write'] }));
    expect(scopeErr).toMatchObject({ status: 403, error: 'insufficient_scope', scope: 'orders:write' });
  });

  it('verifies ES256 and EdDSA tokens too', async () => {
    const tokens = tokenClient('orders-service');
    const es = await tokens.clientCredentials({ resource: PAYMENTS, scope: 'payments:read' });
    const ed = await tokens.clientCredentials({ resource: INVENTORY, scope: 'inventory:read' });
    expect(decodeProtectedHeader(es.accessToken).alg).toBe('ES256');
    expect(decodeProtectedHeader(ed.accessToken).alg).toBe('EdDSA');
    await createVerifier({ issuer, audience: PAYMENTS }).verify(es.accessToken, { scopes: ['payments:read'] });
    await createVerifier({ issuer, audience: INVENTORY }).verify(ed.accessToken, { scopes: ['inventory:read'] });
  });

  it('the token client caches per (resource, scope) and shares concurrent requests', async () => {
    const tokens = tokenClient('storefront');
    const before = tokenRequests;
    const [a, b] = await Promise.all([
      tokens.clientCredentials({ resource: ORDERS, scope: 'orders:read orders:write' }),
      tokens.clientCredentials({ resource: ORDERS, scope: 'orders:write orders:read' }),
    ]);
    expect(b.accessToken).toBe(a.accessToken);
    expect((await tokens.clientCredentials({ resource: ORDERS, scope: 'orders:read orders:write' })).accessToken).toBe(a.accessToken);
    expect(tokenRequests - before).toBe(1);
    const c = await tokens.clientCredentials({ resource: ORDERS, scope: 'orders:read' });
    expect(c.accessToken).not.toBe(a.accessToken);
    expect(tokenRequests - before).toBe(2);
    expect(c.expiresAt - Date.now()).toBeGreaterThan(250_000);
  });

  it('Gatehouse refusals reach the caller as TokenRequestError', async () => {
    const err = await tokenClient('storefront').clientCredentials({ resource: PAYMENTS }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TokenRequestError', status: 400, error: 'invalid_target' });
    const wrong = await createTokenClient({ issuer, clientId: 'storefront', clientSecret: 'wrong' }).clientCredentials({ resource: ORDERS }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ status: 401, error: 'invalid_client' });
  });

  it('exchangeForDownstream: the orders service calls payments on the caller’s behalf', async () => {
    const caller = await tokenClient('storefront').clientCredentials({ resource: ORDERS, scope: 'orders:read' });
    const orders = tokenClient('orders-service');
    const before = tokenRequests;
    const downstream = await orders.exchangeForDownstream(caller.accessToken, { audience: PAYMENTS, scope: 'payments:read' });
    expect(downstream).toMatchObject({ tokenType: 'Bearer', scope: 'payments:read', issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token' });
    const claims = await createVerifier({ issuer, audience: PAYMENTS }).verify(downstream.accessToken, { scopes: ['payments:read'] });
    expect(claims).toMatchObject({ sub: 'storefront', client_id: 'orders-service', aud: PAYMENTS, act: { sub: 'orders-service' } });
    // cached for the same subject token
    expect((await orders.exchangeForDownstream(caller.accessToken, { audience: PAYMENTS, scope: 'payments:read' })).accessToken).toBe(downstream.accessToken);
    expect(tokenRequests - before).toBe(1);
    // more than the actor may have → refused
    const err = await orders.exchangeForDownstream(caller.accessToken, { audience: ORDERS, scope: 'orders:write' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TokenRequestError', status: 400 });
  });

  describe('DPoP-bound tokens', () => {
    let key: { privateKey: CryptoKey; publicJwk: JWK };
    const proof = (htm: string, htu: string, extra: Record<string, unknown> = {}) =>
      new SignJWT({ htm, htu, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...extra })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
        .sign(key.privateKey);
    const boundToken = async () => {
      const basic = `Basic ${Buffer.from(`mobile:${encodeURIComponent(secrets.get('mobile')!)}`).toString('base64')}`;
      const res = await t.request
        .post('/token')
        .type('form')
        .set('Authorization', basic)
        .set('DPoP', await proof('POST', `${issuer}/token`))
        .send({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' })
        .expect(200);
      expect(res.body.token_type).toBe('DPoP');
      return res.body.access_token as string;
    };
    beforeAll(async () => {
      const pair = await generateKeyPair('ES256');
      key = { privateKey: pair.privateKey, publicJwk: await exportJWK(pair.publicKey) };
    });

    it('a Gatehouse DPoP token is accepted with a proof and refused without', async () => {
      const token = await boundToken();
      const verifier = createVerifier({ issuer, audience: ORDERS });
      const url = 'https://orders.example.com/orders';
      const claims = await verifier.verify(token, { scopes: ['orders:read'], dpop: { proof: await proof('GET', url, { ath: accessTokenHash(token) }), method: 'GET', url } });
      expect(claims.cnf).toEqual({ jkt: await calculateJwkThumbprint(key.publicJwk) });
      expect((await refusal(verifier.verify(token))).error).toBe('invalid_token');
      expect((await refusal(verifier.verify(token, { dpop: { proof: await proof('GET', url), method: 'GET', url } }))).error).toBe('invalid_dpop_proof');
    });

    it('through requireScopes on a node:http service', async () => {
      const token = await boundToken();
      const verifier = createVerifier({ issuer, audience: ORDERS });
      const api = http.createServer((req, res) =>
        void requireScopes(verifier, ['orders:read'], { publicUrl: 'https://orders.example.com' })(req, res, () => {
          res.end((req as AuthenticatedRequest).auth.sub);
        }),
      );
      const res = await supertest(api)
        .get('/orders/1')
        .set('Authorization', `DPoP ${token}`)
        .set('DPoP', await proof('GET', 'https://orders.example.com/orders/1', { ath: accessTokenHash(token) }))
        .expect(200);
      expect(res.text).toBe('mobile');
      const bearer = await supertest(api).get('/orders/1').set('Authorization', `Bearer ${token}`).expect(401);
      expect(bearer.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
    });
  });

  it('a disabled client can get no new token; the token client reports it', async () => {
    const db = t.gatehouse.db.prisma;
    const c = await createClient(db, { id: 'temp', name: 'temp', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] });
    secrets.set('temp', c.clientSecret!);
    await tokenClient('temp').clientCredentials({ resource: ORDERS });
    await updateClient(db, 'temp', { disabled: true });
    const deadline = Date.now() + 2_000;
    let err: unknown;
    while (Date.now() < deadline) {
      err = await tokenClient('temp').clientCredentials({ resource: ORDERS }).then(() => undefined, (e: unknown) => e);
      if (err) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(err).toMatchObject({ name: 'TokenRequestError', status: 401, error: 'invalid_client' });
  });

  // Last: it changes the signing keys.
  it('follows a key rotation: a token signed with the new key is verified after one JWKS refetch', async () => {
    let jwksFetches = 0;
    const verifier = createVerifier({
      issuer,
      audience: ORDERS,
      jwksCooldown: 0,
      fetch: (input, init) => {
        if (!String(input).includes('.well-known')) jwksFetches++;
        return fetch(input, init);
      },
    });
    const tokens = tokenClient('storefront');
    const before = await tokens.clientCredentials({ resource: ORDERS, scope: 'orders:read' });
    await verifier.verify(before.accessToken);
    expect(jwksFetches).toBe(1);
    const { kid } = await rotateSigningKey(t.gatehouse.db.prisma, t.config.keyEncryptionKey, { alg: 'RS256', leadSeconds: 0, maxTokenTtlSeconds: 3600 });
    await t.gatehouse.reloadKeys();
    tokens.clear();
    const after = await tokens.clientCredentials({ resource: ORDERS, scope: 'orders:read' });
    expect(decodeProtectedHeader(after.accessToken).kid).toBe(kid);
    await verifier.verify(after.accessToken);
    expect(jwksFetches).toBe(2);
    // the old key is still published: tokens signed with it still verify, without a fetch
    await verifier.verify(before.accessToken);
    expect(jwksFetches).toBe(2);
  });
});
