// The reachability model on hand-built registries with known answers.
import { describe, expect, it } from 'vitest';
import { accessMap, buildModel, ifLeaked, longestChain, pathText, reachOfClient, reachOfPerson, whoReaches, TOKEN_EXCHANGE, type Registry } from '../../src/access/model.ts';

const CC = 'client_credentials';
const TE = TOKEN_EXCHANGE;
const CODE = 'authorization_code';

const reachOf = (r: Registry, id: string) => reachOfClient(buildModel(r), id).map((x) => `${x.api} ${x.scope} ${x.chain}`);

describe('access model: direct reach', () => {
  it('a client reaches its allowance (client scopes ∩ API scopes) on the APIs it lists, nothing else', () => {
    const r: Registry = {
      clients: [{ id: 'checkout', grants: [CC], scopes: ['pay:charge', 'orders:read', 'other:x'], resources: ['https://pay', 'https://orders'] }],
      apis: [
        { identifier: 'https://pay', scopes: ['pay:charge', 'pay:refund'], servedBy: [] },
        { identifier: 'https://orders', scopes: ['orders:read'], servedBy: [] },
        { identifier: 'https://unlisted', scopes: ['other:x'], servedBy: [] },
      ],
      roles: [],
    };
    expect(reachOf(r, 'checkout')).toEqual(['https://orders orders:read 0', 'https://pay pay:charge 0']);
    expect(pathText(reachOfClient(buildModel(r), 'checkout')[1]!.path)).toBe('checkout -[client_credentials]-> https://pay');
  });

  it('a client without client_credentials, token exchange or a served API reaches nothing by itself', () => {
    const r: Registry = {
      clients: [{ id: 'web', grants: [CODE], scopes: ['a'], resources: ['https://a'] }],
      apis: [{ identifier: 'https://a', scopes: ['a'], servedBy: [] }],
      roles: [],
    };
    expect(reachOf(r, 'web')).toEqual([]);
  });

  it('a disabled client is excluded: it reaches nothing and its exchanges open no path', () => {
    const r: Registry = {
      clients: [
        { id: 'front', grants: [CC], scopes: ['a'], resources: ['https://a'] },
        { id: 'svc', grants: [TE], scopes: ['b'], resources: ['https://b'], disabled: true },
        { id: 'off', grants: [CC], scopes: ['b'], resources: ['https://b'], disabled: true },
      ],
      apis: [
        { identifier: 'https://a', scopes: ['a'], servedBy: ['svc'] },
        { identifier: 'https://b', scopes: ['b'], servedBy: [] },
      ],
      roles: [],
    };
    const m = buildModel(r);
    expect(reachOf(r, 'front')).toEqual(['https://a a 0']);
    expect(reachOfClient(m, 'off')).toEqual([]);
    expect(whoReaches(m, 'https://b')).toEqual([]);
  });
});

describe('access model: token-exchange chains', () => {
  // front → A (served by s1) → B (served by s2) → C (served by s3) → D
  const chain: Registry = {
    clients: [
      { id: 'front', grants: [CC], scopes: ['a'], resources: ['https://a'] },
      { id: 's1', grants: [TE], scopes: ['b'], resources: ['https://b'] },
      { id: 's2', grants: [TE], scopes: ['c', 'c2'], resources: ['https://c'] },
      { id: 's3', grants: [TE], scopes: ['d'], resources: ['https://d'] },
    ],
    apis: [
      { identifier: 'https://a', scopes: ['a'], servedBy: ['s1'] },
      { identifier: 'https://b', scopes: ['b'], servedBy: ['s2'] },
      { identifier: 'https://c', scopes: ['c', 'c2', 'c3'], servedBy: ['s3'] },
      { identifier: 'https://d', scopes: ['d'], servedBy: [] },
    ],
    roles: [],
  };

  it('follows chains of length 1, 2 and 3, bounded by each actor\'s allowance', () => {
    expect(reachOf(chain, 'front')).toEqual(['https://a a 0', 'https://b b 1', 'https://c c 2', 'https://c c2 2', 'https://d d 3']);
    const d = reachOfClient(buildModel(chain), 'front').find((x) => x.api === 'https://d')!;
    expect(pathText(d.path)).toBe(
      'front -[client_credentials]-> https://a -[exchange by s1]-> https://b -[exchange by s2]-> https://c -[exchange by s3]-> https://d',
    );
    expect(longestChain(buildModel(chain)).length).toBe(3);
  });

  it('a server reaches its own allowance from the tokens callers send to the API it serves', () => {
    expect(reachOf(chain, 's2')).toEqual(['https://c c 1', 'https://c c2 1', 'https://d d 2']);
  });

  it('an actor without the token-exchange grant breaks the chain', () => {
    const r = { ...chain, clients: chain.clients.map((c) => (c.id === 's2' ? { ...c, grants: [CC] } : c)) };
    expect(reachOf(r, 'front')).toEqual(['https://a a 0', 'https://b b 1']);
  });

  it('cycles in servedBy terminate, and the shortest path is kept', () => {
    const r: Registry = {
      clients: [
        { id: 'x', grants: [CC, TE], scopes: ['a', 'b'], resources: ['https://a', 'https://b'] },
        { id: 'y', grants: [TE], scopes: ['a', 'b'], resources: ['https://a', 'https://b'] },
      ],
      apis: [
        { identifier: 'https://a', scopes: ['a'], servedBy: ['x', 'y'] },
        { identifier: 'https://b', scopes: ['b'], servedBy: ['x', 'y'] },
      ],
      roles: [],
    };
    const m = buildModel(r);
    expect(reachOf(r, 'x')).toEqual(['https://a a 0', 'https://b b 0']);
    expect(reachOf(r, 'y')).toEqual(['https://a a 1', 'https://b b 1']);
    expect(longestChain(m).length).toBe(1);
    expect(accessMap(m).length).toBe(4);
  });

  it('a longer cycle: each API appears once in the longest chain', () => {
    const r: Registry = {
      clients: [
        { id: 'f', grants: [CC], scopes: ['a'], resources: ['https://a'] },
        { id: 'sa', grants: [TE], scopes: ['b'], resources: ['https://b'] },
        { id: 'sb', grants: [TE], scopes: ['c'], resources: ['https://c'] },
        { id: 'sc', grants: [TE], scopes: ['a'], resources: ['https://a'] },
      ],
      apis: [
        { identifier: 'https://a', scopes: ['a'], servedBy: ['sa'] },
        { identifier: 'https://b', scopes: ['b'], servedBy: ['sb'] },
        { identifier: 'https://c', scopes: ['c'], servedBy: ['sc'] },
      ],
      roles: [],
    };
    expect(reachOf(r, 'f')).toEqual(['https://a a 0', 'https://b b 1', 'https://c c 2']);
    expect(longestChain(buildModel(r)).length).toBe(2);
  });
});

describe('access model: people and roles', () => {
  const r: Registry = {
    clients: [
      { id: 'portal', grants: [CODE, TE], scopes: ['records:read', 'records:write', 'schedule:read', 'notes:read'], resources: ['https://records', 'https://schedule', 'https://notes'] },
      { id: 'records-svc', grants: [TE], scopes: ['notes:read'], resources: ['https://notes'] },
      { id: 'batch', grants: [CC], scopes: ['schedule:read'], resources: ['https://schedule'] },
    ],
    apis: [
      { identifier: 'https://records', scopes: ['records:read', 'records:write'], servedBy: ['records-svc'], requireRoles: true, sensitiveScopes: ['records:write'] },
      { identifier: 'https://schedule', scopes: ['schedule:read'], servedBy: [] },
      { identifier: 'https://notes', scopes: ['notes:read'], servedBy: [], requireRoles: true },
    ],
    roles: [
      { name: 'nurse', resource: 'https://records', scopes: ['records:read'] },
      { name: 'doctor', resource: 'https://records', scopes: ['records:read', 'records:write'] },
      { name: 'scribe', resource: 'https://notes', scopes: ['notes:read'] },
    ],
  };
  const m = buildModel(r);
  const lines = (xs: { principal: string; api: string; scope: string; chain: number }[]) => xs.map((x) => `${x.principal} ${x.api} ${x.scope} ${x.chain}`);

  it('any person reaches the plain allowance of sign-in clients on APIs without requireRoles', () => {
    expect(lines(reachOfPerson(m))).toEqual(['people https://schedule schedule:read 0']);
  });

  it('a role adds only the scopes it grants on its own requireRoles API', () => {
    expect(lines(reachOfPerson(m, 'nurse'))).toEqual(['role:nurse https://records records:read 0']);
    expect(lines(reachOfPerson(m, 'doctor'))).toEqual(['role:doctor https://records records:read 0', 'role:doctor https://records records:write 0']);
    // notes requires roles: only scribes get a token for it, directly or by exchange
    expect(lines(reachOfPerson(m, 'scribe'))).toEqual(['role:scribe https://notes notes:read 0']);
  });

  it('who reaches a scope lists clients and roles with their paths', () => {
    const who = whoReaches(m, 'https://records', 'records:write');
    expect(lines(who)).toEqual(['role:doctor https://records records:write 0']);
    expect(pathText(who[0]!.path)).toBe('sign-in via portal -> https://records');
    expect(lines(whoReaches(m, 'https://schedule'))).toEqual(['client:batch https://schedule schedule:read 0', 'people https://schedule schedule:read 0']);
  });
});

describe('access model: --if-leaked', () => {
  const r: Registry = {
    clients: [
      { id: 'storefront', grants: [CC, CODE], scopes: ['orders:write', 'catalog:read'], resources: ['https://orders', 'https://catalog'] },
      { id: 'orders-svc', grants: [CC, TE], scopes: ['payments:charge', 'orders:write'], resources: ['https://payments', 'https://orders'] },
      { id: 'reporting', grants: [CC], scopes: ['payments:read'], resources: ['https://payments'] },
    ],
    apis: [
      { identifier: 'https://orders', scopes: ['orders:write'], servedBy: ['orders-svc'] },
      { identifier: 'https://catalog', scopes: ['catalog:read'], servedBy: [] },
      { identifier: 'https://payments', scopes: ['payments:charge', 'payments:read'], servedBy: [], sensitiveScopes: ['payments:charge'], requireRoles: true },
      { identifier: 'https://admin', scopes: ['admin'], servedBy: [], requireRoles: true },
    ],
    roles: [{ name: 'ops', resource: 'https://admin', scopes: ['admin'] }],
  };
  const m = buildModel(r);

  it('is the union of direct reach, chains and sign-ins, sensitive scopes first', () => {
    const leaked = ifLeaked(m, 'storefront');
    expect(leaked.map((x) => `${x.api} ${x.scope} ${x.sensitive ? 'S' : '-'} ${x.chain}`)).toEqual([
      'https://payments payments:charge S 1',
      'https://catalog catalog:read - 0',
      'https://orders orders:write - 0',
    ]);
    expect(pathText(leaked[0]!.path)).toBe('storefront -[client_credentials]-> https://orders -[exchange by orders-svc]-> https://payments');
  });

  it('ranks the scopes few principals reach before the common ones', () => {
    const leaked = ifLeaked(m, 'orders-svc');
    expect(leaked[0]!.scope).toBe('payments:charge');
    // payments:charge: orders-svc and storefront (through it); payments:read: reporting only
    expect(leaked[0]!.reachedBy).toBe(2);
    expect(ifLeaked(m, 'reporting').map((x) => `${x.scope} ${x.reachedBy}`)).toEqual(['payments:read 1']);
    expect(ifLeaked(m, 'nobody')).toEqual([]);
  });
});
