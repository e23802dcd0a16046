// Policy evaluation on hand-built registries (pure; the write paths are in policies.test.ts).
import { describe, expect, it } from 'vitest';
import { buildModel, TOKEN_EXCHANGE, type Registry } from '../../src/access/model.ts';
import { evaluatePolicies, parsePolicy } from '../../src/access/policies.ts';

const PAY = 'https://pay';
const ORDERS = 'https://orders';

const shop: Registry = {
  apis: [
    { identifier: ORDERS, scopes: ['orders:write'], servedBy: ['orders-svc'] },
    { identifier: PAY, scopes: ['pay:charge', 'pay:read'], servedBy: [], sensitiveScopes: ['pay:charge'] },
  ],
  clients: [
    { id: 'a-app', grants: ['authorization_code'], scopes: ['orders:write'], resources: [ORDERS] },
    { id: 'z-app', grants: ['authorization_code'], scopes: ['orders:write'], resources: [ORDERS] },
    { id: 'orders-svc', grants: [TOKEN_EXCHANGE], scopes: ['pay:charge'], resources: [PAY] },
  ],
  roles: [],
};
const only = (clients: string[]) => [parsePolicy({ name: 'p', kind: 'only-clients', scope: 'pay:charge', clients })];

describe('only-clients: who may hold a token with the scope', () => {
  it('holds when every path ends with an allowed client, people behind it included', () => {
    expect(evaluatePolicies(buildModel(shop), only(['orders-svc']))).toEqual([]);
  });

  it('names every other holder, even one whose path is not the shortest', () => {
    const r = { ...shop, clients: shop.clients.map((c) => (c.id === 'z-app' ? { ...c, scopes: ['orders:write', 'pay:charge'], resources: [ORDERS, PAY] } : c)) };
    const v = evaluatePolicies(buildModel(r), only(['orders-svc']));
    expect(v.map((x) => x.message)).toEqual(['a person with no role reaches pay:charge on https://pay (the token is held by z-app)']);
    expect(v[0]!.path).toBe('sign-in via z-app -> https://pay');
  });

  it('an exchange by a server that nobody can call opens no path', () => {
    const r = { ...shop, clients: shop.clients.filter((c) => c.id === 'orders-svc') };
    expect(evaluatePolicies(buildModel(r), only([]))).toEqual([]);
    expect(evaluatePolicies(buildModel(shop), only([])).map((x) => x.path)).toEqual([
      'sign-in via a-app -> https://orders -[exchange by orders-svc]-> https://pay',
    ]);
  });
});

describe('the other kinds', () => {
  it('only-people-and-clients: people may, and listed clients; any other machine may not, even through a listed one', () => {
    const r = { ...shop, clients: [...shop.clients, { id: 'batch', grants: ['client_credentials'], scopes: ['orders:write'], resources: [ORDERS] }] };
    const p = [parsePolicy({ name: 'q', kind: 'only-people-and-clients', scope: 'pay:charge', clients: ['orders-svc'] })];
    expect(evaluatePolicies(buildModel(shop), p)).toEqual([]);
    expect(evaluatePolicies(buildModel(r), p).map((x) => x.path)).toEqual(['batch -[client_credentials]-> https://orders -[exchange by orders-svc]-> https://pay']);
  });

  it('max-chain, max-sensitive-per-client and sensitive-requires-roles', () => {
    const m = buildModel(shop);
    const kinds = [
      { name: 'c0', kind: 'max-chain', length: 0 },
      { name: 'c1', kind: 'max-chain', length: 1 },
      { name: 's0', kind: 'max-sensitive-per-client', count: 0 },
      { name: 'roles', kind: 'sensitive-requires-roles' },
    ].map(parsePolicy);
    expect(evaluatePolicies(m, kinds).map((v) => `${v.policy}: ${v.message}`)).toEqual([
      'c0: a token-exchange chain of length 1 exists (at most 0 allowed)',
      'roles: https://pay has sensitive scopes (pay:charge) but does not require roles',
      's0: orders-svc reaches 1 sensitive scopes (at most 0 allowed): pay:charge on https://pay',
    ]);
  });

  it('bad policies name the field', () => {
    expect(() => parsePolicy({ name: 'x', kind: 'max-chain' })).toThrow(/length/);
    expect(() => parsePolicy({ name: 'x', kind: 'whatever' })).toThrow(/kind: must be one of/);
    expect(() => parsePolicy({ name: 'x', kind: 'only-clients', scope: 's', clients: [], extra: 1 })).toThrow(/extra/);
  });
});
