import { randomUUID } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import { knownRevoked } from '../helpers/revocations.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, deleteClient, updateClient } from '../../src/clients/store.ts';
import { loadKeyring, rotateSigningKey } from '../../src/keys/index.ts';
import { createResource, updateResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { userGrantTokens } from './grant-tokens.ts';



const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';
const PAYMENTS = 'https://payments.example.com';

describe('token introspection (RFC 7662)', () => {
  let t: TestApp;
  const secrets: Record<string, string> = {};
  const basic = (cid: string) => `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(secrets[cid]!)}`).toString('base64')}`;
  const ccToken = async (cid: string, resource = ORDERS) => {
    const res = await t.request.post('/token').type('form').set('Authorization', basic(cid)).send({ grant_type: 'client_credentials', resource });
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  };
  const introspect = (caller: string, token: string, extra: Record<string, string> = {}) =>
    t.request.post('/token/introspection').type('form').set('Authorization', basic(caller)).send({ token, ...extra });
  const waitFor = async (check: () => Promise<boolean>) => {
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && !(await check())) await new Promise((r) => setTimeout(r, 25));
  };

  /** Signs a JWT with the server's own current RS256 key (to forge iss/typ/exp cases). */
  const signWithServerKey = async (claims: JWTPayload, header: { typ?: string } = {}) => {
    const ring = await loadKeyring(t.gatehouse.db.prisma, t.config.keyEncryptionKey);
    const jwk = ring.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops)!;
    const key = await importJWK(jwk, 'RS256');
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: header.typ ?? 'at+jwt' }).sign(key);
  };
  const now = () => Math.floor(Date.now() / 1000);
  const claimsFor = (cid: string, extra: JWTPayload = {}): JWTPayload => ({
    iss: ISSUER,
    sub: cid,
    client_id: cid,
    aud: ORDERS,
    scope: 'orders:read',
    jti: randomUUID(),
    iat: now(),
    exp: now() + 60,
    ...extra,
  });

  const userTokens = (cid: string) => userGrantTokens(t, cid, ORDERS, 'orders:read');

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: PAYMENTS, scopes: ['payments:read'] });
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read'], accessTokenTtl: 120 });
    const cc = (id: string, extra: Record<string, unknown> = {}) =>
      createClient(db, { id, name: id, grants: ['client_credentials'], resources: [ORDERS, PAYMENTS], scopes: ['orders:read', 'payments:read'], ...extra });
    for (const id of ['caller', 'orders-api', 'stranger', 'temp']) secrets[id] = (await cc(id)).clientSecret!;
    const web = await createClient(db, {
      id: 'web',
      name: 'web',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://web.example.com/cb'],
      resources: [ORDERS],
      scopes: ['orders:read'],
    });
    secrets.web = web.clientSecret!;
    await createClient(db, { id: 'spa', name: 'spa', public: true, grants: ['authorization_code'], redirectUris: ['https://spa.example.com/cb'] });
    // orders-api serves ORDERS (and so may introspect its tokens); so, oddly, does a public client
    await updateResource(db, ORDERS, { servedBy: ['orders-api', 'spa'] });
    await waitFor(async () => (await t.gatehouse.resources.get(ORDERS))?.servedBy.includes('orders-api') ?? false);
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('JWT access tokens (client_credentials)', () => {
    it('answers the token’s own client with exactly the RFC 7662 fields', async () => {
      const token = await ccToken('caller');
      const claims = decodeJwt(token);
      const res = await introspect('caller', token).expect(200);
      expect(res.headers['cache-control']).toMatch(/no-store/);
      expect(res.body).toEqual({
        active: true,
        client_id: 'caller',
        sub: 'caller',
        aud: ORDERS,
        scope: 'orders:read',
        exp: claims.exp,
        iat: claims.iat,
        iss: ISSUER,
        jti: claims.jti,
        token_type: 'Bearer',
      });
    });

    it('answers a client that serves the token’s audience', async () => {
      const token = await ccToken('caller');
      const res = await introspect('orders-api', token).expect(200);
      expect(res.body).toMatchObject({ active: true, client_id: 'caller', aud: ORDERS });
    });

    it('answers {active:false} to anyone else', async () => {
      const token = await ccToken('caller');
      expect((await introspect('stranger', token).expect(200)).body).toEqual({ active: false });
      // orders-api serves ORDERS, not PAYMENTS
      const payments = await ccToken('caller', PAYMENTS);
      expect((await introspect('orders-api', payments).expect(200)).body).toEqual({ active: false });
      expect((await introspect('caller', payments).expect(200)).body).toMatchObject({ active: true, aud: PAYMENTS });
    });

    it('a public client is never a resource server, even when listed in servedBy', async () => {
      const token = await ccToken('caller');
      const res = await t.request.post('/token/introspection').type('form').send({ token, client_id: 'spa' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ active: false });
    });

    it('honours any token_type_hint', async () => {
      const token = await ccToken('caller');
      for (const hint of ['access_token', 'refresh_token', 'urn:ietf:params:oauth:token-type:access_token', 'bogus']) {
        expect((await introspect('caller', token, { token_type_hint: hint }).expect(200)).body.active).toBe(true);
      }
    });

    it('reports extra claims such as act', async () => {
      const act = { sub: 'orders-api', act: { sub: 'gateway' } };
      const token = await signWithServerKey(claimsFor('caller', { sub: 'user-1', act }));
      const res = await introspect('orders-api', token).expect(200);
      expect(res.body).toMatchObject({ active: true, sub: 'user-1', client_id: 'caller', act });
    });

    it('is inactive when expired, with another issuer or typ, tampered or foreign', async () => {
      const cases: string[] = [
        await signWithServerKey(claimsFor('caller', { iat: now() - 120, exp: now() - 60 })),
        await signWithServerKey(claimsFor('caller', { iss: 'https://evil.example.com' })),
        await signWithServerKey(claimsFor('caller'), { typ: 'JWT' }),
        await signWithServerKey(claimsFor('nobody')), // client does not exist
      ];
      const good = await ccToken('caller');
      const [h, p, s] = good.split('.');
      const otherPayload = Buffer.from(JSON.stringify({ ...decodeJwt(good), scope: 'orders:read orders:write' })).toString('base64url');
      cases.push(`${h}.${otherPayload}.${s}`); // payload changed, signature kept
      cases.push(`${h}.${p}.${s!.slice(0, -4)}AAAA`); // signature changed
      // same claims and kid, signed by a key that is not ours
      const { privateKey } = await generateKeyPair('RS256');
      cases.push(
        await new SignJWT(decodeJwt(good)).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: decodeProtectedHeader(good).kid! }).sign(privateKey),
      );
      // alg none
      cases.push(`${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`);
      for (const token of cases) {
        const res = await introspect('caller', token);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ active: false });
      }
    });

    it('a disabled client’s tokens are inactive; enabling it restores them', async () => {
      const token = await ccToken('temp');
      expect((await introspect('orders-api', token).expect(200)).body.active).toBe(true);
      await updateClient(t.gatehouse.db.prisma, 'temp', { disabled: true });
      await waitFor(async () => !(await introspect('orders-api', token)).body.active);
      expect((await introspect('orders-api', token).expect(200)).body).toEqual({ active: false });
      // and the disabled client itself cannot authenticate
      expect((await introspect('temp', token)).status).toBe(401);
      await updateClient(t.gatehouse.db.prisma, 'temp', { disabled: false });
      await waitFor(async () => (await introspect('orders-api', token)).body.active === true);
      expect((await introspect('orders-api', token).expect(200)).body.active).toBe(true);
    });

    it('a deleted client’s tokens are inactive', async () => {
      const db = t.gatehouse.db.prisma;
      const c = await createClient(db, { id: 'doomed', name: 'doomed', grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] });
      secrets.doomed = c.clientSecret!;
      const token = await ccToken('doomed');
      expect((await introspect('orders-api', token)).body.active).toBe(true);
      await deleteClient(db, 'doomed');
      await waitFor(async () => !(await introspect('orders-api', token)).body.active);
      expect((await introspect('orders-api', token).expect(200)).body).toEqual({ active: false });
    });

    it('a jti in revoked_tokens is inactive', async () => {
      const token = await ccToken('caller');
      const { jti, exp } = decodeJwt(token);
      await t.gatehouse.db.prisma.revokedToken.create({ data: { jti: jti!, expiresAt: new Date(exp! * 1000) } });
      await knownRevoked(t.gatehouse.revocations, jti!);
      expect((await introspect('caller', token).expect(200)).body).toEqual({ active: false });
    });
  });

  describe('opaque and grant-bound tokens', () => {
    it('a refresh token is active for its own client only', async () => {
      const { refreshToken, accountId } = await userTokens('web');
      const own = await introspect('web', refreshToken).expect(200);
      expect(own.body).toMatchObject({ active: true, client_id: 'web', sub: accountId, scope: 'openid offline_access', iss: ISSUER });
      expect(own.body.token_type).toBeUndefined();
      expect(typeof own.body.exp).toBe('number');
      // not even a server of an API the grant covers
      expect((await introspect('orders-api', refreshToken).expect(200)).body).toEqual({ active: false });
      expect((await introspect('stranger', refreshToken).expect(200)).body).toEqual({ active: false });
    });

    it('a grant-bound JWT access token carries the user as sub and answers like the others', async () => {
      const { accessToken, accountId } = await userTokens('web');
      const claims = decodeJwt(accessToken);
      expect(claims.sub).toBe(accountId);
      const res = await introspect('orders-api', accessToken).expect(200);
      expect(res.body).toEqual({
        active: true,
        client_id: 'web',
        sub: accountId,
        aud: ORDERS,
        scope: 'orders:read',
        exp: claims.exp,
        iat: claims.iat,
        iss: ISSUER,
        jti: claims.jti,
        token_type: 'Bearer',
      });
      expect((await introspect('web', accessToken).expect(200)).body.active).toBe(true);
      expect((await introspect('stranger', accessToken).expect(200)).body).toEqual({ active: false });
    });

    it('revoking the grant (revokeByGrantId) makes its JWT access tokens inactive', async () => {
      const { accessToken, grantId } = await userTokens('web');
      expect((await introspect('web', accessToken)).body.active).toBe(true);
      await t.gatehouse.provider().AccessToken.revokeByGrantId(grantId);
      expect((await introspect('web', accessToken).expect(200)).body).toEqual({ active: false });
    });

    it('a destroyed grant makes its JWT access tokens inactive', async () => {
      const { accessToken, grantId } = await userTokens('web');
      const grant = await t.gatehouse.provider().Grant.find(grantId);
      await grant!.destroy();
      expect((await introspect('web', accessToken).expect(200)).body).toEqual({ active: false });
    });

    it('client_credentials tokens are not recorded; grant-bound JWTs leave one small row', async () => {
      const db = t.gatehouse.db.prisma;
      const before = await db.oidcPayload.count({ where: { model: 'JwtAccessToken' } });
      await ccToken('caller');
      expect(await db.oidcPayload.count({ where: { model: 'JwtAccessToken' } })).toBe(before);
      const { accessToken, grantId } = await userTokens('web');
      const rows = await db.oidcPayload.findMany({ where: { model: 'JwtAccessToken', grantId } });
      expect(rows).toHaveLength(1);
      expect(rows[0]!.id).toBe(decodeJwt(accessToken).jti);
    });
  });

  describe('refusals', () => {
    it('garbage and unknown tokens are {active:false}', async () => {
      for (const token of ['abc', 'a.b.c', 'x'.repeat(5000), `${'a'.repeat(20)}.${'b'.repeat(20)}.${'c'.repeat(20)}`, '%00', 'eyJhbGciOiJub25lIn0.e30.', '..']) {
        const res = await introspect('caller', token);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ active: false });
      }
    });
    it('no token → invalid_request', async () => {
      const res = await t.request.post('/token/introspection').type('form').set('Authorization', basic('caller')).send({});
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    });
    it('no or wrong client authentication → 401 invalid_client', async () => {
      const token = await ccToken('caller');
      const none = await t.request.post('/token/introspection').type('form').send({ token });
      expect(none.status).toBe(401);
      expect(none.body.error).toBe('invalid_client');
      const wrong = await t.request
        .post('/token/introspection')
        .type('form')
        .set('Authorization', `Basic ${Buffer.from('caller:wrong').toString('base64')}`)
        .send({ token });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error).toBe('invalid_client');
    });
  });

  describe('signing keys', () => {
    it('tokens signed by a retired (verify-only) key stay introspectable; new keys work at once', async () => {
      const before = await ccToken('caller');
      const db = t.gatehouse.db.prisma;
      await rotateSigningKey(db, t.config.keyEncryptionKey, { alg: 'RS256', leadSeconds: 0, maxTokenTtlSeconds: 600 });
      await t.gatehouse.reloadKeys();
      const jwks = (await t.request.get('/jwks')).body as { keys: { kid: string; key_ops?: string[] }[] };
      const oldKid = decodeProtectedHeader(before).kid;
      expect(jwks.keys.find((k) => k.kid === oldKid)?.key_ops).toEqual(['verify']);
      const after = await ccToken('caller');
      expect(decodeProtectedHeader(after).kid).not.toBe(oldKid);
      expect((await introspect('caller', before).expect(200)).body.active).toBe(true);
      expect((await introspect('caller', after).expect(200)).body.active).toBe(true);
      // a key that is not published (never was ours) does not verify
      const { privateKey } = await generateKeyPair('ES256');
      const foreign = await new SignJWT(decodeJwt(after)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'not-ours' }).sign(privateKey);
      expect((await introspect('caller', foreign).expect(200)).body).toEqual({ active: false });
    });
  });
});
