// requireScopes (node:http) and koaRequireScopes (Koa): claims handed on, 401/403 with RFC 6750 challenges.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessTokenHash,
  createVerifier,
  koaRequireScopes,
  requireScopes,
  type AccessTokenClaims,
  type AuthenticatedRequest,
  type MiddlewareOptions,
  type Verifier,
} from '../../src/verify/index.ts';
import { accessToken, makeKey, now, startStubIssuer, type StubIssuer, type TestKey } from './stub-issuer.ts';

const API = 'https://orders.example.com';

describe('middlewares', () => {
  let stub: StubIssuer;
  let signing: TestKey;
  let verifier: Verifier;
  let dpopKey: { privateKey: CryptoKey; publicJwk: JWK; jkt: string };

  beforeAll(async () => {
    signing = await makeKey('RS256');
    stub = await startStubIssuer([signing]);
    verifier = createVerifier({ issuer: stub.issuer, audience: API });
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const publicJwk = await exportJWK(publicKey);
    dpopKey = { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
  });
  afterAll(async () => {
    await stub?.close();
  });

  const token = (claims: Record<string, unknown> = {}) => accessToken(signing, { iss: stub.issuer, aud: API, ...claims });
  const proof = (t: string, htm: string, htu: string) =>
    new SignJWT({ htm, htu, iat: now(), jti: randomUUID(), ath: accessTokenHash(t) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: dpopKey.publicJwk })
      .sign(dpopKey.privateKey);

  /** The same assertions for both frameworks. */
  const suite = (name: string, makeApp: (scopes: string[], opts?: MiddlewareOptions) => Parameters<typeof supertest>[0]) => {
    describe(name, () => {
      const api = (opts?: MiddlewareOptions) => supertest(makeApp(['orders:read'], opts));

      it('lets a valid token through with its claims', async () => {
        const t = await token({ sub: 'alice', scope: 'orders:read orders:write' });
        const res = await api().get('/orders').set('Authorization', `Bearer ${t}`).expect(200);
        expect(res.body).toMatchObject({ sub: 'alice', aud: API, scope: 'orders:read orders:write' });
      });

      it('accepts the scheme name in any case', async () => {
        await api().get('/orders').set('Authorization', `bearer ${await token()}`).expect(200);
      });

      it('no Authorization → 401 with a bare challenge', async () => {
        const res = await api({ realm: 'orders' }).get('/orders').expect(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="orders"');
        expect(res.body).toEqual({ error: 'invalid_request', error_description: 'an access token is required' });
        // another scheme counts as no token
        const basic = await api().get('/orders').set('Authorization', 'Basic dXNlcjpwYXNz').expect(401);
        expect(basic.headers['www-authenticate']).toBe('Bearer');
      });

      it('a bad token → 401 invalid_token with error and description in the challenge', async () => {
        const t = await token({ aud: 'https://payments.example.com' });
        const res = await api({ realm: 'orders' }).get('/orders').set('Authorization', `Bearer ${t}`).expect(401);
        expect(res.headers['www-authenticate']).toBe(
          'Bearer realm="orders", error="invalid_token", error_description="the token is not meant for this API"',
        );
        expect(res.body).toEqual({ error: 'invalid_token', error_description: 'the token is not meant for this API' });
        expect(res.headers['cache-control']).toBe('no-store');
      });

      it('malformed Authorization headers → 401 invalid_token', async () => {
        for (const value of ['Bearer', 'Bearer a b', 'Bearer ä', 'Bearer ']) {
          const res = await api().get('/orders').set('Authorization', value);
          expect(res.status, value).toBe(401);
        }
        const res = await api().get('/orders').set('Authorization', 'Bearer a b').expect(401);
        expect(res.body.error).toBe('invalid_token');
      });

      it('a missing scope → 403 insufficient_scope with scope in the challenge', async () => {
        const app = supertest(makeApp(['orders:read', 'orders:write']));
        const t = await token({ scope: 'orders:read' });
        const res = await app.get('/orders').set('Authorization', `Bearer ${t}`).expect(403);
        expect(res.headers['www-authenticate']).toBe(
          'Bearer error="insufficient_scope", error_description="the token lacks the scope orders:write", scope="orders:read orders:write"',
        );
        expect(res.body).toEqual({ error: 'insufficient_scope', error_description: 'the token lacks the scope orders:write' });
      });

      describe('DPoP', () => {
        it('accepts a bound token with a proof for the URL rebuilt from Host', async () => {
          const t = await token({ cnf: { jkt: dpopKey.jkt } });
          const res = await api()
            .get('/orders?x=1')
            .set('Host', 'orders.internal:8080')
            .set('Authorization', `DPoP ${t}`)
            .set('DPoP', await proof(t, 'GET', 'http://orders.internal:8080/orders'))
            .expect(200);
          expect(res.body.cnf).toEqual({ jkt: dpopKey.jkt });
        });

        it('uses publicUrl when given, X-Forwarded-* only with trustProxy', async () => {
          const t = await token({ cnf: { jkt: dpopKey.jkt } });
          await api({ publicUrl: 'https://api.example.com/v1/' })
            .get('/orders')
            .set('Authorization', `DPoP ${t}`)
            .set('DPoP', await proof(t, 'GET', 'https://api.example.com/v1/orders'))
            .expect(200);
          const forwarded = (opts: MiddlewareOptions, p: string) =>
            api(opts)
              .get('/orders')
              .set('X-Forwarded-Proto', 'https')
              .set('X-Forwarded-Host', 'shop.example.com')
              .set('Authorization', `DPoP ${t}`)
              .set('DPoP', p);
          await forwarded({ trustProxy: true }, await proof(t, 'GET', 'https://shop.example.com/orders')).expect(200);
          const refused = await forwarded({}, await proof(t, 'GET', 'https://shop.example.com/orders'));
          expect(refused.status).toBe(401);
          expect(refused.body.error).toBe('invalid_dpop_proof');
        });

        it('a bad proof → 401 with a DPoP challenge naming the accepted algorithms', async () => {
          const t = await token({ cnf: { jkt: dpopKey.jkt } });
          const res = await api({ publicUrl: 'https://api.example.com' })
            .get('/orders')
            .set('Authorization', `DPoP ${t}`)
            .set('DPoP', await proof(t, 'POST', 'https://api.example.com/orders'))
            .expect(401);
          expect(res.body.error).toBe('invalid_dpop_proof');
          expect(res.headers['www-authenticate']).toBe(
            'DPoP error="invalid_dpop_proof", error_description="the DPoP proof htm does not match the request method", algs="ES256 ES384 RS256 PS256 EdDSA Ed25519"',
          );
        });

        it('a bound token sent as Bearer → 401 invalid_token', async () => {
          const t = await token({ cnf: { jkt: dpopKey.jkt } });
          const res = await api({ publicUrl: 'https://api.example.com' })
            .get('/orders')
            .set('Authorization', `Bearer ${t}`)
            .set('DPoP', await proof(t, 'GET', 'https://api.example.com/orders'))
            .expect(401);
          expect(res.body.error).toBe('invalid_token');
          expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
        });

        it('the DPoP scheme without a DPoP header → 401 invalid_dpop_proof', async () => {
          const t = await token({ cnf: { jkt: dpopKey.jkt } });
          const res = await api().get('/orders').set('Authorization', `DPoP ${t}`).expect(401);
          expect(res.body.error).toBe('invalid_dpop_proof');
          expect(res.headers['www-authenticate']).toMatch(/^DPoP /);
        });
      });
    });
  };

  suite('requireScopes (node:http)', (scopes, opts) =>
    http.createServer((req, res) => {
      void requireScopes(verifier, scopes, opts)(req, res, () => {
        const auth: AccessTokenClaims = (req as AuthenticatedRequest).auth;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(auth));
      });
    }),
  );

  suite('koaRequireScopes (Koa)', (scopes, opts) => {
    const app = new Koa();
    app.use(koaRequireScopes(verifier, scopes, opts));
    app.use((ctx) => {
      ctx.body = ctx.state.auth;
    });
    return app.callback();
  });

  it('requireScopes passes non-refusal errors to next(err)', async () => {
    const broken = { dpopAlgorithms: [], verify: () => Promise.reject(new Error('boom')) } satisfies Verifier;
    let seen: unknown;
    const req = { headers: { authorization: 'Bearer abc' } } as Parameters<ReturnType<typeof requireScopes>>[0];
    const res = { statusCode: 200, setHeader: () => undefined, end: () => undefined };
    await requireScopes(broken, [])(req, res, (err) => {
      seen = err;
    });
    expect(String(seen)).toMatch(/boom/);
    expect(req.auth).toBeUndefined();
  });
});
