// The retail walk-through: every policy, allowed side and refused side, one
// line per check. Run by `npm run example:retail -- --walkthrough`.
//
// The script plays the customers (through Gatehouse's real login page), the
// warehouse and finance clients, the admin (the gatehouse CLI), and an
// attacker holding stolen tokens or credentials. For requests the
// storefront would make it uses the storefront's credentials, as the
// storefront itself does.
import { Browser, codeFlowTokens, completeSignIn } from '../shared/browser.ts';
import { callApi, clientCredentials, eventually, exchange, peek, tokenRequest } from '../shared/http.ts';
import type { Walkthrough } from '../shared/main.ts';
import { describeApi, describeToken, expectApi, expectTokenError } from '../shared/report.ts';
import { INVENTORY_API, ORDERS_API, PAYMENTS_API } from './apis.ts';
import type { Order } from './services/orders.ts';

export const walkthrough: Walkthrough = async (ex, logs, r) => {
  const { issuer, urls, secrets } = ex;
  const alice = ex.users['alice@retail.example']!;
  const bob = ex.users['bob@retail.example']!;
  const client = (id: string) => ({ id, secret: secrets[id]! });
  const customerToken = async (u: { email: string; password: string }) =>
    (
      await codeFlowTokens({
        issuer,
        client: client('storefront'),
        redirectUri: `${urls.storefront}/callback`,
        resource: ORDERS_API,
        scope: 'openid orders:read orders:write',
        email: u.email,
        password: u.password,
      })
    ).access_token;
  const machineToken = async (id: string, resource: string, scope: string) => {
    const res = await clientCredentials(issuer, client(id), resource, scope);
    if (!res.body.access_token) throw new Error(`${id} got no token: ${describeToken(res)}`);
    return res.body.access_token;
  };
  const short = (sub: string) => (sub === alice.id ? 'alice' : sub === bob.id ? 'bob' : sub);

  // ------------------------------------------------------------------
  r.section('1. A customer sees only their own orders (the orders API enforces `sub`, not the storefront)');
  let aliceOrder: Order | undefined;
  await r.check('allowed', 'alice signs in at the storefront (code flow + PKCE) and buys 2 mugs', async () => {
    const browser = new Browser();
    const landing = await completeSignIn(browser, await browser.go('GET', `${urls.storefront}/login`), alice.email, alice.password);
    if (landing.kind !== 'page' || !landing.page.html.includes('Signed in as <strong>Alice Archer</strong>')) return { ok: false, result: 'not signed in' };
    await browser.go('POST', `${urls.storefront}/orders`, { sku: 'mug-stoneware', quantity: '2' });
    const mine = await browser.go('GET', `${urls.storefront}/my/orders`);
    const orders = mine.kind === 'page' ? ((JSON.parse(mine.page.html) as { orders: Order[] }).orders ?? []) : [];
    aliceOrder = orders[0];
    return { ok: orders.length === 1 && aliceOrder?.status === 'paid', result: `the storefront page lists order ${aliceOrder?.id} (${aliceOrder?.status}, €${((aliceOrder?.total ?? 0) / 100).toFixed(2)})` };
  });
  const aliceToken = await customerToken(alice);
  const bobToken = await customerToken(bob);
  r.note(`alice's access token: aud=${String(peek(aliceToken).aud)} scope="${String(peek(aliceToken).scope)}" sub=${alice.id}`);
  await r.check('allowed', "alice GET /orders with her own token", async () => {
    const res = await callApi(`${urls.orders}/orders`, { token: aliceToken });
    const orders = (res.body as { orders?: Order[] }).orders ?? [];
    return { ok: res.status === 200 && orders.length === 1 && orders[0]!.customer === alice.id, result: `${res.status}, ${orders.length} order(s), all hers` };
  });
  await r.check('refused', "bob GET /orders: alice's orders are not in his list", async () => {
    const res = await callApi(`${urls.orders}/orders`, { token: bobToken });
    const orders = (res.body as { orders?: Order[] }).orders ?? [];
    return { ok: res.status === 200 && !orders.some((o) => o.customer !== bob.id), result: `${res.status}, ${orders.length} order(s)` };
  });
  await r.check('refused', `bob GET /orders/${aliceOrder?.id ?? '?'} (alice's order, by id)`, async () =>
    expectApi(await callApi(`${urls.orders}/orders/${aliceOrder?.id}`, { token: bobToken }), 404),
  );
  await r.check('refused', 'GET /orders without a token', async () => expectApi(await callApi(`${urls.orders}/orders`), 401, true));

  // ------------------------------------------------------------------
  r.section('2. Only the payments API reads payment data, and only for payments tokens with payments:read');
  const financeToken = await machineToken('finance', PAYMENTS_API, 'payments:read');
  await r.check('allowed', 'finance (payments:read token for the payments API) GET /charges', async () => {
    const res = await callApi(`${urls.payments}/charges`, { token: financeToken });
    const charges = (res.body as { charges?: { customer: string; actor: string }[] }).charges ?? [];
    const c = charges.find((x) => x.customer === alice.id);
    return { ok: res.status === 200 && c !== undefined, result: `${res.status}, ${charges.length} charge(s); alice's was made by actor ${c?.actor}` };
  });
  await r.check('refused', "alice's orders token (aud orders) at payments GET /charges", async () =>
    expectApi(await callApi(`${urls.payments}/charges`, { token: aliceToken }), 401, true),
  );
  const warehouseRead = await machineToken('warehouse', INVENTORY_API, 'inventory:read');
  await r.check('refused', "the warehouse's inventory token at payments GET /charges", async () =>
    expectApi(await callApi(`${urls.payments}/charges`, { token: warehouseRead }), 401),
  );

  // ------------------------------------------------------------------
  r.section('3. Orders charges payments on the customer\'s behalf by token exchange: fewer scopes, an `act` claim');
  await r.check('allowed', 'payments logged who acted for whom when alice ordered', async () => {
    const line = logs.find((e) => e.service === 'payments' && e.event === 'payment.charged' && e.subject === alice.id);
    return { ok: line !== undefined && line.actor === 'orders-service', result: line ? `"${String(line.message).replace(alice.id, 'alice')}"` : 'no log line' };
  });
  const exchanged = await exchange(issuer, client('orders-service'), aliceToken, PAYMENTS_API, 'payments:charge');
  await r.check('allowed', "orders-service exchanges alice's orders token for a payments token", async () => {
    const claims = exchanged.body.access_token ? peek(exchanged.body.access_token) : {};
    const act = claims.act as { sub?: string } | undefined;
    return {
      ok: exchanged.status === 200 && claims.scope === 'payments:charge' && claims.sub === alice.id && act?.sub === 'orders-service' && claims.aud === PAYMENTS_API,
      result: `${exchanged.status}: aud=payments scope="${String(claims.scope)}" (alice had "${String(peek(aliceToken).scope)}") sub=${short(String(claims.sub))} act.sub=${act?.sub}`,
    };
  });
  const paymentsToken = exchanged.body.access_token ?? '';
  await r.check('refused', 'that exchanged token reading payment data (GET /charges needs payments:read)', async () =>
    expectApi(await callApi(`${urls.payments}/charges`, { token: paymentsToken }), 403, true),
  );
  await r.check('refused', 'orders-service exchanging for payments:read (beyond its allowance)', async () =>
    expectTokenError(await exchange(issuer, client('orders-service'), aliceToken, PAYMENTS_API, 'payments:read'), 'invalid_scope'),
  );
  await r.check('refused', 'orders-service exchanging for the inventory API', async () =>
    expectTokenError(await exchange(issuer, client('orders-service'), aliceToken, INVENTORY_API, 'inventory:read'), 'invalid_target'),
  );
  await r.check('refused', 'the storefront (no exchange grant) exchanging alice\'s token for payments', async () =>
    expectTokenError(await exchange(issuer, client('storefront'), aliceToken, PAYMENTS_API, 'payments:charge'), 'unauthorized_client'),
  );

  // ------------------------------------------------------------------
  r.section('4. Inventory accepts only inventory:read / inventory:write tokens');
  const warehouseWrite = await machineToken('warehouse', INVENTORY_API, 'inventory:write');
  await r.check('allowed', 'warehouse (inventory:read) GET /stock', async () => {
    const res = await callApi(`${urls.inventory}/stock`, { token: warehouseRead });
    return { ok: res.status === 200, result: `${res.status}, ${((res.body as { stock?: unknown[] }).stock ?? []).length} products` };
  });
  await r.check('allowed', 'warehouse (inventory:write) POST /stock/mug-stoneware/adjust -2', async () => {
    const res = await callApi(`${urls.inventory}/stock/mug-stoneware/adjust`, { token: warehouseWrite, body: { delta: -2 } });
    return { ok: res.status === 200, result: `${res.status}, quantity now ${(res.body as { quantity?: number }).quantity}` };
  });
  await r.check('refused', 'warehouse with only inventory:read adjusting stock', async () =>
    expectApi(await callApi(`${urls.inventory}/stock/mug-stoneware/adjust`, { token: warehouseRead, body: { delta: 1 } }), 403, true),
  );
  await r.check('refused', "alice's orders token at inventory GET /stock", async () => expectApi(await callApi(`${urls.inventory}/stock`, { token: aliceToken }), 401, true));
  await r.check('refused', "a token stolen from orders-service (its payments token) at inventory GET /stock", async () =>
    expectApi(await callApi(`${urls.inventory}/stock`, { token: paymentsToken }), 401),
  );
  await r.check('refused', "orders-service's stolen credentials asking for an inventory token", async () =>
    expectTokenError(await clientCredentials(issuer, client('orders-service'), INVENTORY_API, 'inventory:read'), 'unauthorized_client'),
  );
  await r.check('refused', "the finance token (payments:read) at inventory GET /stock", async () => expectApi(await callApi(`${urls.inventory}/stock`, { token: financeToken }), 401));

  // ------------------------------------------------------------------
  r.section('5. A disabled client is locked out: at once where a service introspects, at token expiry elsewhere');
  const refundToken = await machineToken('warehouse', PAYMENTS_API, 'payments:refund');
  const readToken = await machineToken('warehouse', INVENTORY_API, 'inventory:read');
  await r.check('allowed', `warehouse refunds alice's charge ${aliceOrder?.paymentId ?? '?'} (payments introspects)`, async () =>
    expectApi(await callApi(`${urls.payments}/refunds`, { token: refundToken, body: { chargeId: aliceOrder?.paymentId, amount: 1400 } }), 201),
  );
  const disabled = await ex.cli(['clients', 'update', 'warehouse', '--disable']);
  r.note(`admin: gatehouse clients update warehouse --disable → ${disabled.code === 0 ? 'done' : disabled.stderr.trim()}`);
  await r.check('refused', 'warehouse asking for a new token', async () => {
    let res = await tokenRequest(issuer, client('warehouse'), { grant_type: 'client_credentials', resource: INVENTORY_API });
    await eventually(async () => (res = await tokenRequest(issuer, client('warehouse'), { grant_type: 'client_credentials', resource: INVENTORY_API })).status === 401);
    return expectTokenError(res, 'invalid_client');
  });
  await r.check('refused', 'its refund token at payments (introspected: inactive now)', async () => {
    let res = await callApi(`${urls.payments}/refunds`, { token: refundToken, body: { chargeId: aliceOrder?.paymentId, amount: 100 } });
    await eventually(async () => (res = await callApi(`${urls.payments}/refunds`, { token: refundToken, body: { chargeId: aliceOrder?.paymentId, amount: 100 } })).status === 401);
    return expectApi(res, 401, true);
  });
  await r.check('refused', 'its inventory:write token adjusting stock (writes are introspected)', async () =>
    expectApi(await callApi(`${urls.inventory}/stock/mug-stoneware/adjust`, { token: warehouseWrite, body: { delta: -1 } }), 401, true),
  );
  await r.check('allowed', 'its inventory:read token at GET /stock (verified locally: the trade-off)', async () => {
    const res = await callApi(`${urls.inventory}/stock`, { token: readToken });
    const { exp, iat } = peek(readToken) as { exp: number; iat: number };
    const left = Math.max(0, Math.round(exp - Date.now() / 1000));
    return { ok: res.status === 200 && exp - iat <= 30, result: `${describeApi(res)}: accepted until the token expires in ${left} s (lifetime ${exp - iat} s)` };
  });
  const enabled = await ex.cli(['clients', 'update', 'warehouse', '--enable']);
  r.note(`admin: gatehouse clients update warehouse --enable → ${enabled.code === 0 ? 'done' : enabled.stderr.trim()}`);
};
