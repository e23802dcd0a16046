// The retail example, end to end on 127.0.0.1: a real Gatehouse on a fresh
// test database, examples/retail/gatehouse.yaml applied through `gatehouse
// apply`, the four services, customers signing in through the real login
// page. Every policy is proven on the allowed side and on the refused side.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../src/verify/index.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { testEnv } from '../../test/helpers/env.ts';
import { Browser, codeFlowTokens, completeSignIn } from '../shared/browser.ts';
import { callApi, clientCredentials, eventually, exchange, introspect, peek, tokenRequest } from '../shared/http.ts';
import { startExample, type RunningExample } from '../shared/runner.ts';
import type { LogEntry } from '../shared/service.ts';
import { INVENTORY_API, ORDERS_API, PAYMENTS_API } from './apis.ts';
import type { Order } from './services/orders.ts';
import { retail } from './system.ts';

describe('retail example', () => {
  let db: TestDatabase;
  let ex: RunningExample;
  const logs: LogEntry[] = [];
  let alice: { id: string; email: string; password: string };
  let bob: { id: string; email: string; password: string };
  let aliceToken: string;
  let bobToken: string;

  const client = (id: string) => ({ id, secret: ex.secrets[id]! });
  const customerToken = async (u: { email: string; password: string }) =>
    (
      await codeFlowTokens({
        issuer: ex.issuer,
        client: client('storefront'),
        redirectUri: `${ex.urls.storefront}/callback`,
        resource: ORDERS_API,
        scope: 'openid orders:read orders:write',
        email: u.email,
        password: u.password,
      })
    ).access_token;
  const machineToken = async (id: string, resource: string, scope: string) => {
    const res = await clientCredentials(ex.issuer, client(id), resource, scope);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.access_token!;
  };
  const placeOrder = async (token: string, sku = 'tea-earl-grey', quantity = 1) => {
    const res = await callApi(`${ex.urls.orders}/orders`, { token, body: { items: [{ sku, quantity }] } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as Order;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url);
    ex = await startExample(retail, { databaseUrl: db.url, baseEnv: env, dataDir: env.DATA_DIR!, log: (e) => logs.push(e) });
    alice = ex.users['alice@retail.example']!;
    bob = ex.users['bob@retail.example']!;
    aliceToken = await customerToken(alice);
    bobToken = await customerToken(bob);
  });
  afterAll(async () => {
    await ex?.close();
    await db?.drop();
  });

  it('apply registered exactly the file: a second apply plans nothing', async () => {
    const again = await ex.cli(['apply', '-f', 'examples/retail/gatehouse.yaml', '--dry-run', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const plan = JSON.parse(again.stdout) as { create: unknown[]; update: { id: string; changes: string[] }[]; delete: unknown[] };
    expect(plan.create).toEqual([]);
    expect(plan.delete).toEqual([]);
    // only the storefront's redirect URIs differ: the test runs it on a free port
    expect(plan.update).toEqual([{ kind: 'client', id: 'storefront', changes: ['redirectUris', 'postLogoutRedirectUris'] }]);
  });

  describe('a customer sees only their own orders (enforced by the orders API on `sub`)', () => {
    it('the storefront signs alice in (code flow + PKCE on the real login page) and shows her orders', async () => {
      const browser = new Browser();
      const landing = await completeSignIn(browser, await browser.go('GET', `${ex.urls.storefront}/login`), alice.email, alice.password);
      expect(landing.kind).toBe('page');
      if (landing.kind !== 'page') return;
      expect(landing.page.url).toBe(`${ex.urls.storefront}/`);
      expect(landing.page.html).toContain('Signed in as <strong>Alice Archer</strong>');

      const bought = await browser.go('POST', `${ex.urls.storefront}/orders`, { sku: 'mug-stoneware', quantity: '2' });
      expect(bought.kind === 'page' && bought.page.html).toMatch(/Thank you! Order ord_[0-9a-f]+ is paid/);
      const mine = await browser.go('GET', `${ex.urls.storefront}/my/orders`);
      const orders = mine.kind === 'page' ? (JSON.parse(mine.page.html) as { orders: Order[] }).orders : [];
      expect(orders.length).toBeGreaterThanOrEqual(1);
      expect(orders.every((o) => o.customer === alice.id)).toBe(true);
      expect(orders.find((o) => o.items[0]?.sku === 'mug-stoneware')).toMatchObject({ status: 'paid', total: 2800 });
    });

    it("alice's token lists and reads her orders; bob's token neither lists nor reads them", async () => {
      const order = await placeOrder(aliceToken);
      expect(order.customer).toBe(alice.id);
      const bobOrder = await placeOrder(bobToken, 'kettle-steel');

      const aliceList = await callApi(`${ex.urls.orders}/orders`, { token: aliceToken });
      expect(aliceList.status).toBe(200);
      const aliceOrders = (aliceList.body as { orders: Order[] }).orders;
      expect(aliceOrders.map((o) => o.id)).toContain(order.id);
      expect(aliceOrders.every((o) => o.customer === alice.id)).toBe(true);
      expect((await callApi(`${ex.urls.orders}/orders/${order.id}`, { token: aliceToken })).status).toBe(200);

      const bobList = await callApi(`${ex.urls.orders}/orders`, { token: bobToken });
      expect(bobList.status).toBe(200);
      expect((bobList.body as { orders: Order[] }).orders.map((o) => o.id)).toEqual([bobOrder.id]);
      const stolen = await callApi(`${ex.urls.orders}/orders/${order.id}`, { token: bobToken });
      expect(stolen).toMatchObject({ status: 404, body: { error: 'not_found' } });
      expect((await callApi(`${ex.urls.orders}/orders/${bobOrder.id}`, { token: aliceToken })).status).toBe(404);
    });

    it('no token, or a token without the scope: 401 / 403 with a WWW-Authenticate challenge', async () => {
      const none = await callApi(`${ex.urls.orders}/orders`);
      expect(none.status).toBe(401);
      expect(none.challenge).toBe('Bearer realm="orders"');
      const readOnly = (
        await codeFlowTokens({
          issuer: ex.issuer,
          client: client('storefront'),
          redirectUri: `${ex.urls.storefront}/callback`,
          resource: ORDERS_API,
          scope: 'openid orders:read',
          email: alice.email,
          password: alice.password,
        })
      ).access_token;
      const res = await callApi(`${ex.urls.orders}/orders`, { token: readOnly, body: { items: [{ sku: 'tea-earl-grey', quantity: 1 }] } });
      expect(res.status).toBe(403);
      expect(res.challenge).toBe(
        'Bearer realm="orders", error="insufficient_scope", error_description="the token lacks the scope orders:write", scope="orders:write"',
      );
    });
  });

  describe('only the payments API reads payment data, only with payments-audience tokens', () => {
    it('a payments token with payments:read reads the charges', async () => {
      await placeOrder(aliceToken);
      const res = await callApi(`${ex.urls.payments}/charges`, { token: await machineToken('finance', PAYMENTS_API, 'payments:read') });
      expect(res.status).toBe(200);
      expect((res.body as { charges: { customer: string; actor: string }[] }).charges).toContainEqual(
        expect.objectContaining({ customer: alice.id, actor: 'orders-service' }),
      );
    });

    it('an orders-audience token is refused with 401 and an RFC 6750 challenge', async () => {
      for (const [method, path] of [
        ['GET', '/charges'],
        ['POST', '/charges'],
        ['POST', '/refunds'],
      ] as const) {
        const res = await callApi(`${ex.urls.payments}${path}`, { method, token: aliceToken, ...(method === 'POST' ? { body: {} } : {}) });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.body).toEqual({ error: 'invalid_token', error_description: 'the token is not meant for this API' });
        expect(res.challenge).toBe('Bearer realm="payments", error="invalid_token", error_description="the token is not meant for this API"');
      }
    });

    it('an inventory-audience token is refused too', async () => {
      const res = await callApi(`${ex.urls.payments}/charges`, { token: await machineToken('warehouse', INVENTORY_API, 'inventory:read') });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/error="invalid_token"/);
    });
  });

  describe('orders calls payments on the customer’s behalf by token exchange', () => {
    it('an order is charged with an exchanged token: payments:charge only, act.sub = orders-service; payments logs who acted for whom', async () => {
      const order = await placeOrder(aliceToken, 'kettle-steel', 1);
      const charged = logs.find((e) => e.service === 'payments' && e.event === 'payment.charged' && e.order === order.id);
      expect(charged).toMatchObject({ actor: 'orders-service', subject: alice.id, amount: 3900 });
      expect(charged?.message).toBe(`actor orders-service acting for subject ${alice.id}: charged €39.00 for order ${order.id}`);
      const request = logs.find((e) => e.service === 'payments' && e.event === 'request' && e.method === 'POST' && e.path === '/charges' && e.status === 201 && e.sub === alice.id);
      expect(request).toMatchObject({ client_id: 'orders-service', act: 'orders-service', scope: 'payments:charge' });
    });

    it('the exchanged token: signed for the payments API, fewer scopes, the customer as sub and orders-service in act', async () => {
      const res = await exchange(ex.issuer, client('orders-service'), aliceToken, PAYMENTS_API, 'payments:charge');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const claims = await createVerifier({ issuer: ex.issuer, audience: PAYMENTS_API }).verify(res.body.access_token!, { scopes: ['payments:charge'] });
      expect(claims).toMatchObject({ aud: PAYMENTS_API, sub: alice.id, client_id: 'orders-service', scope: 'payments:charge', act: { sub: 'orders-service' } });
      const subject = peek(aliceToken) as { scope: string; exp: number };
      expect(subject.scope).toBe('orders:read orders:write');
      expect(claims.exp).toBeLessThanOrEqual(subject.exp);

      // and with it, no payment data
      const read = await callApi(`${ex.urls.payments}/charges`, { token: res.body.access_token! });
      expect(read.status).toBe(403);
      expect(read.challenge).toBe(
        'Bearer realm="payments", error="insufficient_scope", error_description="the token lacks the scope payments:read", scope="payments:read"',
      );
    });

    it('nothing beyond its allowance: more scopes, another API, or a client without the grant are refused', async () => {
      expect((await exchange(ex.issuer, client('orders-service'), aliceToken, PAYMENTS_API, 'payments:read')).body.error).toBe('invalid_scope');
      expect((await exchange(ex.issuer, client('orders-service'), aliceToken, PAYMENTS_API, 'payments:charge payments:refund')).body.error).toBe('invalid_scope');
      expect((await exchange(ex.issuer, client('orders-service'), aliceToken, INVENTORY_API, 'inventory:read')).body.error).toBe('invalid_target');
      expect((await exchange(ex.issuer, client('storefront'), aliceToken, PAYMENTS_API, 'payments:charge')).body.error).toBe('unauthorized_client');
      // a token not addressed to the orders API (which orders-service serves) cannot be exchanged by it
      const inventoryToken = await machineToken('warehouse', INVENTORY_API, 'inventory:read');
      expect((await exchange(ex.issuer, client('orders-service'), inventoryToken, PAYMENTS_API, 'payments:charge')).body.error).toBe('invalid_grant');
    });
  });

  describe('inventory accepts only inventory:read / inventory:write tokens', () => {
    it('the warehouse reads with inventory:read and writes with inventory:write; a read-only token cannot write', async () => {
      const read = await machineToken('warehouse', INVENTORY_API, 'inventory:read');
      const write = await machineToken('warehouse', INVENTORY_API, 'inventory:write');
      expect((await callApi(`${ex.urls.inventory}/stock`, { token: read })).status).toBe(200);
      const adjusted = await callApi(`${ex.urls.inventory}/stock/kettle-steel/adjust`, { token: write, body: { delta: 5 } });
      expect(adjusted).toMatchObject({ status: 200, body: { sku: 'kettle-steel', quantity: 13 } });
      const denied = await callApi(`${ex.urls.inventory}/stock/kettle-steel/adjust`, { token: read, body: { delta: 5 } });
      expect(denied.status).toBe(403);
      expect(denied.challenge).toMatch(/error="insufficient_scope".*scope="inventory:write"$/);
      // and with write only, no read
      expect((await callApi(`${ex.urls.inventory}/stock`, { token: write })).status).toBe(403);
    });

    it("refuses other APIs' tokens, including one stolen from the orders service", async () => {
      const stolenFromOrders = (await exchange(ex.issuer, client('orders-service'), aliceToken, PAYMENTS_API, 'payments:charge')).body.access_token!;
      const finance = await machineToken('finance', PAYMENTS_API, 'payments:read');
      for (const [what, token] of [
        ["a customer's orders token", aliceToken],
        ["the orders service's payments token", stolenFromOrders],
        ['a finance payments token', finance],
      ] as const) {
        const res = await callApi(`${ex.urls.inventory}/stock`, { token });
        expect(res.status, what).toBe(401);
        expect(res.challenge, what).toBe('Bearer realm="inventory", error="invalid_token", error_description="the token is not meant for this API"');
      }
    });

    it("the orders service's credentials obtain no inventory token", async () => {
      expect((await clientCredentials(ex.issuer, client('orders-service'), INVENTORY_API, 'inventory:read')).body.error).toBe('unauthorized_client');
      expect((await clientCredentials(ex.issuer, client('storefront'), INVENTORY_API, 'inventory:read')).body.error).toBe('unauthorized_client');
      // the services' own credentials serve to introspect only
      expect((await clientCredentials(ex.issuer, client('inventory-service'), INVENTORY_API, 'inventory:read')).body.error).toBe('invalid_target');
    });
  });

  // Last: it disables a client.
  describe('a disabled client', () => {
    it('is refused at once where the service introspects, and by locally-verifying services once its (30 s) token expires', async () => {
      const order = await placeOrder(aliceToken, 'mug-stoneware', 1);
      const refund = await machineToken('warehouse', PAYMENTS_API, 'payments:refund');
      const read = await machineToken('warehouse', INVENTORY_API, 'inventory:read');
      const write = await machineToken('warehouse', INVENTORY_API, 'inventory:write');
      const refundOnce = () => callApi(`${ex.urls.payments}/refunds`, { token: refund, body: { chargeId: order.paymentId, amount: 100 } });
      expect((await refundOnce()).status).toBe(201);
      expect((await callApi(`${ex.urls.inventory}/stock/mug-stoneware/adjust`, { token: write, body: { delta: 1 } })).status).toBe(200);

      const disabled = await ex.cli(['clients', 'update', 'warehouse', '--disable']);
      expect(disabled.code, disabled.stderr).toBe(0);

      // Gatehouse: no new token, and its tokens introspect inactive (every instance within a second)
      expect(await eventually(async () => (await tokenRequest(ex.issuer, client('warehouse'), { grant_type: 'client_credentials', resource: INVENTORY_API })).status === 401)).toBe(true);
      expect((await tokenRequest(ex.issuer, client('warehouse'), { grant_type: 'client_credentials', resource: INVENTORY_API })).body.error).toBe('invalid_client');
      expect(await introspect(ex.issuer, client('inventory-service'), read)).toEqual({ active: false });

      // payments introspects every request: refused at once
      expect(await eventually(async () => (await refundOnce()).status === 401)).toBe(true);
      const refused = await refundOnce();
      expect(refused.challenge).toBe(
        'Bearer realm="payments", error="invalid_token", error_description="the token is no longer active (revoked, or its client was disabled)"',
      );
      // inventory introspects writes: refused at once
      const write2 = await callApi(`${ex.urls.inventory}/stock/mug-stoneware/adjust`, { token: write, body: { delta: 1 } });
      expect(write2.status).toBe(401);
      expect(write2.challenge).toMatch(/error="invalid_token", error_description="the token is no longer active/);

      // inventory verifies reads locally: the same client's token still works until it expires.
      // The trade-off is bounded by the client's access-token lifetime (30 s in gatehouse.yaml).
      const stillAccepted = await callApi(`${ex.urls.inventory}/stock`, { token: read });
      expect(stillAccepted.status).toBe(200);
      const { iat, exp } = peek(read) as { iat: number; exp: number };
      expect(exp - iat).toBe(30);
      expect(exp).toBeGreaterThan(Date.now() / 1000);

      // enabled again: back in
      expect((await ex.cli(['clients', 'update', 'warehouse', '--enable'])).code).toBe(0);
      expect(await eventually(async () => (await clientCredentials(ex.issuer, client('warehouse'), INVENTORY_API, 'inventory:read')).status === 200)).toBe(true);
    });

    it('a disabled storefront: its customers’ tokens still read orders until they expire, but no order can be paid for', async () => {
      const token = await customerToken(alice);
      expect((await ex.cli(['clients', 'update', 'storefront', '--disable'])).code).toBe(0);
      try {
        // placing an order is introspected: refused at once
        const order = () => callApi(`${ex.urls.orders}/orders`, { token, body: { items: [{ sku: 'tea-earl-grey', quantity: 1 }] } });
        expect(await eventually(async () => (await order()).status === 401)).toBe(true);
        expect((await order()).challenge).toMatch(/^Bearer realm="orders", error="invalid_token", error_description="the token is no longer active/);
        // the orders API verifies reads locally: accepted until the token's exp (the orders API's 300 s)
        expect((await callApi(`${ex.urls.orders}/orders`, { token })).status).toBe(200);
      } finally {
        expect((await ex.cli(['clients', 'update', 'storefront', '--enable'])).code).toBe(0);
      }
    });
  });
});
