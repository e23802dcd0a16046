import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { listenForChanges } from '../../src/db/changes.ts';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import {
  KeyDecryptionError,
  decryptPrivateJwk,
  encryptPrivateJwk,
  ensureSigningKeys,
  listSigningKeys,
  loadKeyring,
  pruneRetiredKeys,
  rotateSigningKey,
  type Keyring,
  type SigningAlg,
} from '../../src/keys/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

// oidc-provider ships no type declarations. A non-literal specifier keeps tsc
// from looking for them; the shape we use is spelled out here.
interface ProviderLike {
  callback(): Parameters<typeof request>[0];
}
type ProviderClass = new (issuer: string, configuration: Record<string, unknown>) => ProviderLike;
const OIDC_PROVIDER: string = 'oidc-provider';
const loadProvider = async () => ((await import(OIDC_PROVIDER)) as { default: ProviderClass }).default;

const kek = randomBytes(32);
const wrongKek = randomBytes(32);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

let tdb: TestDatabase;
let handle: DbHandle;

beforeAll(async () => {
  tdb = await createTestDatabase();
  handle = openDb({ url: tdb.url });
});

afterAll(async () => {
  await handle?.close();
  await tdb?.drop();
});

const clearKeys = () => handle.prisma.signingKey.deleteMany();
const later = (d: Date, seconds: number) => new Date(d.getTime() + seconds * 1000);
const keysOf = (ring: Keyring, alg: string) => ring.jwks.keys.filter((k) => k.alg === alg);

async function countByAlg(): Promise<Record<string, number>> {
  const rows = await handle.prisma.signingKey.groupBy({ by: ['alg'], _count: { _all: true } });
  return Object.fromEntries(rows.map((r) => [r.alg, r._count._all]));
}

describe('encryption at rest', () => {
  const jwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: 'pub', d: 'secret-material', kid: 'k1' };

  it('round-trips with the same KEK and kid, with a fresh IV each time', () => {
    const blob = encryptPrivateJwk(jwk, kek, 'k1');
    expect(blob).toMatch(/^v1\.[\w-]{16}\.[\w-]{22}\.[\w-]+$/);
    expect(blob).not.toContain('secret-material');
    expect(decryptPrivateJwk(blob, kek, 'k1')).toEqual(jwk);
    expect(encryptPrivateJwk(jwk, kek, 'k1')).not.toBe(blob);
  });

  it('rejects a wrong KEK, another kid, a tampered or malformed blob', () => {
    const blob = encryptPrivateJwk(jwk, kek, 'k1');
    const [v, iv, tag, ct] = blob.split('.') as [string, string, string, string];
    const flipped = Buffer.from(ct, 'base64url');
    flipped[0]! ^= 1;
    const cases = [
      () => decryptPrivateJwk(blob, wrongKek, 'k1'),
      () => decryptPrivateJwk(blob, kek, 'k2'),
      () => decryptPrivateJwk([v, iv, tag, flipped.toString('base64url')].join('.'), kek, 'k1'),
      () => decryptPrivateJwk([v, iv, Buffer.alloc(16).toString('base64url'), ct].join('.'), kek, 'k1'),
      () => decryptPrivateJwk('v2' + blob.slice(2), kek, 'k1'),
      () => decryptPrivateJwk('garbage', kek, 'k1'),
    ];
    for (const fn of cases) expect(fn).toThrow(KeyDecryptionError);
    expect(() => decryptPrivateJwk(blob, wrongKek, 'k1')).toThrow(
      'cannot decrypt signing key k1: KEY_ENCRYPTION_KEY is wrong or the key was tampered with',
    );
  });

  it('refuses a KEK that is not 32 bytes', () => {
    expect(() => encryptPrivateJwk(jwk, randomBytes(16), 'k1')).toThrow(/32 bytes/);
  });
});

describe('ensureSigningKeys', () => {
  beforeEach(clearKeys);

  it('creates one RS256, ES256 and EdDSA key even when three instances start at once', async () => {
    const handles = [0, 1, 2].map(() => openDb({ url: tdb.url }));
    try {
      const results = await Promise.all(handles.map((h) => ensureSigningKeys(h.prisma, kek)));
      expect(results.flatMap((r) => r.created.map((c) => c.alg)).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
    expect(await countByAlg()).toEqual({ RS256: 1, ES256: 1, EdDSA: 1 });
    expect(await ensureSigningKeys(handle.prisma, kek)).toEqual({ created: [] });
    expect(await countByAlg()).toEqual({ RS256: 1, ES256: 1, EdDSA: 1 });
  });

  it('creates only the algs asked for, and the missing ones later', async () => {
    await ensureSigningKeys(handle.prisma, kek, { algs: ['ES256'] });
    expect(await countByAlg()).toEqual({ ES256: 1 });
    const { created } = await ensureSigningKeys(handle.prisma, kek);
    expect(created.map((c) => c.alg).sort()).toEqual(['EdDSA', 'RS256']);
  });

  it('stores private keys encrypted: no private member or value anywhere in the row', async () => {
    await ensureSigningKeys(handle.prisma, kek);
    const ring = await loadKeyring(handle.prisma, kek);
    const rows = await handle.prisma.$queryRaw<Record<string, unknown>[]>`SELECT * FROM signing_keys`;
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const text = JSON.stringify(row);
      expect(text).not.toContain('"d"');
      const publicJwk = row.public_jwk as Record<string, unknown>;
      for (const m of PRIVATE_MEMBERS) expect(publicJwk).not.toHaveProperty(m);
      expect(publicJwk).toMatchObject({ kid: row.kid, alg: row.alg, use: 'sig' });
      expect(row.private_jwk_encrypted).toMatch(/^v1\./);
      const priv = ring.jwks.keys.find((k) => k.kid === row.kid)!;
      for (const m of PRIVATE_MEMBERS) if (priv[m as keyof JWK]) expect(text).not.toContain(priv[m as keyof JWK]);
    }
  });

  it('with a wrong KEK fails with KeyDecryptionError and creates nothing', async () => {
    await ensureSigningKeys(handle.prisma, kek, { algs: ['RS256'] });
    await expect(ensureSigningKeys(handle.prisma, wrongKek)).rejects.toThrow(KeyDecryptionError);
    expect(await countByAlg()).toEqual({ RS256: 1 });
    await expect(loadKeyring(handle.prisma, wrongKek)).rejects.toThrow(KeyDecryptionError);
    await expect(
      rotateSigningKey(handle.prisma, wrongKek, { leadSeconds: 0, maxTokenTtlSeconds: 60 }),
    ).rejects.toThrow(KeyDecryptionError);
    expect(await countByAlg()).toEqual({ RS256: 1 });
  });
});

describe('rotation', () => {
  beforeEach(async () => {
    await clearKeys();
    await ensureSigningKeys(handle.prisma, kek);
  });

  it('publishes the new key at once, signs with it after the lead, unpublishes the old one after the max token TTL', async () => {
    const t0 = new Date();
    const oldKid = keysOf(await loadKeyring(handle.prisma, kek, t0), 'RS256')[0]!.kid!;
    const rotated = await rotateSigningKey(handle.prisma, kek, { leadSeconds: 600, maxTokenTtlSeconds: 3600, now: t0 });
    expect(rotated).toEqual({ kid: expect.any(String), alg: 'RS256', activatesAt: later(t0, 600) });
    const publishUntil = later(rotated.activatesAt, 3600);

    // Before activation: old signs, new is verify-only.
    for (const now of [t0, new Date(rotated.activatesAt.getTime() - 1)]) {
      const ring = await loadKeyring(handle.prisma, kek, now);
      expect(keysOf(ring, 'RS256').map((k) => [k.kid, k.key_ops])).toEqual([
        [oldKid, undefined],
        [rotated.kid, ['verify']],
      ]);
      expect(ring.nextChangeAt).toEqual(rotated.activatesAt);
    }
    const statusAt = async (now: Date) =>
      Object.fromEntries((await listSigningKeys(handle.prisma, now)).map((k) => [k.kid, k.status]));
    expect(await statusAt(t0)).toMatchObject({ [oldKid]: 'active', [rotated.kid]: 'pending' });

    // From activation: new signs, old is verify-only until publishUntil.
    const ring = await loadKeyring(handle.prisma, kek, rotated.activatesAt);
    expect(keysOf(ring, 'RS256').map((k) => [k.kid, k.key_ops])).toEqual([
      [rotated.kid, undefined],
      [oldKid, ['verify']],
    ]);
    expect(ring.nextChangeAt).toEqual(publishUntil);
    expect(await statusAt(rotated.activatesAt)).toMatchObject({ [oldKid]: 'retired', [rotated.kid]: 'active' });

    // At publishUntil the old key is gone; nothing else is scheduled.
    const after = await loadKeyring(handle.prisma, kek, publishUntil);
    expect(keysOf(after, 'RS256').map((k) => [k.kid, k.key_ops])).toEqual([[rotated.kid, undefined]]);
    expect(after.publicJwks.keys.map((k) => k.kid)).not.toContain(oldKid);
    expect(after.nextChangeAt).toBeUndefined();
    expect(await statusAt(publishUntil)).toMatchObject({ [oldKid]: 'expired', [rotated.kid]: 'active' });

    // Other algs are untouched throughout.
    expect(keysOf(after, 'ES256')).toHaveLength(1);
    expect(keysOf(after, 'EdDSA')).toHaveLength(1);

    // The cleanup step deletes the old key only once publishUntil has passed (by the database's clock).
    expect(await pruneRetiredKeys(handle.prisma, 10)).toBe(0);
    await handle.prisma.$executeRaw`UPDATE signing_keys SET publish_until = now() - interval '1 second' WHERE kid = ${oldKid}`;
    expect(await pruneRetiredKeys(handle.prisma, 10)).toBe(1);
    expect(await countByAlg()).toEqual({ RS256: 1, ES256: 1, EdDSA: 1 });
  });

  it('with leadSeconds 0 signs with the new key at once', async () => {
    const before = keysOf(await loadKeyring(handle.prisma, kek), 'ES256')[0]!;
    const rotated = await rotateSigningKey(handle.prisma, kek, { alg: 'ES256', leadSeconds: 0, maxTokenTtlSeconds: 300 });
    const ring = await loadKeyring(handle.prisma, kek, rotated.activatesAt);
    expect(keysOf(ring, 'ES256').map((k) => [k.kid, k.key_ops])).toEqual([
      [rotated.kid, undefined],
      [before.kid, ['verify']],
    ]);
    expect(ring.nextChangeAt).toEqual(later(rotated.activatesAt, 300));
    const list = await listSigningKeys(handle.prisma, rotated.activatesAt);
    expect(list.find((k) => k.kid === before.kid)).toMatchObject({
      status: 'retired',
      retiredAt: rotated.activatesAt,
      publishUntil: later(rotated.activatesAt, 300),
    });
  });

  it('a new rotation replaces a pending key and moves the retirement', async () => {
    const t0 = new Date();
    const [current] = keysOf(await loadKeyring(handle.prisma, kek, t0), 'RS256');
    const first = await rotateSigningKey(handle.prisma, kek, { leadSeconds: 600, maxTokenTtlSeconds: 60, now: t0 });
    const second = await rotateSigningKey(handle.prisma, kek, {
      leadSeconds: 300,
      maxTokenTtlSeconds: 60,
      now: later(t0, 10),
    });
    const list = await listSigningKeys(handle.prisma, later(t0, 10));
    const rs = list.filter((k) => k.alg === 'RS256');
    expect(rs.map((k) => [k.kid, k.status])).toEqual([
      [second.kid, 'pending'],
      [current!.kid, 'active'],
    ]);
    expect(rs.map((k) => k.kid)).not.toContain(first.kid);
    expect(rs[1]).toMatchObject({ retiredAt: second.activatesAt, publishUntil: later(second.activatesAt, 60) });
  });

  it('lists keys newest first with no key material', async () => {
    const rotated = await rotateSigningKey(handle.prisma, kek, { leadSeconds: 60, maxTokenTtlSeconds: 60 });
    const list = await listSigningKeys(handle.prisma);
    expect(list[0]!.kid).toBe(rotated.kid);
    for (const k of list) {
      expect(Object.keys(k).sort()).toEqual(['activatesAt', 'alg', 'createdAt', 'kid', 'publishUntil', 'retiredAt', 'status']);
    }
    expect(list.map((k) => k.status).sort()).toEqual(['active', 'active', 'active', 'pending']);
  });

  it('rejects a negative lead', async () => {
    await expect(rotateSigningKey(handle.prisma, kek, { leadSeconds: -1, maxTokenTtlSeconds: 60 })).rejects.toThrow(RangeError);
  });

  it('announces every written kid on the change feed', async () => {
    const feed = listenForChanges(tdb.url);
    const seen: string[] = [];
    feed.subscribe('key', (id) => seen.push(id));
    await feed.ready;
    try {
      const [current] = keysOf(await loadKeyring(handle.prisma, kek), 'EdDSA');
      const rotated = await rotateSigningKey(handle.prisma, kek, { alg: 'EdDSA', leadSeconds: 60, maxTokenTtlSeconds: 60 });
      await vi.waitFor(() => expect(seen).toEqual(expect.arrayContaining([rotated.kid, current!.kid])));
    } finally {
      await feed.close();
    }
  });
});

describe('the keyring in oidc-provider', () => {
  beforeAll(async () => {
    await clearKeys();
    await ensureSigningKeys(handle.prisma, kek);
    // A pending RS256 key is published alongside the one that signs.
    await rotateSigningKey(handle.prisma, kek, { leadSeconds: 600, maxTokenTtlSeconds: 600 });
  });

  it('serves every published key on /jwks, without private members', async () => {
    const ring = await loadKeyring(handle.prisma, kek);
    const Provider = await loadProvider();
    const provider = new Provider('http://localhost:3000', { jwks: ring.jwks });
    const res = await request(provider.callback()).get('/jwks').expect(200);
    const served = (res.body as { keys: JWK[] }).keys;
    expect(served.map((k) => k.kid)).toEqual(ring.publicJwks.keys.map((k) => k.kid));
    for (const k of served) for (const m of PRIVATE_MEMBERS) expect(k).not.toHaveProperty(m);
    for (const k of ring.publicJwks.keys) {
      for (const m of PRIVATE_MEMBERS) expect(k).not.toHaveProperty(m);
      expect(k).toMatchObject({ use: 'sig', kid: expect.any(String), alg: expect.any(String) });
    }
  });

  it.each<SigningAlg>(['RS256', 'ES256', 'EdDSA'])('signs %s tokens with the signing key, verifiable with publicJwks', async (alg) => {
    const ring = await loadKeyring(handle.prisma, kek);
    const [signing] = keysOf(ring, alg);
    expect(signing!.key_ops).toBeUndefined();

    // Signed by us with the private JWK …
    const token = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg, kid: signing!.kid })
      .sign(await importJWK(signing!, alg));
    await jwtVerify(token, createLocalJWKSet(ring.publicJwks));

    // … and by oidc-provider itself: a JWT access token from client_credentials.
    const Provider = await loadProvider();
    const provider = new Provider('http://localhost:3000', {
      jwks: ring.jwks,
      clients: [{ client_id: 'svc', client_secret: 'secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
      features: {
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:api',
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'read', accessTokenFormat: 'jwt', jwt: { sign: { alg } } }),
        },
      },
    });
    const res = await request(provider.callback())
      .post('/token')
      .auth('svc', 'secret')
      .type('form')
      .send({ grant_type: 'client_credentials', scope: 'read' })
      .expect(200);
    const accessToken = (res.body as { access_token: string }).access_token;
    expect(decodeProtectedHeader(accessToken)).toMatchObject({ alg, kid: signing!.kid });
    await jwtVerify(accessToken, createLocalJWKSet(ring.publicJwks));
  });
});
