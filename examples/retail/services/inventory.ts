// The inventory API (audience https://inventory.retail.example).
//
// Policies enforced here:
//   - only tokens for this API, and only with inventory:read (stock levels) or
//     inventory:write (stock changes): any other token, e.g. one stolen from
//     the orders service, is refused with 401;
//   - reads are verified locally (fast; a disabled client's token still works
//     until it expires, at most its lifetime); writes are also introspected at
//     Gatehouse, so they stop the moment a client is disabled.
import { HttpError, clientFromEnv, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { INVENTORY_API } from '../apis.ts';

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const client = clientFromEnv(env);
  if (!client) throw new Error('inventory: CLIENT_ID and CLIENT_SECRET (inventory-service) are required: stock changes are introspected');
  const stock = new Map<string, number>([
    ['tea-earl-grey', 120],
    ['mug-stoneware', 35],
    ['kettle-steel', 8],
  ]);
  const view = (sku: string) => ({ sku, quantity: stock.get(sku) ?? 0 });

  return createService({
    name: 'inventory',
    issuer: required(env, 'ISSUER'),
    audience: INVENTORY_API,
    port: portFromEnv(env),
    client,
    ...(log ? { log } : {}),
    routes: [
      { method: 'GET', path: '/stock', scopes: ['inventory:read'], handler: () => ({ stock: [...stock.keys()].map(view) }) },
      {
        method: 'GET',
        path: '/stock/:sku',
        scopes: ['inventory:read'],
        handler({ params }) {
          if (!stock.has(params.sku!)) throw new HttpError(404, 'not_found', 'no such product');
          return view(params.sku!);
        },
      },
      {
        method: 'POST',
        path: '/stock/:sku/adjust',
        scopes: ['inventory:write'],
        introspect: true,
        handler({ params, body, auth, service }) {
          const sku = params.sku!;
          if (!stock.has(sku)) throw new HttpError(404, 'not_found', 'no such product');
          const delta = body.delta;
          if (typeof delta !== 'number' || !Number.isInteger(delta) || Math.abs(delta) > 100_000) {
            throw new HttpError(400, 'invalid_request', 'delta must be a whole number');
          }
          const next = stock.get(sku)! + delta;
          if (next < 0) throw new HttpError(409, 'conflict', 'not enough stock');
          stock.set(sku, next);
          service.audit('stock.adjusted', { client_id: auth.client_id, sku, delta, quantity: next });
          return view(sku);
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
