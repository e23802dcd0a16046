// The seam to oidc-provider (src/oidc/seam.ts): every replaced method exists
// in this oidc-provider version and is replaced, and one contract test per
// replaced method says what Gatehouse relies on it doing. An oidc-provider
// upgrade that changes one of them fails here (or at start-up), not silently.
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import Provider, { errors } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInternals } from '../../src/oidc/internals.ts';
import { methodOf, patchesOf, REPLACED_METHODS } from '../../src/oidc/seam.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createApi, createRoleFor, createServiceClient, createUser, createWebClient, type TestClient } from '../security/fixtures.ts';

const ORDERS = 'https://orders.example.com';
const RECORDS = 'https://records.example.com';

// oidc-provider's models, as the contract tests use them
/* eslint-disable @typescript-eslint/no-explicit-any */
type Model = any;

describe('the seam to oidc-provider', () => {
  let t: TestApp;
  let p: Provider;
  let web: TestClient;
  let svc: TestClient;
  let person: string;
  const m = (name: string): Model => (p as unknown as Record<string, Model>)[name];

  beforeAll(async () => {
    t = await createTestApp();
    p = t.gatehouse.provider();
    await createApi(t, { identifier: ORDERS, scopes: ['orders:read'] });
    await createApi(t, { identifier: RECORDS, scopes: ['records:read', 'records:write'], requireRoles: true });
    web = await createWebClient(t, { name: 'web', resources: [ORDERS, RECORDS], scopes: ['openid', 'orders:read', 'records:read', 'records:write'], refreshTokenTtl: 600 });
    svc = await createServiceClient(t, { name: 'svc', resources: [ORDERS], scopes: ['orders:read'] });
    person = (await createUser(t, 'seam@example.com')).id;
    await createRoleFor(t, { name: 'reader', resource: RECORDS, scopes: ['records:read'] }, [person]);
  });
  afterAll(async () => {
    await t?.close();
  });

  const client = async (c: TestClient = web) => (await p.Client.find(c.id))!;
  const grant = async () => {
    const g = new (m('Grant'))({ accountId: person, clientId: web.id });
    g.addOIDCScope('openid');
    g.addResourceScope(RECORDS, 'records:read records:write');
    return { g, grantId: (await g.save()) as string };
  };
  const resourceServer = (identifier: string, scope: string) =>
    new (m('ResourceServer'))(identifier, { audience: identifier, scope, accessTokenTTL: 60, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } });

  it('every replaced method is a method of this oidc-provider version, and is replaced on Gatehouse’s providers', () => {
    checkInternals();
    const bare = new Provider('http://localhost:3000', {});
    for (const method of REPLACED_METHODS) expect(typeof methodOf(bare, method), method).toBe('function');
    const installed = new Set(patchesOf(p).map((x) => x.method));
    expect([...REPLACED_METHODS].filter((method) => !installed.has(method))).toEqual([]);
    for (const patch of patchesOf(p)) expect(patch.why.length, patch.method).toBeGreaterThan(10);
  });

  describe('consume(): a second use is refused like oidc-provider’s own second use', () => {
    const cases: [string, () => Promise<Model>, new (...a: never[]) => Error, RegExp][] = [
      ['AuthorizationCode#consume', async () => new (m('AuthorizationCode'))({ client: await client(), accountId: person, grantId: randomUUID(), redirectUri: 'https://app.example.com/callback', scope: 'openid' }), errors.InvalidGrant, /authorization code already consumed/],
      ['DeviceCode#consume', async () => new (m('DeviceCode'))({ client: await client(), userCode: `U${randomUUID().slice(0, 8)}`, params: {} }), errors.InvalidGrant, /device code already consumed/],
      ['BackchannelAuthenticationRequest#consume', async () => new (m('BackchannelAuthenticationRequest'))({ client: await client(), accountId: person, params: {} }), errors.InvalidGrant, /backchannel authentication request already consumed/],
      ['PushedAuthorizationRequest#consume', async () => new (m('PushedAuthorizationRequest'))({ request: 'x', clientId: web.id }), errors.InvalidRequestUri, /already used/],
      ['RefreshToken#consume', async () => new (m('RefreshToken'))({ client: await client(), accountId: person, grantId: randomUUID(), scope: 'openid' }), errors.InvalidGrant, /refresh token already used/],
    ];
    for (const [method, make, errorClass, detail] of cases) {
      it(method, async () => {
        const value = await make();
        await value.save();
        await value.consume();
        const err = await value.consume().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(errorClass);
        const e = err as { error_detail?: string; error_description?: string };
        expect(`${e.error_detail ?? ''} ${e.error_description ?? ''}`).toMatch(detail);
      });
    }
    it('RefreshToken#consume: the loser destroys the token', async () => {
      const rt = new (m('RefreshToken'))({ client: await client(), accountId: person, grantId: randomUUID(), scope: 'openid' });
      const value = await rt.save();
      await rt.consume();
      await rt.consume().catch(() => undefined);
      expect(await m('RefreshToken').find(value)).toBeUndefined();
    });
  });

  it('Client.find: one instance per registry record; a disabled client is not found', async () => {
    expect(await p.Client.find(svc.id)).toBe(await p.Client.find(svc.id));
    expect(await p.Client.find('no-such-client')).toBeUndefined();
  });

  it('Client#compareClientSecret: the secret matches its digest; the digest itself does not', async () => {
    const c = (await p.Client.find(svc.id)) as unknown as { compareClientSecret(s: string): Promise<boolean>; clientSecret: string };
    expect(await c.compareClientSecret(svc.secret!)).toBe(true);
    expect(await c.compareClientSecret(`${svc.secret!}x`)).toBe(false);
    expect(await c.compareClientSecret(c.clientSecret)).toBe(false);
  });

  it('AccessToken#generateTokenId: grant-bound JWT access tokens get a marked jti, others not', async () => {
    const { grantId } = await grant();
    const bound = new (m('AccessToken'))({ client: await client(), accountId: person, grantId, gty: 'authorization_code', scope: 'orders:read', resourceServer: resourceServer(ORDERS, 'orders:read') });
    expect(decodeJwt(await bound.save()).jti).toMatch(/^g\./);
    const machine = new (m('ClientCredentials'))({ client: await client(svc), scope: 'orders:read', resourceServer: resourceServer(ORDERS, 'orders:read') });
    expect(decodeJwt(await machine.save()).jti).not.toMatch(/^g\./);
  });

  it('AccessToken#save: a person’s scopes on a requireRoles API are cut to their roles, and the token gets a row tying it to its grant', async () => {
    const { grantId } = await grant();
    const at = new (m('AccessToken'))({ client: await client(), accountId: person, grantId, gty: 'authorization_code', scope: 'records:read records:write', resourceServer: resourceServer(RECORDS, 'records:read records:write') });
    const claims = decodeJwt(await at.save());
    expect(claims.scope).toBe('records:read');
    expect(claims.roles).toEqual(['reader']);
    expect(await t.gatehouse.db.prisma.oidcPayload.findUnique({ where: { model_id: { model: 'JwtAccessToken', id: claims.jti! } } })).toMatchObject({ grantId });
  });

  it('RefreshToken#save: the lifetime is the client’s own (idle, within the absolute lifetime)', async () => {
    const rt = new (m('RefreshToken'))({ client: await client(), accountId: person, grantId: randomUUID(), scope: 'openid' });
    await rt.save();
    expect(rt.expiresIn).toBeLessThanOrEqual(600);
    expect(rt.expiresIn).toBeGreaterThan(590);
  });

  it('Grant#save: a grant outlives the refresh tokens its client may hold', async () => {
    const { g } = await grant();
    expect(g.expiresIn).toBeGreaterThanOrEqual(600);
  });

  it('AccessToken.find / ClientCredentials.find: JWT access tokens are found by verifying them; a forged one is not', async () => {
    const { grantId } = await grant();
    const at = new (m('AccessToken'))({ client: await client(), accountId: person, grantId, gty: 'authorization_code', scope: 'orders:read', resourceServer: resourceServer(ORDERS, 'orders:read') });
    const bound = await at.save();
    expect((await m('AccessToken').find(bound))?.grantId).toBe(grantId);
    expect(await m('ClientCredentials').find(bound)).toBeUndefined();
    const cc = await new (m('ClientCredentials'))({ client: await client(svc), scope: 'orders:read', resourceServer: resourceServer(ORDERS, 'orders:read') }).save();
    expect((await m('ClientCredentials').find(cc))?.clientId).toBe(svc.id);
    const [h, b] = cc.split('.');
    expect(await m('ClientCredentials').find(`${h}.${b}.${'A'.repeat(86)}`)).toBeUndefined();
  });

  it('RefreshToken.find: a JWT is never a refresh token; a used one stays used outside a refresh request', async () => {
    const cc = await new (m('ClientCredentials'))({ client: await client(svc), scope: 'orders:read', resourceServer: resourceServer(ORDERS, 'orders:read') }).save();
    expect(await m('RefreshToken').find(cc)).toBeUndefined();
    const rt = new (m('RefreshToken'))({ client: await client(), accountId: person, grantId: randomUUID(), scope: 'openid' });
    const value = await rt.save();
    await rt.consume();
    expect((await m('RefreshToken').find(value))?.consumed).toEqual(expect.any(Number));
  });
});
