// Token exchange obeys the front door's rules: on an API created with
// --require-roles, a person's exchanged token carries only what their roles
// grant (with a `roles` claim), however wide the exchanging service's own
// allowance; machines' tokens are bounded by the service's allowance alone.
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, codeFlowTokens, token, type TestClient } from '../sso/flow.ts';
import { createApi, createRoleFor, createServiceClient, createUser, createWebClient } from './fixtures.ts';

const PORTAL = 'https://portal.example.com';
const RECORDS = 'https://records.example.com';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('token exchange and roles', () => {
  let t: TestApp;
  let portalSvc: TestClient;
  let web: TestClient;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    await createApi(t, { identifier: RECORDS, scopes: ['records:read', 'records:write'], requireRoles: true });
    portalSvc = await createServiceClient(t, {
      name: 'portal-service',
      grants: ['client_credentials', EXCHANGE],
      resources: [RECORDS],
      scopes: ['records:read', 'records:write'],
    });
    await createApi(t, { identifier: PORTAL, scopes: ['portal:use'], servedBy: [portalSvc.id] });
    web = await createWebClient(t, { name: 'portal web', firstParty: true, resources: [PORTAL], scopes: ['openid', 'portal:use'] });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function personToken(email: string, roles: string[]): Promise<string> {
    const person = await createUser(t, email);
    for (const role of roles) await createRoleFor(t, { name: `${role}-${person.id.slice(0, 8)}`, resource: RECORDS, scopes: role === 'nurse' ? ['records:read'] : ['records:read', 'records:write'] }, [person.id]);
    const tokens = await codeFlowTokens(new Browser(t), web, { scope: 'openid portal:use', resource: PORTAL }, { email });
    return tokens.access_token as string;
  }

  const exchange = (subject: string, scope?: string) =>
    token(t, portalSvc, { grant_type: EXCHANGE, subject_token: subject, subject_token_type: ACCESS_TOKEN, resource: RECORDS, ...(scope ? { scope } : {}) });

  it('a nurse gets records:read only, with the roles claim; asking for records:write is refused', async () => {
    const subject = await personToken('nurse@example.com', ['nurse']);
    const res = await exchange(subject);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.scope).toBe('records:read');
    const claims = decodeJwt(res.body.access_token as string);
    expect(claims.roles).toEqual([expect.stringMatching(/^nurse-/)]);
    expect(claims.act).toEqual({ sub: portalSvc.id });
    const wider = await exchange(subject, 'records:write');
    expect(wider.status).toBe(400);
    expect(wider.body).toMatchObject({ error: 'invalid_scope', error_description: expect.stringMatching(/roles/) });
  });

  it('a person with no role on the API gets nothing (invalid_scope), not the service’s allowance', async () => {
    const subject = await personToken('visitor@example.com', []);
    const res = await exchange(subject);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_scope');
  });

  it('a doctor gets both scopes', async () => {
    const subject = await personToken('doctor@example.com', ['doctor']);
    const res = await exchange(subject, 'records:read records:write');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.scope).toBe('records:read records:write');
  });

  it('a machine subject (the service’s own token) is bounded by the service’s allowance only', async () => {
    const own = await token(t, portalSvc, { grant_type: 'client_credentials', resource: RECORDS });
    expect(own.status).toBe(200);
    const res = await exchange(own.body.access_token as string);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.scope).toBe('records:read records:write');
    expect(decodeJwt(res.body.access_token as string).roles).toBeUndefined();
  });
});
