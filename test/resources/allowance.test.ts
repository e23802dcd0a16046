import { describe, expect, it } from 'vitest';
import { allowedScopes, grantableScopes, parseScopeParam, roleNamesFor } from '../../src/resources/allowance.ts';

const orders = { identifier: 'https://orders.example', scopes: ['orders:read', 'orders:write', 'orders:admin'] };
const ordersByRole = { ...orders, requireRoles: true };
const client = { scopes: ['openid', 'orders:read', 'orders:write', 'stock:read'], resources: ['https://orders.example'] };

describe('allowedScopes', () => {
  it('is the client scopes offered by the resource', () => {
    expect(allowedScopes(client, orders)).toEqual(['orders:read', 'orders:write']);
  });

  it('is empty when the resource is not in the client resources', () => {
    expect(allowedScopes({ ...client, resources: [] }, orders)).toEqual([]);
    expect(allowedScopes(client, { identifier: 'https://stock.example', scopes: ['stock:read'] })).toEqual([]);
  });

  it('is empty when the client has none of the resource scopes', () => {
    expect(allowedScopes({ scopes: ['openid'], resources: [orders.identifier] }, orders)).toEqual([]);
  });
});

describe('grantableScopes', () => {
  it('keeps only requested scopes within the allowance, in requested order', () => {
    expect(grantableScopes(['orders:write', 'orders:admin', 'openid', 'orders:read'], client, orders)).toEqual(['orders:write', 'orders:read']);
  });

  it('accepts a space-separated scope parameter and drops duplicates', () => {
    expect(grantableScopes('orders:read  orders:read stock:read', client, orders)).toEqual(['orders:read']);
  });

  it('grants nothing for a resource the client may not use', () => {
    expect(grantableScopes(['orders:read'], { ...client, resources: [] }, orders)).toEqual([]);
  });

  it('ignores roles on a resource without requireRoles', () => {
    expect(grantableScopes(['orders:read', 'orders:write'], client, orders, [])).toEqual(['orders:read', 'orders:write']);
  });

  it('limits a person to the scopes of their roles on a requireRoles resource', () => {
    const roles = [
      { name: 'reader', resource: orders.identifier, scopes: ['orders:read'] },
      { name: 'stock-writer', resource: 'https://stock.example', scopes: ['orders:write'] },
    ];
    expect(grantableScopes(['orders:read', 'orders:write'], client, ordersByRole, roles)).toEqual(['orders:read']);
  });

  it('unions the scopes of several roles, still within the client allowance', () => {
    const roles = [
      { name: 'reader', resource: orders.identifier, scopes: ['orders:read'] },
      { name: 'admin', resource: orders.identifier, scopes: ['orders:write', 'orders:admin'] },
    ];
    expect(grantableScopes(['orders:read', 'orders:write', 'orders:admin'], client, ordersByRole, roles)).toEqual(['orders:read', 'orders:write']);
  });

  it('gives a person without roles nothing on a requireRoles resource', () => {
    expect(grantableScopes(['orders:read'], client, ordersByRole, [])).toEqual([]);
  });

  it('applies no role filter to a token without a person (roles omitted)', () => {
    expect(grantableScopes(['orders:read'], client, ordersByRole)).toEqual(['orders:read']);
  });
});

describe('helpers', () => {
  it('roleNamesFor lists the roles on that resource, sorted', () => {
    const roles = [
      { name: 'b', resource: orders.identifier, scopes: [] },
      { name: 'a', resource: orders.identifier, scopes: [] },
      { name: 'c', resource: 'https://stock.example', scopes: [] },
    ];
    expect(roleNamesFor(orders, roles)).toEqual(['a', 'b']);
  });

  it('parseScopeParam splits on spaces', () => {
    expect(parseScopeParam(' a b  a ')).toEqual(['a', 'b']);
    expect(parseScopeParam(undefined)).toEqual([]);
  });
});
