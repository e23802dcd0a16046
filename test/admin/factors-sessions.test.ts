// Admins see each person's verification state, factors and sessions, and can
// end a session and remove a lost factor — through the admin API (scopes
// gatehouse:users:read / :write, OpenAPI shapes) and the CLI; all audited.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPasskey, userHandleOf } from '../../src/accounts/passkeys.ts';
import { UserFactors, UserSessions, SessionsRevoked } from '../../src/admin/schemas.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';
import { Browser, authorize, codeFlowTokens, createUser, createWebClient, pkce, redirect, type TestClient } from '../sso/flow.ts';
import { adminToken, api, expectProblem, expectShape } from './helpers.ts';

let t: TestApp;
let reader: string;
let writer: string;
let web: TestClient;

async function personWithPasskey(email: string) {
  const a = await createUser(t, email);
  const { hostname, origin } = new URL(t.config.issuer);
  const auth = new SoftAuthenticator(hostname, origin, userHandleOf(a.id));
  const passkey = await insertPasskey(t.gatehouse.db.prisma, {
    accountId: a.id,
    credentialId: auth.credentialId,
    publicKey: auth.cosePublicKey().toString('base64url'),
    counter: 0,
    transports: ['usb'],
    name: 'YubiKey',
    backedUp: false,
    deviceType: 'singleDevice',
  });
  return { a, passkey };
}

beforeAll(async () => {
  t = await createTestApp();
  reader = await adminToken(t, ['gatehouse:users:read']);
  writer = await adminToken(t, ['gatehouse:users:write']);
  web = await createWebClient(t, { firstParty: true, scopes: ['openid'] });
});
afterAll(() => t?.close());

describe('admin API: factors and sessions', () => {
  it('lists factors (no secrets) and removes a lost passkey, audited; scopes enforced', async () => {
    const { a, passkey } = await personWithPasskey('lost@example.com');
    const res = await api(t, reader, 'get', `/users/${a.id}/factors`).expect(200);
    const f = expectShape(UserFactors, res.body);
    expect(f).toMatchObject({ emailVerified: true, recoveryCodesLeft: 0 });
    expect(f.items).toEqual([expect.objectContaining({ id: passkey.id, type: 'passkey', name: 'YubiKey', deviceType: 'singleDevice' })]);
    expect(JSON.stringify(res.body)).not.toMatch(/publicKey|credentialId|secret/i);
    // the reader may not remove; the writer may not read
    expectProblem(await api(t, reader, 'delete', `/users/${a.id}/factors/${passkey.id}`), 403);
    expectProblem(await api(t, writer, 'get', `/users/${a.id}/factors`), 403);
    await api(t, writer, 'delete', `/users/${a.id}/factors/${passkey.id}`).expect(204);
    expect((await api(t, reader, 'get', `/users/${a.id}/factors`).expect(200)).body.items).toEqual([]);
    expectProblem(await api(t, writer, 'delete', `/users/${a.id}/factors/${passkey.id}`), 404);
    expectProblem(await api(t, writer, 'delete', `/users/${a.id}/factors/totp`), 409);
    const events = await t.gatehouse.db.prisma.auditEvent.findMany({ where: { action: 'passkey.remove', targetId: a.id } });
    expect(events).toHaveLength(1);
    expect(events[0]!.actorType).toBe('client');
  });

  it('lists sessions and ends one; the browser is signed out', async () => {
    const a = await createUser(t, 'sess@example.com');
    const b = new Browser(t);
    await codeFlowTokens(b, web, {}, { email: 'sess@example.com' });
    const list = expectShape(UserSessions, (await api(t, reader, 'get', `/users/${a.id}/sessions`).expect(200)).body);
    expect(list.items).toHaveLength(1);
    expect(list.items[0]!.clients).toEqual([web.id]);
    expect(list.items[0]!.lastUsedAt).not.toBeNull();
    const uid = list.items[0]!.uid;
    const ended = expectShape(SessionsRevoked, (await api(t, writer, 'delete', `/users/${a.id}/sessions/${uid}`).expect(200)).body);
    expect(ended.sessions).toBe(1);
    const { challenge } = pkce();
    const silent = redirect(await authorize(b, { client_id: web.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(silent.searchParams.get('error')).toBe('login_required');
    expectProblem(await api(t, writer, 'delete', `/users/${a.id}/sessions/${uid}`), 404);
    expect(await t.gatehouse.db.prisma.auditEvent.count({ where: { action: 'user.session_end', targetId: a.id } })).toBe(1);
  });
});

describe('CLI: users factors | remove-factor | sessions | end-session', () => {
  it('shows and removes factors, shows and ends sessions', async () => {
    const { a, passkey } = await personWithPasskey('cli@example.com');
    let r = await cli(t.database.url, ['users', 'factors', 'cli@example.com']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('email verified');
    expect(r.stdout).toContain(passkey.id);
    expect(r.stdout).toContain('YubiKey');
    r = await cli(t.database.url, ['users', 'remove-factor', 'cli@example.com', 'no-such-factor']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    r = await cli(t.database.url, ['users', 'remove-factor', 'cli@example.com', passkey.id, '--json']);
    expect(r.code).toBe(0);
    expect(r.json<{ removed: { id: string } }>().removed.id).toBe(passkey.id);
    expect(await t.gatehouse.db.prisma.passkey.count({ where: { accountId: a.id } })).toBe(0);

    const b = new Browser(t);
    await codeFlowTokens(b, web, {}, { email: 'cli@example.com' });
    r = await cli(t.database.url, ['users', 'sessions', 'cli@example.com', '--json']);
    expect(r.code).toBe(0);
    const [session] = r.json<{ uid: string }[]>();
    expect(session).toBeDefined();
    r = await cli(t.database.url, ['users', 'end-session', 'cli@example.com', session!.uid]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 session ended');
    r = await cli(t.database.url, ['users', 'sessions', 'cli@example.com']);
    expect(r.stdout).toContain('no live session');
  });
});
