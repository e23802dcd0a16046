import type { RequestListener } from 'node:http';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db, type DbHandle } from '../../src/db/client.ts';
import {
  AdapterInputError,
  SecondUseError,
  createAdapterFactory,
  type AdapterConstructor,
  type ClientFinder,
  EXPIRY_GRACE_SECONDS,
} from '../../src/oidc/adapter.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const MODELS = [
  'Session',
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'Grant',
  'Interaction',
  'DeviceCode',
  'ReplayDetection',
  'PushedAuthorizationRequest',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
  'RegistrationAccessToken',
];

let tdb: TestDatabase;
let handle: DbHandle;
/** a second instance's pool on the same database */
let second: DbHandle;
let db: Db;
let Adapter: AdapterConstructor;

const uid = () => randomUUID();

async function expireNow(model: string, id: string): Promise<void> {
  await db.$executeRaw`UPDATE oidc_payloads SET expires_at = now() - interval '1 second' WHERE model = ${model} AND id = ${id}`;
}

async function rowCount(where: { model?: string; grantId?: string }): Promise<number> {
  const rows = await db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM oidc_payloads
    WHERE (${where.model ?? null}::text IS NULL OR model = ${where.model ?? null})
      AND (${where.grantId ?? null}::text IS NULL OR grant_id = ${where.grantId ?? null})`;
  return rows[0]!.n;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  handle = openDb({ url: tdb.url });
  second = openDb({ url: tdb.url });
  db = handle.prisma;
  Adapter = createAdapterFactory(handle);
});

afterAll(async () => {
  await handle?.close();
  await second?.close();
  await tdb?.drop();
});

describe.each(MODELS)('adapter contract: %s', (model) => {
  it('round-trips a payload through upsert and find', async () => {
    const a = new Adapter(model);
    const id = uid();
    const payload = { jti: id, kind: model, iat: 1, exp: 2, nested: { list: [1, 'two', null], flag: true }, text: 'ünïcödé 😀' };
    await a.upsert(id, payload, 60);
    expect(await a.find(id)).toEqual(payload);
  });

  it('stores expires_at = now() + expiresIn, and no expiry without expiresIn', async () => {
    const a = new Adapter(model);
    const withTtl = uid();
    const without = uid();
    await a.upsert(withTtl, { jti: withTtl }, 60);
    await a.upsert(without, { jti: without });
    const rows = await db.$queryRaw<{ id: string; secs: number | null }[]>`
      SELECT id, extract(epoch FROM expires_at - now())::float8 AS secs FROM oidc_payloads
      WHERE model = ${model} AND id IN (${withTtl}, ${without})`;
    const byId = new Map(rows.map((r) => [r.id, r.secs]));
    // device codes' rows outlive their exp by a grace period (expired_token, not "not found")
    const grace = EXPIRY_GRACE_SECONDS[model] ?? 0;
    expect(byId.get(withTtl)).toBeGreaterThan(30 + grace);
    expect(byId.get(withTtl)).toBeLessThanOrEqual(60 + grace);
    expect(byId.get(without)).toBeNull();
    expect(await a.find(without)).toEqual({ jti: without });
  });

  it('returns undefined for an unknown id', async () => {
    expect(await new Adapter(model).find(uid())).toBeUndefined();
  });

  it('keeps the same id apart in two models', async () => {
    const other = model === 'Session' ? 'Grant' : 'Session';
    const a = new Adapter(model);
    const b = new Adapter(other);
    const id = uid();
    await a.upsert(id, { which: model }, 60);
    await b.upsert(id, { which: other }, 60);
    expect(await a.find(id)).toEqual({ which: model });
    expect(await b.find(id)).toEqual({ which: other });
    await a.destroy(id);
    expect(await a.find(id)).toBeUndefined();
    expect(await b.find(id)).toEqual({ which: other });
  });

  it('does not return an expired row', async () => {
    const a = new Adapter(model);
    const id = uid();
    await a.upsert(id, { jti: id }, 60);
    await expireNow(model, id);
    expect(await a.find(id)).toBeUndefined();
    const zero = uid();
    await a.upsert(zero, { jti: zero }, 0);
    if (EXPIRY_GRACE_SECONDS[model]) expect(await a.find(zero)).toEqual({ jti: zero }); // oidc-provider checks exp itself
    else expect(await a.find(zero)).toBeUndefined();
  });

  it('consume marks the payload consumed (epoch seconds) as seen through find', async () => {
    const a = new Adapter(model);
    const id = uid();
    await a.upsert(id, { jti: id }, 60);
    expect((await a.find(id))?.consumed).toBeUndefined();
    const before = Math.floor(Date.now() / 1000) - 5;
    await a.consume(id);
    const found = await a.find(id);
    expect(typeof found?.consumed).toBe('number');
    expect(Number.isInteger(found?.consumed)).toBe(true);
    expect(found!.consumed!).toBeGreaterThanOrEqual(before);
    expect(found!.consumed!).toBeLessThan(before + 60);
    // a second consume, and one of a row that does not exist, lost: nothing to win
    await expect(a.consume(id)).rejects.toBeInstanceOf(SecondUseError);
    expect((await a.find(id))?.consumed).toBe(found!.consumed);
    await expect(a.consume(uid())).rejects.toBeInstanceOf(SecondUseError);
  });

  it('consume is won by exactly one of many concurrent callers, on two pools', async () => {
    const a = new Adapter(model);
    const b = new (createAdapterFactory(second))(model);
    for (let round = 0; round < 5; round++) {
      const id = uid();
      await a.upsert(id, { jti: id }, 60);
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => (i % 2 ? b : a).consume(id)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(SecondUseError);
    }
  });

  it('destroy removes the row', async () => {
    const a = new Adapter(model);
    const id = uid();
    await a.upsert(id, { jti: id }, 60);
    await a.destroy(id);
    expect(await a.find(id)).toBeUndefined();
    await expect(a.destroy(id)).resolves.toBeUndefined();
  });

  it('findByUid and findByUserCode find live rows of this model only', async () => {
    const a = new Adapter(model);
    const id = uid();
    const u = uid();
    const code = `CODE-${uid()}`;
    await a.upsert(id, { jti: id, uid: u, userCode: code }, 60);
    expect(await a.findByUid(u)).toEqual({ jti: id, uid: u, userCode: code });
    expect(await a.findByUserCode(code)).toEqual({ jti: id, uid: u, userCode: code });
    expect(await a.findByUid(uid())).toBeUndefined();
    expect(await a.findByUserCode(uid())).toBeUndefined();
    const other = new Adapter(model === 'Session' ? 'DeviceCode' : 'Session');
    expect(await other.findByUid(u)).toBeUndefined();
    expect(await other.findByUserCode(code)).toBeUndefined();

    await a.consume(id);
    expect((await a.findByUserCode(code))?.consumed).toEqual(expect.any(Number));

    await expireNow(model, id);
    expect(await a.findByUid(u)).toBeUndefined();
    expect(await a.findByUserCode(code)).toBeUndefined();
  });

  it('returns undefined, not an error, for ids PostgreSQL cannot hold', async () => {
    const a = new Adapter(model);
    expect(await a.find('a\0b')).toBeUndefined();
    expect(await a.findByUid('a\0b')).toBeUndefined();
    expect(await a.findByUserCode('a\0b')).toBeUndefined();
    await expect(a.consume('a\0b')).rejects.toBeInstanceOf(SecondUseError);
    await expect(a.destroy('a\0b')).resolves.toBeUndefined();
    await expect(a.revokeByGrantId('a\0b')).resolves.toBeUndefined();
  });

  it('refuses to store NUL characters or lone surrogates with a 400 invalid_request', async () => {
    const a = new Adapter(model);
    for (const payload of [{ params: { state: 'a\0b' } }, { ['k\0']: 1 }, { s: 'x\uD800' }, { grantId: 'g\0' }]) {
      const err = await a.upsert(uid(), payload, 60).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(AdapterInputError);
      expect(err).toMatchObject({ message: 'invalid_request', statusCode: 400, expose: true });
    }
    await expect(a.upsert('a\0b', {}, 60)).rejects.toBeInstanceOf(AdapterInputError);
  });

  if (model === 'ReplayDetection') {
    it('refuses a second upsert of a live id (replay), accepts it once the first expired', async () => {
      const a = new Adapter(model);
      const id = uid();
      await a.upsert(id, { iss: 'c1' }, 60);
      await expect(a.upsert(id, { iss: 'c1', again: true }, 60)).rejects.toMatchObject({
        message: 'invalid_request',
        error_description: 'replay detected',
      });
      expect(await a.find(id)).toEqual({ iss: 'c1' });
      await expireNow(model, id);
      await a.upsert(id, { iss: 'c1', again: true }, 60);
      expect(await a.find(id)).toEqual({ iss: 'c1', again: true });
    });

    it('lets exactly one of many concurrent upserts of one id through', async () => {
      const a = new Adapter(model);
      const id = uid();
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => a.upsert(id, { iss: 'c1' }, 60)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    });
  } else {
    it('upsert overwrites payload, indexes and expiry of an existing id', async () => {
      const a = new Adapter(model);
      const id = uid();
      const g1 = uid();
      const g2 = uid();
      await a.upsert(id, { v: 1, grantId: g1, uid: 'u1', userCode: 'c1-' + id }, 60);
      await a.upsert(id, { v: 2, grantId: g2, uid: 'u2-' + id }, 120);
      expect(await a.find(id)).toEqual({ v: 2, grantId: g2, uid: 'u2-' + id });
      expect(await a.findByUserCode('c1-' + id)).toBeUndefined();
      expect(await a.findByUid('u2-' + id)).toEqual({ v: 2, grantId: g2, uid: 'u2-' + id });
      expect(await rowCount({ grantId: g1 })).toBe(0);
      expect(await rowCount({ grantId: g2 })).toBe(1);
    });

    it('an upsert does not un-consume a live row', async () => {
      const a = new Adapter(model);
      const id = uid();
      await a.upsert(id, { v: 1 }, 60);
      await a.consume(id);
      await a.upsert(id, { v: 2 }, 60);
      const found = await a.find(id);
      expect(found).toMatchObject({ v: 2, consumed: expect.any(Number) });
    });
  }
});

describe('revokeByGrantId', () => {
  it('removes every row of that grant across models and leaves other rows', async () => {
    const grant = uid();
    const otherGrant = uid();
    const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];
    const ids = new Map<string, string>();
    for (const m of models) {
      const id = uid();
      ids.set(m, id);
      await new Adapter(m).upsert(id, { jti: id, grantId: grant }, 60);
    }
    const keepId = uid();
    await new Adapter('AccessToken').upsert(keepId, { jti: keepId, grantId: otherGrant }, 60);
    const noGrant = uid();
    await new Adapter('Session').upsert(noGrant, { jti: noGrant }, 60);

    await new Adapter('RefreshToken').revokeByGrantId(grant);

    expect(await rowCount({ grantId: grant })).toBe(0);
    for (const [m, id] of ids) expect(await new Adapter(m).find(id)).toBeUndefined();
    expect(await new Adapter('AccessToken').find(keepId)).toEqual({ jti: keepId, grantId: otherGrant });
    expect(await new Adapter('Session').find(noGrant)).toEqual({ jti: noGrant });
  });

  it('works when oidc-provider calls it from every token model at once', async () => {
    const grant = uid();
    for (const m of ['AccessToken', 'RefreshToken']) await new Adapter(m).upsert(uid(), { grantId: grant }, 60);
    await Promise.all(
      ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode'].map((m) => new Adapter(m).revokeByGrantId(grant)),
    );
    expect(await rowCount({ grantId: grant })).toBe(0);
    // a later call runs its own statement
    await new Adapter('AccessToken').upsert(uid(), { grantId: grant }, 60);
    await new Adapter('AccessToken').revokeByGrantId(grant);
    expect(await rowCount({ grantId: grant })).toBe(0);
  });
});

describe('Client model', () => {
  const metadata = { client_id: 'c1', client_secret: 's'.repeat(32), grant_types: ['client_credentials'] };
  const finder: ClientFinder = async (id) => (id === 'c1' ? { ...metadata } : undefined);

  it('delegates find to clientFinder and never writes', async () => {
    const ClientAdapter = createAdapterFactory(handle, { clientFinder: finder });
    const a = new ClientAdapter('Client');
    expect(await a.find('c1')).toEqual(metadata);
    expect(await a.find('nope')).toBeUndefined();
    await a.upsert('c2', { client_id: 'c2' }, 60);
    await a.consume('c1');
    await a.destroy('c1');
    await a.revokeByGrantId('c1');
    expect(await rowCount({ model: 'Client' })).toBe(0);
    expect(await a.find('c1')).toEqual(metadata);
    expect(await a.findByUid('c1')).toBeUndefined();
  });

  it('finds no client without a clientFinder', async () => {
    expect(await new Adapter('Client').find('c1')).toBeUndefined();
  });
});

// oidc-provider ships no type declarations: load it through a non-literal
// specifier (typed here by what this test uses).
interface ProviderLike {
  callback(): RequestListener;
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => ProviderLike;
async function loadProvider(): Promise<ProviderConstructor> {
  const specifier: string = 'oidc-provider';
  const mod = (await import(specifier)) as { default: ProviderConstructor };
  return mod.default;
}

describe('with oidc-provider', () => {
  it('issues a client_credentials token stored through the adapter', async () => {
    const Provider = await loadProvider();
    const secret = 's'.repeat(32);
    const provider = new Provider('http://localhost:3000', {
      adapter: createAdapterFactory(handle, {
        clientFinder: async (id) =>
          id === 'c1'
            ? { client_id: 'c1', client_secret: secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }
            : undefined,
      }),
      features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
    });
    const before = await rowCount({ model: 'ClientCredentials' });

    const res = await request(provider.callback())
      .post('/token')
      .auth('c1', secret)
      .type('form')
      .send({ grant_type: 'client_credentials' });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer' });
    const token = res.body.access_token as string;
    expect(await rowCount({ model: 'ClientCredentials' })).toBe(before + 1);
    const stored = await new Adapter('ClientCredentials').find(token);
    expect(stored).toMatchObject({ jti: token, clientId: 'c1', kind: 'ClientCredentials' });

    const wrong = await request(provider.callback())
      .post('/token')
      .auth('c1', 'x'.repeat(32))
      .type('form')
      .send({ grant_type: 'client_credentials' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
  });

  it('answers NUL characters in parameters with an OAuth error, not a 5xx', async () => {
    const Provider = await loadProvider();
    const secret = 's'.repeat(32);
    const provider = new Provider('http://localhost:3000', {
      adapter: createAdapterFactory(handle, {
        clientFinder: async (id) =>
          id === 'c1'
            ? { client_id: 'c1', client_secret: secret, grant_types: ['refresh_token', 'authorization_code'], redirect_uris: ['https://rp.example/cb'] }
            : undefined,
      }),
      features: { devInteractions: { enabled: false } },
    });
    const app = provider.callback();

    // a token value is looked up (find) …
    const res = await request(app)
      .post('/token')
      .auth('c1', secret)
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: 'ab\0cd' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');

    // … and authorization request parameters are stored (Interaction upsert)
    const before = await rowCount({ model: 'Interaction' });
    const auth = await request(app).get('/auth').query({
      client_id: 'c1',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: 'https://rp.example/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      state: 'a\0b',
    });
    // oidc-provider renders it (HTML error page) instead of redirecting
    expect(auth.status).toBe(400);
    expect(auth.text).toContain('invalid_request');
    expect(await rowCount({ model: 'Interaction' })).toBe(before);
  });
});
