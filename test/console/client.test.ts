// The admin console's built-in client (src/clients/console.ts): public,
// code + PKCE S256 only, redirect <issuer>/console/callback, the admin API's
// scopes cut to the person's roles. It gives nobody anything by itself.
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CLIENT_ID, CONSOLE_SCOPES, ensureConsoleClient } from '../../src/clients/console.ts';
import { getClient, updateClient } from '../../src/clients/store.ts';
import { addRoleToAccount, createRole } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, createUser, PASSWORD, pkce, signIn, token } from '../sso/flow.ts';

const ISSUER = 'http://gatehouse.test';
const CALLBACK = `${ISSUER}/console/callback`;
const console_ = { id: CONSOLE_CLIENT_ID };

/** Stops at the console's callback (on the issuer's origin, but the app's page: the redirect is the answer). */
class ConsoleBrowser extends Browser {
  override local(url: string): string | undefined {
    const path = super.local(url);
    return path?.startsWith('/console/callback') ? undefined : path;
  }
}

describe('the console client', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function consoleToken(email: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const { verifier, challenge } = pkce();
    const browser = new ConsoleBrowser(t);
    const r = await signIn(
      browser,
      { client_id: CONSOLE_CLIENT_ID, redirect_uri: CALLBACK, scope: CONSOLE_SCOPES.join(' '), resource: ADMIN_RESOURCE, code_challenge: challenge, code_challenge_method: 'S256', state: 's' },
      { email, password: PASSWORD },
    );
    expect(r.sawConsent, 'a first-party client: no consent screen').toBe(false);
    expect(r.code).toBeTruthy();
    const res = await token(t, console_, { grant_type: 'authorization_code', code: r.code!, code_verifier: verifier, redirect_uri: CALLBACK, resource: ADMIN_RESOURCE });
    return { status: res.status, body: res.body as Record<string, unknown> };
  }

  it('exists after the first start: public, no secret, code only, one redirect under the issuer', async () => {
    const c = await getClient(t.gatehouse.db.prisma, CONSOLE_CLIENT_ID);
    expect(c).toMatchObject({ public: true, authMethod: 'none', grants: ['authorization_code'], redirectUris: [CALLBACK], resources: [ADMIN_RESOURCE], firstParty: true });
    expect(c.scopes).toEqual(expect.arrayContaining(['gatehouse:admin', 'gatehouse:clients:read', 'openid']));
  });

  it('is brought back to its definition at start, keeping what an operator decides', async () => {
    const db = t.gatehouse.db.prisma;
    await updateClient(db, CONSOLE_CLIENT_ID, { redirectUris: ['https://evil.example/cb'], requireMfa: true });
    expect(await ensureConsoleClient(db, ISSUER)).toBe(true);
    const c = await getClient(db, CONSOLE_CLIENT_ID);
    expect(c.redirectUris).toEqual([CALLBACK]);
    expect(c.requireMfa).toBe(true);
    expect(await ensureConsoleClient(db, ISSUER), 'nothing to do the second time').toBe(false);
    await updateClient(db, CONSOLE_CLIENT_ID, { requireMfa: false });
  });

  it('refuses a code request without PKCE', async () => {
    const browser = new ConsoleBrowser(t);
    const res = await browser.get(`/auth?client_id=${CONSOLE_CLIENT_ID}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(CALLBACK)}`);
    expect(res.kind).toBe('redirect');
    if (res.kind === 'redirect') expect(res.location.searchParams.get('error')).toBe('invalid_request');
  });

  it("a gatehouse-admin holder gets an admin token; someone without a role gets no admin scope and a 403", async () => {
    const db = t.gatehouse.db.prisma;
    const admin = await createUser(t, 'root@example.com');
    await addRoleToAccount(db, admin.id, 'gatehouse-admin');
    await createUser(t, 'nobody@example.com');
    const reader = await createUser(t, 'reader@example.com');
    await createRole(db, { name: 'clients-reader', resource: ADMIN_RESOURCE, scopes: ['gatehouse:clients:read'] });
    await addRoleToAccount(db, reader.id, 'clients-reader');

    const a = await consoleToken('root@example.com');
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    const claims = decodeJwt(a.body.access_token as string);
    expect(claims.aud).toBe(ADMIN_RESOURCE);
    expect(String(claims.scope).split(' ')).toContain('gatehouse:admin');
    await t.request.get('/admin/v1/clients').set('Authorization', `Bearer ${a.body.access_token as string}`).expect(200);

    const r = await consoleToken('reader@example.com');
    expect(String(decodeJwt(r.body.access_token as string).scope).split(' ').filter((s) => s.startsWith('gatehouse:'))).toEqual(['gatehouse:clients:read']);
    await t.request.get('/admin/v1/clients').set('Authorization', `Bearer ${r.body.access_token as string}`).expect(200);
    await t.request.get('/admin/v1/users').set('Authorization', `Bearer ${r.body.access_token as string}`).expect(403);

    const n = await consoleToken('nobody@example.com');
    expect(n.status).toBe(200);
    expect(String(decodeJwt(n.body.access_token as string).scope ?? '')).not.toMatch(/gatehouse:/);
    await t.request.get('/admin/v1/clients').set('Authorization', `Bearer ${n.body.access_token as string}`).expect(403);
  });
});
