// `gatehouse access-map` on a real database: the formats, --json, the
// filters, sensitive scopes from `resources create --sensitive`, and one-line
// errors for bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
const run = (...args: string[]) => cli(db.url, args);
const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';

beforeAll(async () => {
  db = await createTestDatabase();
  const steps = [
    ['resources', 'create', '--identifier', 'https://pay.test', '--scope', 'pay:charge pay:read', '--sensitive', 'pay:charge'],
    ['clients', 'create', '--id', 'orders-svc', '--name', 'Orders', '--grant', TE, '--resource', 'https://pay.test', '--scope', 'pay:charge'],
    ['resources', 'create', '--identifier', 'https://orders.test', '--scope', 'orders:write', '--served-by', 'orders-svc'],
    ['clients', 'create', '--id', 'shop', '--name', 'Shop', '--grant', 'client_credentials', '--resource', 'https://orders.test', '--scope', 'orders:write'],
    ['clients', 'create', '--id', 'old', '--name', 'Old', '--grant', 'client_credentials', '--resource', 'https://pay.test', '--scope', 'pay:read'],
    ['clients', 'update', 'old', '--disable'],
  ];
  for (const s of steps) {
    const r = await run(...s);
    expect(r.stderr, s.join(' ')).toBe('');
  }
}, 60_000);
afterAll(async () => {
  await db?.drop();
});

describe('gatehouse access-map', () => {
  it('prints the whole map as a sorted table; a disabled client reaches nothing', async () => {
    const r = await run('access-map');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '2 principals reach 2 scopes on 2 APIs (1 sensitive); longest exchange chain: 1',
        'PRINCIPAL          API                  SCOPE         SENSITIVE  CHAIN  PATH',
        "client:orders-svc  https://pay.test     pay:charge    yes        1      (a caller's token for https://orders.test, served by orders-svc) -[exchange by orders-svc]-> https://pay.test",
        'client:shop        https://orders.test  orders:write  -          0      shop -[client_credentials]-> https://orders.test',
        'client:shop        https://pay.test     pay:charge    yes        1      shop -[client_credentials]-> https://orders.test -[exchange by orders-svc]-> https://pay.test',
        '',
      ].join('\n'),
    );
    expect(r.stdout).not.toContain('old');
  });

  it('--if-leaked ranks sensitive scopes first; --json carries the paths', async () => {
    const r = await run('access-map', '--if-leaked', 'shop', '--json');
    const v = r.json<{ entries: { scope: string; sensitive: boolean; chain: number; path: { via: string }[] }[] }>();
    expect(v.entries.map((e) => [e.scope, e.sensitive, e.chain])).toEqual([
      ['pay:charge', true, 1],
      ['orders:write', false, 0],
    ]);
    expect(v.entries[0]!.path.map((h) => h.via)).toEqual(['client_credentials', 'exchange']);
  });

  it('--api, --client and the mermaid and dot formats', async () => {
    const who = await run('access-map', '--api', 'https://pay.test', '--scope', 'pay:charge', '--json');
    expect(who.json<{ entries: { principal: string }[] }>().entries.map((e) => e.principal)).toEqual(['client:orders-svc', 'client:shop']);
    expect((await run('access-map', '--client', 'orders-svc')).stdout).toContain('client:orders-svc');
    expect((await run('access-map', '--format', 'mermaid')).stdout).toMatch(/^flowchart LR\n/);
    expect((await run('access-map', '--format', 'dot')).stdout).toMatch(/^digraph access_map \{\n/);
  });

  it('bad input is one line', async () => {
    for (const [args, text] of [
      [['access-map', '--client', 'nobody'], "client 'nobody' not found"],
      [['access-map', '--format', 'png'], '--format must be one of: table, mermaid, dot'],
      [['access-map', '--client', 'shop', '--if-leaked', 'shop'], 'give at most one of client, api and ifLeaked'],
      [['resources', 'update', 'https://pay.test', '--sensitive', 'nope'], "invalid --sensitive: 'nope' is not a scope of this resource"],
    ] as const) {
      const r = await run(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
      expect(r.stderr).toContain(text);
    }
  });
});
