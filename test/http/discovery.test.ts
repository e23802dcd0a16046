import { createLocalJWKSet, jwtVerify, SignJWT, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';

describe('discovery, JWKS and health endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER: 'http://localhost:3000' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves OpenID Connect discovery for the configured issuer', async () => {
    // endpoint URLs come from ISSUER, whatever Host header the request carries
    const res = await t.request.get('/.well-known/openid-configuration').set('Host', 'evil.example').expect(200);
    expect(res.body.issuer).toBe('http://localhost:3000');
    expect(res.body.jwks_uri).toBe('http://localhost:3000/jwks');
    expect(res.body.token_endpoint).toBe('http://localhost:3000/token');
    expect(res.body.authorization_endpoint).toBe('http://localhost:3000/auth');
    expect(res.body.introspection_endpoint).toBe('http://localhost:3000/token/introspection');
    expect(res.body.revocation_endpoint).toBe('http://localhost:3000/token/revocation');
    expect(res.body.end_session_endpoint).toBe('http://localhost:3000/session/end');
    expect(res.body.code_challenge_methods_supported).toEqual(['S256']);
    expect(res.body.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'ES256', 'EdDSA']));
  });

  it('publishes RS256, ES256 and EdDSA public keys and nothing private', async () => {
    const res = await t.request.get('/jwks').expect(200);
    const keys = res.body.keys as JWK[];
    expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    for (const k of keys) {
      expect(k.kid).toBeTruthy();
      expect(k.use).toBe('sig');
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(priv);
    }
  });

  it('signs with keys that verify against /jwks', async () => {
    // The private RS256 key oidc-provider signs with is the one /jwks publishes.
    const rows = await t.gatehouse.db.prisma.signingKey.findMany({ where: { alg: 'RS256' } });
    expect(rows).toHaveLength(1);
    const { loadKeyring } = await import('../../src/keys/index.ts');
    const ring = await loadKeyring(t.gatehouse.db.prisma, t.config.keyEncryptionKey);
    const priv = ring.jwks.keys.find((k) => k.alg === 'RS256')!;
    const jwt = await new SignJWT({ a: 1 }).setProtectedHeader({ alg: 'RS256', kid: priv.kid! }).sign(await importJWK(priv, 'RS256'));
    const jwks = createLocalJWKSet((await t.request.get('/jwks')).body);
    await expect(jwtVerify(jwt, jwks)).resolves.toBeTruthy();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await t.request.get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
    const ready = await t.request.get('/readyz').expect(200);
    expect(ready.body).toMatchObject({ status: 'ready', database: 'up' });
  });

  it('sets a request id and strict security headers', async () => {
    const res = await t.request.get('/healthz').set('X-Request-Id', 'abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
    const other = await t.request.get('/healthz').set('X-Request-Id', 'bad id with spaces');
    expect(other.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['strict-transport-security']).toBeUndefined(); // http issuer
  });

  it('answers unknown paths with a 404 and no stack trace', async () => {
    const res = await t.request.get('/nope').expect(404);
    expect(res.text).not.toMatch(/at .*\.ts:\d+/);
  });

  it('reports not ready while draining', async () => {
    t.gatehouse.drain();
    const res = await t.request.get('/readyz').expect(503);
    expect(res.body).toMatchObject({ status: 'not ready', draining: true });
  });
});

describe('behind an https issuer', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER: 'https://id.example.com' } });
  });
  afterAll(async () => {
    await t?.close();
  });
  it('sends HSTS', async () => {
    const res = await t.request.get('/healthz').expect(200);
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
  });
});
