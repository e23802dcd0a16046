import { randomUUID } from 'node:crypto';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createResource, updateResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { userGrantTokens } from './grant-tokens.ts';

const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';

describe('token revocation (RFC 7009)', () => {
  let t: TestApp;
  const secrets: Record<string, string> = {};
  const basic = (cid: string) => `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(secrets[cid]!)}`).toString('base64')}`;
  const ccToken = async (cid: string) => {
    const res = await t.request.post('/token').type('form').set('Authorization', basic(cid)).send({ grant_type: 'client_credentials', resource: ORDERS });
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  };
  const revoke = (caller: string, token: string, extra: Record<string, string> = {}) =>
    t.request.post('/token/revocation').type('form').set('Authorization', basic(caller)).send({ token, ...extra });
  const active = async (caller: string, token: string) =>
    (await t.request.post('/token/introspection').type('form').set('Authorization', basic(caller)).send({ token }).expect(200)).body.active as boolean;
  const revokedRow = (jti: string) => t.gatehouse.db.prisma.revokedToken.findUnique({ where: { jti } });

  const userTokens = (cid: string) => userGrantTokens(t, cid, ORDERS, 'orders:read');

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read'] });
    for (const id of ['caller', 'orders-api', 'stranger']) {
      secrets[id] = (await createClient(db, { id, name: id, grants: ['client_credentials'], resources: [ORDERS], scopes: ['orders:read'] })).clientSecret!;
    }
    const web = await createClient(db, {
      id: 'web',
      name: 'web',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://web.example.com/cb'],
      resources: [ORDERS],
      scopes: ['orders:read'],
    });
    secrets.web = web.clientSecret!;
    await updateResource(db, ORDERS, { servedBy: ['orders-api'] });
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && !(await t.gatehouse.resources.get(ORDERS))?.servedBy.includes('orders-api')) {
      await new Promise((r) => setTimeout(r, 25));
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the owner revokes a JWT access token: 200, its jti is recorded until exp, introspection says inactive', async () => {
    const token = await ccToken('caller');
    const { jti, exp } = decodeJwt(token);
    const res = await revoke('caller', token);
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    const row = await revokedRow(jti!);
    expect(row?.expiresAt.getTime()).toBe(exp! * 1000);
    expect(await active('caller', token)).toBe(false);
    expect(await active('orders-api', token)).toBe(false);
    // a second revocation is a no-op with the same answer
    expect((await revoke('caller', token, { token_type_hint: 'access_token' })).status).toBe(200);
  });

  it('anyone else gets 200 and nothing happens (even a server of the audience)', async () => {
    const token = await ccToken('caller');
    for (const other of ['stranger', 'orders-api']) {
      const res = await revoke(other, token);
      expect(res.status).toBe(200);
    }
    expect(await revokedRow(decodeJwt(token).jti!)).toBeNull();
    expect(await active('caller', token)).toBe(true);
  });

  it('unknown, garbage and foreign tokens get 200', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await new SignJWT({ client_id: 'caller', aud: ORDERS, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(privateKey);
    const before = await t.gatehouse.db.prisma.revokedToken.count();
    for (const token of ['nope', 'a.b.c', foreign, 'x'.repeat(3000)]) {
      expect((await revoke('caller', token)).status).toBe(200);
    }
    expect(await t.gatehouse.db.prisma.revokedToken.count()).toBe(before);
  });

  it('a refresh token: only its client may revoke it, and revoking it revokes its grant', async () => {
    const { refreshToken, accessToken } = await userTokens('web');
    expect((await revoke('stranger', refreshToken)).status).toBe(200);
    expect(await active('web', refreshToken)).toBe(true);

    expect((await revoke('web', refreshToken, { token_type_hint: 'refresh_token' })).status).toBe(200);
    expect(await active('web', refreshToken)).toBe(false);
    // the grant's JWT access token goes with it
    expect(await active('web', accessToken)).toBe(false);
    expect(await active('orders-api', accessToken)).toBe(false);
  });

  it('a grant-bound JWT access token: revoked by jti, its grant row removed', async () => {
    const { accessToken, grantId } = await userTokens('web');
    const { jti } = decodeJwt(accessToken);
    expect((await revoke('orders-api', accessToken)).status).toBe(200);
    expect(await active('web', accessToken)).toBe(true);
    expect((await revoke('web', accessToken)).status).toBe(200);
    expect(await revokedRow(jti!)).not.toBeNull();
    expect(await t.gatehouse.db.prisma.oidcPayload.count({ where: { model: 'JwtAccessToken', grantId } })).toBe(0);
    expect(await active('web', accessToken)).toBe(false);
  });

  it('no client authentication → 401 invalid_client; no token → invalid_request', async () => {
    const token = await ccToken('caller');
    const res = await t.request.post('/token/revocation').type('form').send({ token });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(await active('caller', token)).toBe(true);
    const none = await t.request.post('/token/revocation').type('form').set('Authorization', basic('caller')).send({});
    expect(none.status).toBe(400);
    expect(none.body.error).toBe('invalid_request');
  });
});
