// The retail system as the runner starts it: which services, in which order,
// with which settings and whose client secret, and the demo customers.
import type { ExampleSpec } from '../shared/runner.ts';
import * as inventory from './services/inventory.ts';
import * as orders from './services/orders.ts';
import * as payments from './services/payments.ts';
import * as storefront from './services/storefront.ts';

export const retail: ExampleSpec = {
  name: 'retail',
  configFile: 'examples/retail/gatehouse.yaml',
  gatehousePort: 4400,
  users: [
    { email: 'alice@retail.example', name: 'Alice Archer', password: 'alice-demo-password' },
    { email: 'bob@retail.example', name: 'Bob Baker', password: 'bob-demo-password' },
  ],
  services: [
    {
      name: 'payments',
      port: 4403,
      env: ({ issuer, secret }) => ({ ISSUER: issuer, CLIENT_ID: 'payments-service', CLIENT_SECRET: secret('payments-service') }),
      start: payments.start,
    },
    {
      name: 'inventory',
      port: 4404,
      env: ({ issuer, secret }) => ({ ISSUER: issuer, CLIENT_ID: 'inventory-service', CLIENT_SECRET: secret('inventory-service') }),
      start: inventory.start,
    },
    {
      name: 'orders',
      port: 4402,
      env: ({ issuer, secret, urls }) => ({
        ISSUER: issuer,
        CLIENT_ID: 'orders-service',
        CLIENT_SECRET: secret('orders-service'),
        PAYMENTS_URL: urls.payments,
      }),
      start: orders.start,
    },
    {
      name: 'storefront',
      port: 4401,
      env: ({ issuer, secret, urls }) => ({ ISSUER: issuer, CLIENT_ID: 'storefront', CLIENT_SECRET: secret('storefront'), ORDERS_URL: urls.orders }),
      start: storefront.start,
    },
  ],
  webClients: [{ clientId: 'storefront', service: 'storefront', redirectPaths: ['/callback'], postLogoutPaths: ['/'] }],
};
