import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';

interface ProofOptions {
  htm?: string;
  htu?: string;
  iat?: number;
  jti?: string;
  typ?: string;
  jwk?: JWK;
  signWith?: CryptoKey;
}

describe('DPoP (RFC 9449) at the token endpoint', () => {
  let t: TestApp;
  const secrets: Record<string, string> = {};
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  let jkt: string;

  const basic = (cid: string) => `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(secrets[cid]!)}`).toString('base64')}`;
  const proof = (o: ProofOptions = {}) =>
    new SignJWT({ htm: o.htm ?? 'POST', htu: o.htu ?? `${ISSUER}/token`, iat: o.iat ?? Math.floor(Date.now() / 1000), jti: o.jti ?? randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? publicJwk })
      .sign(o.signWith ?? privateKey);
  const token = (cid: string, dpop?: string) => {
    const r = t.request.post('/token').type('form').set('Authorization', basic(cid));
    if (dpop !== undefined) r.set('DPoP', dpop);
    return r.send({ grant_type: 'client_credentials', resource: ORDERS });
  };
  const expectDpopError = (res: { status: number; body: { error?: string; error_description?: string } }) => {
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_dpop_proof');
    expect(typeof res.body.error_description).toBe('string');
  };

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read'] });
    secrets.svc = (await createClient(db, { id: 'svc', name: 'svc', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] })).clientSecret!;
    secrets.bound = (
      await createClient(db, { id: 'bound', name: 'bound', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'], requireDpop: true })
    ).clientSecret!;
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    publicJwk = await exportJWK(pair.publicKey);
    jkt = await calculateJwkThumbprint(publicJwk);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a proof binds the token: token_type DPoP and cnf.jkt in the JWT', async () => {
    const res = await token('svc', await proof());
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    const claims = decodeJwt(res.body.access_token);
    expect(claims.cnf).toEqual({ jkt });
  });

  it('introspection of a DPoP-bound token shows token_type DPoP and cnf.jkt', async () => {
    const res = await token('svc', await proof());
    const claims = decodeJwt(res.body.access_token);
    const intro = await t.request.post('/token/introspection').type('form').set('Authorization', basic('svc')).send({ token: res.body.access_token });
    expect(intro.status).toBe(200);
    expect(intro.body).toEqual({
      active: true,
      client_id: 'svc',
      sub: 'svc',
      aud: ORDERS,
      scope: 'orders:read',
      exp: claims.exp,
      iat: claims.iat,
      iss: ISSUER,
      jti: claims.jti,
      token_type: 'DPoP',
      cnf: { jkt },
    });
  });

  it('without a proof the same client gets a Bearer token without cnf', async () => {
    const res = await token('svc');
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('Bearer');
    expect(decodeJwt(res.body.access_token).cnf).toBeUndefined();
  });

  it('a client with requireDpop: no proof → invalid_dpop_proof; with one → DPoP token', async () => {
    expectDpopError(await token('bound'));
    const ok = await token('bound', await proof());
    expect(ok.status).toBe(200);
    expect(ok.body.token_type).toBe('DPoP');
    expect(decodeJwt(ok.body.access_token).cnf).toEqual({ jkt });
  });

  it('a replayed proof (same jti) is refused', async () => {
    const p = await proof();
    expect((await token('svc', p)).status).toBe(200);
    expectDpopError(await token('svc', p));
    // a fresh proof from the same key is fine
    expect((await token('svc', await proof())).status).toBe(200);
  });

  it('a proof replayed concurrently succeeds exactly once', async () => {
    const p = await proof();
    // enough at once that some lose the race inside the storage adapter's single-use insert
    const results = await Promise.all(Array.from({ length: 8 }, () => token('svc', p)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expectDpopError(r);
  });

  it('malformed proofs are refused', async () => {
    const other = await generateKeyPair('ES256');
    const cases = [
      'not-a-jwt',
      'a.b.c',
      await proof({ typ: 'JWT' }), // wrong typ
      await proof({ signWith: other.privateKey }), // signature does not match the embedded key
      await proof({ iat: Math.floor(Date.now() / 1000) - 3600 }), // stale
    ];
    // no jwk header
    cases.push(
      await new SignJWT({ htm: 'POST', htu: `${ISSUER}/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt' })
        .sign(privateKey),
    );
    for (const p of cases) expectDpopError(await token('svc', p));
    for (const p of cases) expectDpopError(await token('bound', p));
  });

  it('mismatched proofs (wrong htm or htu) are refused', async () => {
    const cases = [
      await proof({ htm: 'GET' }),
      await proof({ htu: `${ISSUER}/token/introspection` }),
      await proof({ htu: 'https://evil.example.com/token' }),
      await proof({ htu: 'not a url' }),
    ];
    for (const p of cases) expectDpopError(await token('svc', p));
  });

  it('no DPoP nonce is required', async () => {
    const res = await token('svc', await proof());
    expect(res.status).toBe(200);
    expect(res.headers['dpop-nonce']).toBeUndefined();
  });
});
