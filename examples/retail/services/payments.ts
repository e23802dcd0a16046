// The payments API (audience https://payments.retail.example).
//
// Policies enforced here:
//   - only tokens for this API are accepted (the verifier checks `aud`): an
//     orders or inventory token is refused with 401 invalid_token;
//   - payment data (GET /charges) needs payments:read; charging needs
//     payments:charge and is done only on a customer's behalf (a token
//     obtained by token exchange, with an `act` claim); refunds need
//     payments:refund;
//   - every request is introspected at Gatehouse too (money moves here), so a
//     revoked token or a disabled client is refused at once, not at expiry;
//   - each charge is logged as "actor X acting for subject Y".
import { randomBytes } from 'node:crypto';
import { HttpError, actorChain, clientFromEnv, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { PAYMENTS_API } from '../apis.ts';

interface Charge {
  id: string;
  orderId: string;
  /** the customer charged: the token's `sub` */
  customer: string;
  amount: number;
  currency: string;
  card: string;
  /** who asked for it on the customer's behalf */
  actor: string;
  refunded: number;
  createdAt: string;
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 10_000_000;

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const client = clientFromEnv(env);
  if (!client) throw new Error('payments: CLIENT_ID and CLIENT_SECRET (payments-service) are required: every request is introspected');
  const charges = new Map<string, Charge>();

  return createService({
    name: 'payments',
    issuer: required(env, 'ISSUER'),
    audience: PAYMENTS_API,
    port: portFromEnv(env),
    client,
    introspect: true,
    ...(log ? { log } : {}),
    routes: [
      {
        method: 'POST',
        path: '/charges',
        scopes: ['payments:charge'],
        handler({ auth, body, ctx, service }) {
          const actor = actorChain(auth.act);
          if (!actor) throw new HttpError(403, 'access_denied', "charges are made only on a customer's behalf (a token obtained by token exchange)");
          const { orderId, amount, currency } = body;
          if (typeof orderId !== 'string' || !orderId || orderId.length > 100 || !positiveInt(amount) || (currency !== undefined && currency !== 'EUR')) {
            throw new HttpError(400, 'invalid_request', 'orderId (string) and amount (positive integer, in cents) are required');
          }
          const charge: Charge = {
            id: `ch_${randomBytes(6).toString('hex')}`,
            orderId,
            customer: auth.sub,
            amount,
            currency: 'EUR',
            card: '**** **** **** 4242',
            actor,
            refunded: 0,
            createdAt: new Date().toISOString(),
          };
          charges.set(charge.id, charge);
          service.audit('payment.charged', {
            message: `actor ${actor} acting for subject ${auth.sub}: charged €${(amount / 100).toFixed(2)} for order ${orderId}`,
            actor,
            subject: auth.sub,
            charge: charge.id,
            order: orderId,
            amount,
          });
          ctx.status = 201;
          return { id: charge.id, orderId, amount, currency: charge.currency, status: 'captured' };
        },
      },
      {
        // payment data: only with payments:read
        method: 'GET',
        path: '/charges',
        scopes: ['payments:read'],
        handler: () => ({ charges: [...charges.values()] }),
      },
      {
        method: 'POST',
        path: '/refunds',
        scopes: ['payments:refund'],
        handler({ auth, body, ctx, service }) {
          const charge = typeof body.chargeId === 'string' ? charges.get(body.chargeId) : undefined;
          if (!charge) throw new HttpError(404, 'not_found', 'no such charge');
          const amount = body.amount === undefined ? charge.amount - charge.refunded : body.amount;
          if (!positiveInt(amount) || amount > charge.amount - charge.refunded) throw new HttpError(400, 'invalid_request', 'amount exceeds what can be refunded');
          charge.refunded += amount;
          service.audit('payment.refunded', { message: `${auth.client_id} refunded €${(amount / 100).toFixed(2)} of ${charge.id}`, client_id: auth.client_id, charge: charge.id, amount });
          ctx.status = 201;
          return { chargeId: charge.id, refunded: amount, status: 'refunded' };
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
