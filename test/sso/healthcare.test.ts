// Roles for people, modelled on a hospital: nurses read patient records,
// doctors also write prescriptions, billing staff see invoices only — and
// each is refused the rest, by the token Gatehouse issues and by the API
// that checks it (here with gatehouse/verify against Gatehouse's /jwks).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRoleToAccount, createRole, removeRoleFromAccount } from '../../src/resources/roles.ts';
import { createResource } from '../../src/resources/store.ts';
import { createVerifier, requireScopes } from '../../src/verify/index.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, codeFlowTokens, createUser, createWebClient, refresh, type TestClient } from './flow.ts';

const EHR = 'https://ehr.hospital.example';
const ALL = 'records:read prescriptions:write invoices:read';

describe('a hospital: roles decide what each person may do', () => {
  let t: TestApp;
  let server: http.Server;
  let issuer: string;
  let client: TestClient;
  let api: http.Server;
  let apiUrl: string;
  const people = { nurse: { id: '' }, doctor: { id: '' }, billing: { id: '' } };

  beforeAll(async () => {
    // Gatehouse on a real port so that the API can discover its keys.
    server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await createTestApp({ env: { ISSUER: issuer, LOGIN_IP_MAX_FAILURES: '1000' } });
    server.on('request', t.gatehouse.app.callback());

    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: EHR, name: 'Patient records', scopes: ALL.split(' '), requireRoles: true });
    await createRole(db, { name: 'nurse', resource: EHR, scopes: ['records:read'] });
    await createRole(db, { name: 'doctor', resource: EHR, scopes: ['records:read', 'prescriptions:write'] });
    await createRole(db, { name: 'billing', resource: EHR, scopes: ['invoices:read'] });
    for (const role of ['nurse', 'doctor', 'billing'] as const) {
      people[role] = await createUser(t, `${role}@hospital.example`);
      await addRoleToAccount(db, people[role].id, role);
    }
    client = await createWebClient(t, { name: 'Ward app', firstParty: true, grants: ['authorization_code', 'refresh_token'], resources: [EHR], scopes: ALL.split(' ') });

    // The records API: each route demands its scope.
    const verifier = createVerifier({ issuer, audience: EHR });
    const routes: Record<string, string> = { 'GET /records': 'records:read', 'POST /prescriptions': 'prescriptions:write', 'GET /invoices': 'invoices:read' };
    api = http.createServer((req, res) => {
      const scope = routes[`${req.method} ${req.url}`];
      if (!scope) return void res.writeHead(404).end();
      requireScopes(verifier, [scope])(req, res, () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => api?.close(r));
    await new Promise((r) => server?.close(r));
    await t?.close();
  });

  /** Signs the person in, asking for every scope of the API. */
  const tokensFor = (role: keyof typeof people) =>
    codeFlowTokens(new Browser(t), client, { scope: `openid offline_access ${ALL}`, prompt: 'consent', resource: EHR }, { email: `${role}@hospital.example` });

  const call = (token: string, method: string, path: string) => fetch(`${apiUrl}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

  it.each([
    ['nurse', 'records:read', { 'GET /records': 200, 'POST /prescriptions': 403, 'GET /invoices': 403 }],
    ['doctor', 'records:read prescriptions:write', { 'GET /records': 200, 'POST /prescriptions': 200, 'GET /invoices': 403 }],
    ['billing', 'invoices:read', { 'GET /records': 403, 'POST /prescriptions': 403, 'GET /invoices': 200 }],
  ] as const)('%s gets only %s, and the API enforces it', async (role, scope, expected) => {
    const tokens = await tokensFor(role);
    expect(tokens.scope).toContain(scope);
    const token = tokens.access_token as string;
    const [, payload] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { scope: string; roles: string[]; aud: string };
    expect(claims).toMatchObject({ aud: EHR, scope, roles: [role] });
    for (const [route, status] of Object.entries(expected)) {
      const [method, path] = route.split(' ');
      const res = await call(token, method!, path!);
      expect(res.status, `${role} ${route}`).toBe(status);
      if (status === 403) expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    }
  });

  it('a person without a role gets no scope on the API', async () => {
    await createUser(t, 'visitor@hospital.example');
    const tokens = await codeFlowTokens(new Browser(t), client, { scope: `openid ${ALL}`, prompt: 'consent', resource: EHR }, { email: 'visitor@hospital.example' });
    const res = await call(tokens.access_token as string, 'GET', '/records');
    expect([401, 403]).toContain(res.status);
  });

  it('a role change applies at the next refresh: a nurse promoted to doctor, then moved to billing', async () => {
    const db = t.gatehouse.db.prisma;
    const tokens = await tokensFor('nurse');
    expect((await call(tokens.access_token as string, 'POST', '/prescriptions')).status).toBe(403);
    await addRoleToAccount(db, people.nurse.id, 'doctor');
    const promoted = await refresh(t, client, tokens.refresh_token as string);
    expect(promoted.status).toBe(200);
    expect((await call(promoted.body.access_token as string, 'POST', '/prescriptions')).status).toBe(200);
    await removeRoleFromAccount(db, people.nurse.id, 'doctor');
    await removeRoleFromAccount(db, people.nurse.id, 'nurse');
    await addRoleToAccount(db, people.nurse.id, 'billing');
    const moved = await refresh(t, client, promoted.body.refresh_token as string);
    expect(moved.status).toBe(200);
    expect((await call(moved.body.access_token as string, 'GET', '/records')).status).toBe(403);
    expect((await call(moved.body.access_token as string, 'GET', '/invoices')).status).toBe(200);
  });
});
