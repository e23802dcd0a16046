// Revocation reaches every door, within one second, on every instance.
//
// A person signs in to a web app on instance A and gets: an access token for
// the orders API, one the orders service exchanged for the payments API (on
// the person's behalf), a refresh token, a userinfo token, and a token for
// the admin API (through a role on it). Then their access ends one of the
// ways PRODUCT.md lists, and on instance B every door must be shut:
// introspection (active: false), token exchange (invalid_grant), refresh
// (invalid_grant), userinfo (401) and the admin API (401).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { Browser, basic, codeFlowTokens, formAction, page, refresh, token, type TestClient } from '../sso/flow.ts';
import { createApi, createRoleFor, createServiceClient, createUser, createWebClient, disableAccountOnly, twoApps } from './fixtures.ts';

const ORDERS = 'https://orders.example.com';
const PAYMENTS = 'https://payments.example.com';
const ADMIN = 'urn:gatehouse:admin';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

interface Held {
  email: string;
  accountId: string;
  web: TestClient;
  /** JWT for the orders API (grant-bound) */
  orders: string;
  /** the orders service's exchange of `orders` for the payments API */
  payments: string;
  /** refresh token (absent for a session-bound sign-in) */
  refreshToken?: string;
  /** access token for /me */
  userinfo: string;
  /** JWT for the admin API */
  admin: string;
}

type Door = 'introspection' | 'exchange' | 'exchanged-introspection' | 'refresh-introspection' | 'refresh' | 'userinfo' | 'admin';

describe('revocation reaches every door', () => {
  let apps: Awaited<ReturnType<typeof twoApps>>;
  let ordersSvc: TestClient;
  let n = 0;
  const a = (): TestApp => apps.a;
  const b = (): TestApp => apps.b;

  beforeAll(async () => {
    apps = await twoApps({ LOGIN_IP_MAX_FAILURES: '1000' });
    await createApi(a(), { identifier: PAYMENTS, scopes: ['payments:charge'] });
    ordersSvc = await createServiceClient(a(), {
      name: 'orders-service',
      grants: ['client_credentials', EXCHANGE],
      resources: [PAYMENTS],
      scopes: ['payments:charge'],
    });
    await createApi(a(), { identifier: ORDERS, scopes: ['orders:read'], servedBy: [ordersSvc.id] });
  });
  afterAll(async () => {
    await apps?.close();
  });

  async function webClient(): Promise<TestClient> {
    return createWebClient(a(), {
      name: `Web ${++n}`,
      firstParty: true,
      resources: [ORDERS, ADMIN],
      scopes: ['openid', 'email', 'offline_access', 'orders:read', 'gatehouse:clients:read'],
    });
  }

  /** Signs a new person in on instance A and collects every kind of token. */
  async function signIn(opts: { offline?: boolean; web?: TestClient } = {}): Promise<Held & { browser: Browser }> {
    const email = `person${++n}@example.com`;
    const account = await createUser(a(), email);
    await createRoleFor(a(), { name: `clients-reader-${n}`, resource: ADMIN, scopes: ['gatehouse:clients:read'] }, [account.id]);
    const web = opts.web ?? (await webClient());
    const browser = new Browser(a());
    const offline = opts.offline !== false;
    const scope = offline ? 'openid email offline_access' : 'openid email';
    const extra = offline ? { prompt: 'consent' } : {};
    const ordersTokens = await codeFlowTokens(browser, web, { scope: `${scope} orders:read`, resource: ORDERS, ...extra }, { email });
    const userinfoTokens = await codeFlowTokens(browser, web, { scope, ...extra });
    const adminTokens = await codeFlowTokens(browser, web, { scope: `${scope} gatehouse:clients:read`, resource: ADMIN, ...extra });
    const exchanged = await token(a(), ordersSvc, {
      grant_type: EXCHANGE,
      subject_token: ordersTokens.access_token as string,
      subject_token_type: ACCESS_TOKEN,
      resource: PAYMENTS,
    });
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
    let refreshToken: string | undefined;
    if (offline) {
      // a rotated refresh token: the chain is live and in use
      const r = await refresh(a(), web, ordersTokens.refresh_token as string);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      refreshToken = r.body.refresh_token as string;
    }
    return {
      browser,
      email,
      accountId: account.id,
      web,
      orders: ordersTokens.access_token as string,
      payments: exchanged.body.access_token as string,
      userinfo: userinfoTokens.access_token as string,
      admin: adminTokens.access_token as string,
      ...(refreshToken ? { refreshToken } : {}),
    };
  }

  const introspect = async (t: TestApp, client: TestClient, value: string) => {
    const res = await t.request.post('/token/introspection').type('form').set('Authorization', basic(client.id, client.secret!)).send({ token: value });
    expect(res.status).toBe(200);
    return res.body.active === true;
  };

  /** Which doors still let the held tokens through, on instance `t` (refresh is tried only when `tryRefresh`). */
  async function openDoors(t: TestApp, h: Held, tryRefresh: boolean): Promise<Door[]> {
    const open: Door[] = [];
    if (await introspect(t, ordersSvc, h.orders)) open.push('introspection');
    if (await introspect(t, ordersSvc, h.payments)) open.push('exchanged-introspection');
    if (h.refreshToken && h.web.secret && (await introspect(t, h.web, h.refreshToken).catch(() => false))) open.push('refresh-introspection');
    const ex = await token(t, ordersSvc, { grant_type: EXCHANGE, subject_token: h.orders, subject_token_type: ACCESS_TOKEN, resource: PAYMENTS });
    if (ex.status === 200) open.push('exchange');
    else expect(ex.body.error).toBe('invalid_grant');
    if ((await t.request.get('/me').set('Authorization', `Bearer ${h.userinfo}`)).status === 200) open.push('userinfo');
    const adm = await t.request.get('/admin/v1/clients').set('Authorization', `Bearer ${h.admin}`);
    if (adm.status === 200) open.push('admin');
    else expect(adm.status).toBe(401);
    if (tryRefresh && h.refreshToken) {
      const r = await refresh(t, h.web, h.refreshToken);
      if (r.status === 200) open.push('refresh');
      // a disabled or deleted client cannot even authenticate
      else expect(['invalid_grant', 'invalid_client']).toContain(r.body.error);
    }
    return open.sort();
  }

  /** Every door of instance B is shut within one second. */
  async function expectAllShut(h: Held): Promise<void> {
    const deadline = Date.now() + 1_000;
    let open = await openDoors(b(), h, false);
    while (open.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      open = await openDoors(b(), h, false);
    }
    expect(open, 'doors still open on instance B after one second').toEqual([]);
    // refresh last: a refresh that succeeded would rotate the token
    expect(await openDoors(a(), h, true)).toEqual([]);
  }

  it('every door is open before (the test can fail)', async () => {
    const h = await signIn();
    expect(await openDoors(b(), h, false)).toEqual(['admin', 'exchange', 'exchanged-introspection', 'introspection', 'refresh-introspection', 'userinfo']);
  });

  it('users revoke-sessions', async () => {
    const h = await signIn();
    const r = await cli(apps.database.url, ['users', 'revoke-sessions', h.email]);
    expect(r.code, r.stderr).toBe(0);
    await expectAllShut(h);
  });

  it('users disable', async () => {
    const h = await signIn();
    const r = await cli(apps.database.url, ['users', 'disable', h.email]);
    expect(r.code, r.stderr).toBe(0);
    await expectAllShut(h);
    // and enabling the person again does not bring the old grants back
    expect((await cli(apps.database.url, ['users', 'enable', h.email])).code).toBe(0);
    await expectAllShut(h);
  });

  it('a person disabled without their sessions being ended is refused at every door anyway', async () => {
    const h = await signIn();
    await disableAccountOnly(a(), h.accountId);
    await expectAllShut(h);
  });

  it('users delete', async () => {
    const h = await signIn();
    const r = await cli(apps.database.url, ['users', 'delete', h.email]);
    expect(r.code, r.stderr).toBe(0);
    await expectAllShut(h);
  });

  it('client disable', async () => {
    const h = await signIn();
    const r = await cli(apps.database.url, ['clients', 'update', h.web.id, '--disable']);
    expect(r.code, r.stderr).toBe(0);
    await expectAllShut(h);
  });

  it('client delete; a client registered anew under its id starts with nothing', async () => {
    const h = await signIn();
    const r = await cli(apps.database.url, ['clients', 'delete', h.web.id]);
    expect(r.code, r.stderr).toBe(0);
    await expectAllShut(h);
    const again = await createWebClient(a(), {
      id: h.web.id,
      name: 'Same id',
      firstParty: true,
      resources: [ORDERS, ADMIN],
      scopes: ['openid', 'email', 'offline_access', 'orders:read', 'gatehouse:clients:read'],
    });
    await expectAllShut({ ...h, web: again });
  });

  it('refresh-token reuse', async () => {
    const h = await signIn();
    const next = await refresh(a(), h.web, h.refreshToken!);
    expect(next.status).toBe(200);
    const reuse = await refresh(b(), h.web, h.refreshToken!);
    expect(reuse.body.error).toBe('invalid_grant');
    await expectAllShut({ ...h, refreshToken: next.body.refresh_token as string });
  });

  it('logout of a session-bound grant (RP-initiated logout)', async () => {
    const h = await signIn({ offline: false });
    const confirm = page(await h.browser.get('/session/end'));
    const action = formAction(confirm.html, '/session/end/confirm');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
    const done = page(await h.browser.post(action, { xsrf, logout: 'yes' }));
    expect(done.url).toMatch(/\/session\/end\/success/);
    await expectAllShut(h);
  });
});
