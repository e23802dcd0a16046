// The access maps and policies of the example systems (retail, streaming,
// healthcare): each gatehouse.yaml applies and passes `gatehouse check`, its
// `gatehouse access-map` output is the committed access-map.txt shown in the
// walkthrough, and the walkthrough's refused change is refused, naming the
// policy, with nothing written.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from '../test/helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../test/helpers/db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export const REFUSED: Record<string, { args: string[]; policy: string; path: string }> = {
  retail: {
    args: ['clients', 'update', 'storefront', '--resource', 'https://orders.retail.example', '--resource', 'https://payments.retail.example', '--scope', 'orders:read orders:write payments:charge'],
    policy: 'only-orders-service-charges',
    path: 'sign-in via storefront -> https://payments.retail.example',
  },
  streaming: {
    args: ['clients', 'update', 'video-delivery', '--resource', 'https://accounts.streaming.example', '--resource', 'https://history.streaming.example', '--scope', 'accounts:plan history:append history:read'],
    policy: 'history-for-viewers-and-recommendations',
    path: '(a caller\'s token for https://video.streaming.example, served by video-delivery) -[exchange by video-delivery]-> https://history.streaming.example',
  },
  healthcare: {
    args: ['clients', 'update', 'billing-export', '--resource', 'https://billing.hospital.example', '--resource', 'https://ehr.hospital.example', '--scope', 'invoices:export invoices:read'],
    policy: 'dispensing-for-people',
    path: 'billing-export -[client_credentials]-> https://ehr.hospital.example -[exchange by ehr-service]-> https://pharmacy.hospital.example',
  },
};

describe.each(Object.keys(REFUSED))('the %s example', (name) => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  it('applies, passes check, shows the committed access map, and refuses the walkthrough change', async () => {
    db = await createTestDatabase();
    const file = path.join(here, name, 'gatehouse.yaml');
    const run = (...args: string[]) => cli(db!.url, args);

    const applied = await run('apply', '-f', file);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const checked = await run('check', '-f', file);
    expect(checked.stdout).toMatch(/^ok: /);
    expect(checked.code).toBe(0);

    const map = await run('access-map');
    expect(map.code).toBe(0);
    expect(map.stdout).toBe(readFileSync(path.join(here, name, 'access-map.txt'), 'utf8'));

    const before = (await run('export')).stdout;
    const refused = await run(...REFUSED[name]!.args);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`gatehouse: refused by policy '${REFUSED[name]!.policy}'`);
    expect(refused.stderr).toContain(REFUSED[name]!.path);
    expect((await run('export')).stdout).toBe(before);
  }, 120_000);
});
