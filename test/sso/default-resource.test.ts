// PRODUCT.md, token rules: "The default resource (a client with exactly one
// --resource) applies to client_credentials; a login flow that names no
// `resource` gets an access token that /me accepts."
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, codeFlowTokens, createUser, createWebClient, token, type TestClient } from './flow.ts';

const API = 'https://notes-api.example.com';

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('the default resource', () => {
  let t: TestApp;
  let web: TestClient;
  beforeAll(async () => {
    t = await createTestApp();
    await createUser(t, 'dora@example.com', { name: 'Dora' });
    await createResource(t.gatehouse.db.prisma, { identifier: API, scopes: ['notes:read'] });
    // a web app with exactly one API, that may also fetch machine tokens for it
    web = await createWebClient(t, {
      firstParty: true,
      grants: ['authorization_code', 'refresh_token', 'client_credentials'],
      resources: [API],
      scopes: ['openid', 'profile', 'email', 'notes:read'],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a login that names no resource gets a token /me accepts', async () => {
    const tokens = await codeFlowTokens(new Browser(t), web, { scope: 'openid profile email' }, { email: 'dora@example.com' });
    const me = await t.request.get('/me').set('Authorization', `Bearer ${String(tokens.access_token)}`);
    expect(me.status, JSON.stringify(me.body)).toBe(200);
    expect(me.body).toMatchObject({ email: 'dora@example.com', name: 'Dora' });
  });

  it('a login that names the resource gets a JWT for that API', async () => {
    const tokens = await codeFlowTokens(new Browser(t), web, { scope: 'openid notes:read', resource: API }, { email: 'dora@example.com' });
    const at = String(tokens.access_token);
    expect(claimsOf(at)).toMatchObject({ aud: API, scope: 'notes:read' });
  });

  it('client_credentials still gets the single resource by default', async () => {
    const res = await token(t, web, { grant_type: 'client_credentials' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(claimsOf(res.body.access_token as string)).toMatchObject({ aud: API, scope: 'notes:read' });
  });
});
