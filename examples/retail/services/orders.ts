// The orders API (audience https://orders.retail.example), run by the
// orders service (client `orders-service`).
//
// Policies enforced here:
//   - a customer sees only their own orders: every order is stored with the
//     `sub` of the token that placed it, and listing or reading filters on the
//     caller's `sub` (another customer's order is "not found"). The storefront
//     has no say in it;
//   - reading needs orders:read, ordering orders:write; reads are verified
//     locally, orders are also introspected at Gatehouse (a revoked token or
//     a disabled storefront cannot buy anything, even before expiry);
//   - to charge the customer, the service exchanges the customer's token for
//     a payments token (RFC 8693): scope payments:charge only, `sub` = the
//     customer, `act.sub` = orders-service. It holds no payments token of its
//     own and cannot read payment data.
import { randomBytes } from 'node:crypto';
import { HttpError, callOnBehalf, clientFromEnv, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { ORDERS_API, PAYMENTS_API } from '../apis.ts';

/** The catalogue and prices (cents) are the orders service's own. */
export const CATALOGUE = [
  { sku: 'tea-earl-grey', name: 'Earl Grey tea, 250 g', price: 850 },
  { sku: 'mug-stoneware', name: 'Stoneware mug', price: 1400 },
  { sku: 'kettle-steel', name: 'Steel kettle', price: 3900 },
] as const;

export interface Order {
  id: string;
  /** the customer: the `sub` of the token that placed it */
  customer: string;
  items: { sku: string; name: string; quantity: number; price: number }[];
  total: number;
  currency: 'EUR';
  status: 'paid';
  paymentId: string;
  createdAt: string;
}

function parseItems(body: Record<string, unknown>): Order['items'] {
  const items = body.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > 20) throw new HttpError(400, 'invalid_request', 'items: 1 to 20 {sku, quantity} entries');
  return items.map((raw: unknown) => {
    const { sku, quantity } = (typeof raw === 'object' && raw !== null ? raw : {}) as { sku?: unknown; quantity?: unknown };
    const product = CATALOGUE.find((p) => p.sku === sku);
    if (!product) throw new HttpError(400, 'invalid_request', `unknown product ${JSON.stringify(sku)}`);
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
      throw new HttpError(400, 'invalid_request', 'quantity must be a whole number from 1 to 99');
    }
    return { sku: product.sku, name: product.name, quantity, price: product.price };
  });
}

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const paymentsUrl = required(env, 'PAYMENTS_URL');
  const client = clientFromEnv(env);
  if (!client) throw new Error('orders: CLIENT_ID and CLIENT_SECRET (orders-service) are required: payments are made by token exchange');
  const orders = new Map<string, Order>();

  return createService({
    name: 'orders',
    issuer: required(env, 'ISSUER'),
    audience: ORDERS_API,
    port: portFromEnv(env),
    client,
    ...(log ? { log } : {}),
    routes: [
      { method: 'GET', path: '/products', public: true, handler: () => ({ products: CATALOGUE }) },
      {
        method: 'GET',
        path: '/orders',
        scopes: ['orders:read'],
        handler: ({ auth }) => ({ orders: [...orders.values()].filter((o) => o.customer === auth.sub) }),
      },
      {
        method: 'GET',
        path: '/orders/:id',
        scopes: ['orders:read'],
        handler({ auth, params }) {
          const order = orders.get(params.id!);
          // someone else's order does not exist, as far as this caller can tell
          if (!order || order.customer !== auth.sub) throw new HttpError(404, 'not_found', 'no such order');
          return order;
        },
      },
      {
        method: 'POST',
        path: '/orders',
        scopes: ['orders:write'],
        // money will move: ask Gatehouse whether the customer's token is still active
        introspect: true,
        async handler({ auth, token, body, ctx, service }) {
          const items = parseItems(body);
          const id = `ord_${randomBytes(6).toString('hex')}`;
          const total = items.reduce((sum, i) => sum + i.price * i.quantity, 0);

          // On the customer's behalf: their token for us becomes a payments
          // token with only payments:charge, naming us as the actor.
          const res = await callOnBehalf(service, token, {
            audience: PAYMENTS_API,
            scope: 'payments:charge',
            url: `${paymentsUrl}/charges`,
            body: { orderId: id, amount: total, currency: 'EUR' },
          });
          const charge = res.body as { id?: unknown } | undefined;
          if (res.status !== 201 || typeof charge?.id !== 'string') {
            service.audit('payment.refused', { status: res.status, order: id });
            throw new HttpError(502, 'payment_failed', 'the payment was refused');
          }
          const order: Order = { id, customer: auth.sub, items, total, currency: 'EUR', status: 'paid', paymentId: charge.id, createdAt: new Date().toISOString() };
          orders.set(id, order);
          service.audit('order.created', { order: id, customer: auth.sub, total, payment: charge.id });
          ctx.status = 201;
          return order;
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
