import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSigningKeys } from '../../src/keys/index.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { cli } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { TEST_KEK } from '../helpers/env.ts';

describe('gatehouse keys', () => {
  let db: TestDatabase;
  let h: DbHandle;
  beforeAll(async () => {
    db = await createTestDatabase();
    h = openDb({ url: db.url });
    await ensureSigningKeys(h.prisma, Buffer.from(TEST_KEK, 'base64'));
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('lists the three active keys, without private material', async () => {
    const r = await cli(db.url, ['keys', 'list', '--json']);
    expect(r.code).toBe(0);
    const keys = r.json<{ kid: string; alg: string; status: string }[]>();
    expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    expect(keys.every((k) => k.status === 'active')).toBe(true);
    expect(r.stdout).not.toMatch(/"d"|private/);
    const human = await cli(db.url, ['keys', 'list']);
    expect(human.stdout).toMatch(/^KID\s+ALG\s+STATUS/);
  });

  it('rotate publishes a pending key that signs after the lead time', async () => {
    const before = Date.now();
    const r = await cli(db.url, ['keys', 'rotate', '--lead', '600', '--json']);
    expect(r.code).toBe(0);
    const out = r.json<{ kid: string; alg: string; activatesAt: string }>();
    expect(out.alg).toBe('RS256');
    expect(Object.keys(out).sort()).toEqual(['activatesAt', 'alg', 'kid']);
    const at = Date.parse(out.activatesAt);
    expect(at).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    const keys = (await cli(db.url, ['keys', 'list', '--json'])).json<{ kid: string; status: string }[]>();
    expect(keys.find((k) => k.kid === out.kid)?.status).toBe('pending');
  });

  it('rotate --lead 0 signs at once and retires the previous key', async () => {
    const r = await cli(db.url, ['keys', 'rotate', '--lead', '0', '--alg', 'ES256', '--json']);
    expect(r.code).toBe(0);
    const out = r.json<{ kid: string }>();
    const keys = (await cli(db.url, ['keys', 'list', '--json'])).json<{ kid: string; alg: string; status: string }[]>();
    const es = keys.filter((k) => k.alg === 'ES256');
    expect(es.find((k) => k.kid === out.kid)?.status).toBe('active');
    expect(es.filter((k) => k.status === 'retired')).toHaveLength(1);
  });

  it('records an audit event for a rotation', async () => {
    const r = await cli(db.url, ['audit', 'list', '--action', 'key.rotate', '--json']);
    expect(r.code).toBe(0);
    expect(r.json<{ items: unknown[] }>().items.length).toBeGreaterThanOrEqual(2);
  });

  it.each([
    [['keys', 'rotate', '--lead=-1'], /--lead must be a whole number/],
    [['keys', 'rotate', '--lead', 'soon'], /--lead must be a whole number/],
    [['keys', 'rotate', '--alg', 'HS256'], /--alg must be one of RS256, ES256, EdDSA/],
    [['keys', 'list', 'extra'], /unexpected argument 'extra'/],
  ])('%j fails with one line', async (args, message) => {
    const r = await cli(db.url, args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
