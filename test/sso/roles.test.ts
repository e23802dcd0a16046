// People's access tokens for APIs: the JWT for the requested resource, and
// for an API with requireRoles only the scopes of the person's roles, plus a
// `roles` claim, recomputed at every refresh.
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRoleToAccount, createRole, removeRoleFromAccount } from '../../src/resources/roles.ts';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import {
  Browser,
  authorize,
  codeFlowTokens,
  createUser,
  createWebClient,
  exchangeCode,
  isConsentPage,
  page,
  pkce,
  redirect,
  refresh,
  submitConsent,
  submitLogin,
  type TestClient,
} from './flow.ts';

const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';
const CATALOG = 'https://catalog.example.com';

describe('access tokens for people', () => {
  let t: TestApp;
  let web: TestClient;
  let alice: { id: string };
  let bob: { id: string };
  const verify = async (token: string, audience: string) =>
    (await jwtVerify(token, createLocalJWKSet((await t.request.get('/jwks')).body), { issuer: ISSUER, audience, typ: 'at+jwt' })).payload;

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER, LOGIN_IP_MAX_FAILURES: '1000' } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, name: 'Orders API', scopes: ['orders:read', 'orders:write', 'orders:admin'], requireRoles: true });
    await createResource(db, { identifier: CATALOG, scopes: ['catalog:read', 'catalog:write'] });
    await createRole(db, { name: 'orders-reader', resource: ORDERS, scopes: ['orders:read'] });
    await createRole(db, { name: 'orders-clerk', resource: ORDERS, scopes: ['orders:read', 'orders:write'] });
    alice = await createUser(t, 'alice@example.com');
    bob = await createUser(t, 'bob@example.com');
    await addRoleToAccount(db, alice.id, 'orders-reader');
    web = await createWebClient(t, {
      name: 'Shop',
      resources: [ORDERS, CATALOG],
      scopes: ['orders:read', 'orders:write', 'catalog:read'],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('requireRoles: consent lists only the scopes the roles give; the JWT carries them and a roles claim', async () => {
    const b = new Browser(t);
    const { verifier, challenge } = pkce();
    const login = page(
      await authorize(b, {
        client_id: web.id,
        scope: 'openid orders:read orders:write orders:admin offline_access',
        prompt: 'consent',
        resource: ORDERS,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
    );
    const consent = page(await submitLogin(b, login, 'alice@example.com', 'correct horse battery staple'));
    expect(isConsentPage(consent)).toBe(true);
    expect(consent.html).toContain('Orders API');
    expect(consent.html).toContain('<code>orders:read</code>');
    expect(consent.html).not.toContain('orders:write');
    expect(consent.html).not.toContain('orders:admin');
    const code = redirect(await submitConsent(b, consent, 'approve')).searchParams.get('code')!;
    const res = await exchangeCode(t, web, code, verifier).expect(200);
    const at = await verify(res.body.access_token, ORDERS);
    expect(at).toMatchObject({ aud: ORDERS, sub: alice.id, client_id: web.id, scope: 'orders:read', roles: ['orders-reader'] });
    expect(res.body.scope).toContain('orders:read');
    expect(res.body.scope).not.toContain('orders:write');

    // A new role applies at the next sign-in with consent; a role taken away applies at the next refresh.
    await addRoleToAccount(t.gatehouse.db.prisma, alice.id, 'orders-clerk');
    const again = await codeFlowTokens(b, web, { scope: 'openid orders:read orders:write offline_access', prompt: 'consent', resource: ORDERS });
    expect(await verify(again.access_token as string, ORDERS)).toMatchObject({ scope: 'orders:read orders:write', roles: ['orders-clerk', 'orders-reader'] });

    await removeRoleFromAccount(t.gatehouse.db.prisma, alice.id, 'orders-clerk');
    const refreshed = await refresh(t, web, again.refresh_token as string).expect(200);
    expect(await verify(refreshed.body.access_token, ORDERS)).toMatchObject({ scope: 'orders:read', roles: ['orders-reader'] });
    expect(refreshed.body.scope).not.toContain('orders:write');

    await removeRoleFromAccount(t.gatehouse.db.prisma, alice.id, 'orders-reader');
    const none = await refresh(t, web, refreshed.body.refresh_token).expect(200);
    const payload = await verify(none.body.access_token, ORDERS);
    expect(payload.scope).toBeUndefined();
    expect(payload.roles).toEqual([]);
    await addRoleToAccount(t.gatehouse.db.prisma, alice.id, 'orders-reader');
  });

  it('requireRoles: a person with no role on the API gets none of its scopes', async () => {
    const b = new Browser(t);
    const { verifier, challenge } = pkce();
    const login = page(await authorize(b, { client_id: web.id, scope: 'openid orders:read', resource: ORDERS, code_challenge: challenge, code_challenge_method: 'S256' }));
    const consent = page(await submitLogin(b, login, 'bob@example.com', 'correct horse battery staple'));
    expect(consent.html).not.toContain('orders:read');
    const code = redirect(await submitConsent(b, consent, 'approve')).searchParams.get('code')!;
    const res = await exchangeCode(t, web, code, verifier).expect(200);
    const at = await verify(res.body.access_token, ORDERS);
    expect(at.sub).toBe(bob.id);
    expect(at.scope).toBeUndefined();
    expect(at.roles).toEqual([]);
  });

  it('an API without requireRoles: the requested scopes within the client allowance, no roles claim', async () => {
    const b = new Browser(t);
    const body = await codeFlowTokens(b, web, { scope: 'openid catalog:read catalog:write', resource: CATALOG }, { email: 'alice@example.com' });
    const at = await verify(body.access_token as string, CATALOG);
    expect(at.scope).toBe('catalog:read'); // catalog:write is not in the client's allowance
    expect(at.roles).toBeUndefined();
  });

  it('a resource the client may not use → invalid_target at /auth', async () => {
    const { challenge } = pkce();
    const r = redirect(await authorize(new Browser(t), { client_id: web.id, resource: 'https://elsewhere.example.com', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(r.searchParams.get('error')).toBe('invalid_target');
  });
});
