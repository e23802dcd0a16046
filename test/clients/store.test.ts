import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../src/db/client.ts';
import { listenForChanges, type ChangeFeed } from '../../src/db/changes.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../src/kernel/errors.ts';
import { createClientRegistry } from '../../src/clients/registry.ts';
import { CLIENT_ID } from '../../src/kernel/validation.ts';
import { digestSecret, generateClientSecret, secretMatches, verifyClientSecret } from '../../src/clients/secrets.ts';
import {
  createClient,
  deleteClient,
  generateClientId,
  getClient,
  getClientRecord,
  listClients,
  rotateClientSecret,
  updateClient,
  type ClientInput,
} from '../../src/clients/store.ts';
import { ADMIN_RESOURCE, createResource, ensureBuiltInResources } from '../../src/resources/store.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

async function eventually(fn: () => Promise<boolean>, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const JWK = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

describe('secrets', () => {
  it('are 256-bit base64url values, stored as sha-256 hex', () => {
    const s = generateClientSecret();
    expect(s).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(s, 'base64url')).toHaveLength(32);
    expect(generateClientSecret()).not.toBe(s);
    expect(digestSecret(s)).toMatch(/^[0-9a-f]{64}$/);
    expect(secretMatches(s, digestSecret(s))).toBe(true);
    expect(secretMatches(`${s}x`, digestSecret(s))).toBe(false);
    expect(secretMatches(s, 'short')).toBe(false);
  });

  it('verifyClientSecret accepts the previous secret only until it expires', () => {
    const oldS = generateClientSecret();
    const newS = generateClientSecret();
    const now = new Date('2030-01-01T00:00:00Z');
    const record = {
      secretDigest: digestSecret(newS),
      previousSecretDigest: digestSecret(oldS),
      previousSecretExpiresAt: new Date(now.getTime() + 60_000),
    };
    expect(verifyClientSecret(record, newS, now)).toBe('current');
    expect(verifyClientSecret(record, oldS, now)).toBe('previous');
    expect(verifyClientSecret(record, oldS, new Date(now.getTime() + 60_000))).toBe(false);
    expect(verifyClientSecret(record, 'wrong', now)).toBe(false);
    expect(verifyClientSecret({ secretDigest: null, previousSecretDigest: null, previousSecretExpiresAt: null }, newS, now)).toBe(false);
  });
});

describe('client ids', () => {
  it('generated ids are 22 characters and valid client ids (never starting with - or _)', () => {
    for (let i = 0; i < 2_000; i++) expect(generateClientId()).toMatch(CLIENT_ID);
    expect(generateClientId()).toHaveLength(22);
  });
});

describe('client store', () => {
  let tdb: TestDatabase;
  let h: DbHandle;
  beforeAll(async () => {
    tdb = await createTestDatabase();
    h = openDb({ url: tdb.url, poolSize: 4 });
    await ensureBuiltInResources(h.prisma);
    await createResource(h.prisma, { identifier: 'https://orders.example', scopes: ['orders:read', 'orders:write'] });
  });
  afterAll(async () => {
    await h?.close();
    await tdb?.drop();
  });
  const db = () => h.prisma;
  const count = () => db().client.count();
  const web: ClientInput = { name: 'Web', grants: ['authorization_code', 'refresh_token'], redirectUris: ['https://app.example/cb'] };

  describe('input PostgreSQL cannot hold', () => {
    it('a NUL character in any string is a ValidationError naming the field, not a database error', async () => {
      const before = await count();
      await expect(createClient(db(), { ...web, name: 'We\u0000b' })).rejects.toThrow(/^invalid name: /);
      await expect(createClient(db(), { ...web, name: 'ok', redirectUris: ['https://app.example/cb\u0000'] })).rejects.toBeInstanceOf(ValidationError);
      await expect(createResource(db(), { identifier: 'https://nul.example', name: 'a\u0000b', scopes: ['x'] })).rejects.toBeInstanceOf(ValidationError);
      expect(await count()).toBe(before);
    });
    it('deeply nested input is a ValidationError, not a stack overflow', async () => {
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 10_000; i++) deep = { a: deep };
      const key = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', nested: deep };
      const err = await createClient(db(), { name: 'deep', grants: ['client_credentials'], authMethod: 'private_key_jwt', jwks: { keys: [key] } as never }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(/^invalid jwks: /);
    });
  });

  describe('create', () => {
    it('generates an id and a secret for a confidential client; stores only the digest', async () => {
      const { client, clientSecret } = await createClient(db(), { ...web, scopes: ['openid', 'orders:read'], resources: ['https://orders.example'] });
      expect(client.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(client).toMatchObject({
        name: 'Web',
        public: false,
        authMethod: 'client_secret_basic',
        grants: ['authorization_code', 'refresh_token'],
        hasSecret: true,
        disabled: false,
        version: 1,
      });
      expect(JSON.stringify(client)).not.toMatch(/digest/i);
      expect(clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const [raw] = await db().$queryRaw<{ secret_digest: string }[]>`SELECT secret_digest FROM clients WHERE id = ${client.id}`;
      expect(raw!.secret_digest).toBe(digestSecret(clientSecret!));
      expect(JSON.stringify(await db().$queryRaw`SELECT * FROM clients WHERE id = ${client.id}`)).not.toContain(clientSecret!);
      const record = await getClientRecord(db(), client.id);
      expect(verifyClientSecret(record!, clientSecret!)).toBe('current');
    });

    it('public clients use none and get no secret', async () => {
      const { client, clientSecret } = await createClient(db(), { ...web, id: 'spa', public: true });
      expect(client).toMatchObject({ id: 'spa', public: true, authMethod: 'none', hasSecret: false });
      expect(clientSecret).toBeUndefined();
    });

    it('private_key_jwt clients get no secret', async () => {
      const r = await createClient(db(), { name: 'k', grants: ['client_credentials'], authMethod: 'private_key_jwt', jwks: { keys: [JWK] } });
      expect(r.clientSecret).toBeUndefined();
      expect(r.client.jwks).toEqual({ keys: [JWK] });
    });

    it('may name the built-in admin API among its resources', async () => {
      const r = await createClient(db(), { name: 'admin', grants: ['client_credentials'], scopes: ['gatehouse:admin'], resources: [ADMIN_RESOURCE] });
      expect(r.client.resources).toEqual([ADMIN_RESOURCE]);
    });

    it.each<[string, Record<string, unknown>, string, RegExp?]>([
      ['missing name', { grants: ['client_credentials'] }, 'name', /is required/],
      ['empty name', { name: ' ', grants: ['client_credentials'] }, 'name'],
      ['no grants', { name: 'x', grants: [] }, 'grants'],
      ['unknown grant', { name: 'x', grants: ['password'] }, 'grants', /'password' is not a grant type Gatehouse serves/],
      ['auth code without redirect URI', { name: 'x', grants: ['authorization_code'] }, 'redirectUris'],
      ['http redirect URI', { ...web, redirectUris: ['http://app.example/cb'] }, 'redirectUris', /https/],
      ['relative redirect URI', { ...web, redirectUris: ['/cb'] }, 'redirectUris'],
      ['redirect URI with fragment', { ...web, redirectUris: ['https://app.example/cb#x'] }, 'redirectUris', /fragment/],
      ['javascript: redirect URI', { ...web, redirectUris: ['javascript:alert(1)'] }, 'redirectUris'],
      ['bad post-logout URI', { ...web, postLogoutRedirectUris: ['ftp://x/'] }, 'postLogoutRedirectUris'],
      ['public client with a secret method', { ...web, public: true, authMethod: 'client_secret_basic' }, 'authMethod', /public/],
      ['confidential client with none', { ...web, authMethod: 'none' }, 'authMethod', /only for public/],
      ['public client_credentials', { name: 'x', public: true, grants: ['client_credentials'] }, 'grants'],
      ['private_key_jwt without keys', { name: 'x', grants: ['client_credentials'], authMethod: 'private_key_jwt' }, 'jwks'],
      ['jwks and jwksUri', { name: 'x', grants: ['client_credentials'], authMethod: 'private_key_jwt', jwks: { keys: [JWK] }, jwksUri: 'https://k.example/jwks' }, 'jwksUri'],
      ['http jwksUri', { name: 'x', grants: ['client_credentials'], authMethod: 'private_key_jwt', jwksUri: 'http://k.example/jwks' }, 'jwksUri'],
      ['private JWK', { name: 'x', grants: ['client_credentials'], authMethod: 'private_key_jwt', jwks: { keys: [{ ...JWK, d: 'secret' }] } }, 'jwks', /private/],
      ['unknown resource', { name: 'x', grants: ['client_credentials'], resources: ['https://nope.example'] }, 'resources', /unknown resource/],
      ['bad scope', { name: 'x', grants: ['client_credentials'], scopes: ['a"b'] }, 'scopes'],
      ['bad id', { name: 'x', id: 'has space', grants: ['client_credentials'] }, 'id'],
      ['a secret', { name: 'x', grants: ['client_credentials'], secret: 'hunter2' }, 'secret', /generated by Gatehouse/],
      ['a client_secret', { name: 'x', grants: ['client_credentials'], client_secret: 'hunter2' }, 'client_secret', /generated by Gatehouse/],
      ['an unknown field', { name: 'x', grants: ['client_credentials'], colour: 'red' }, 'colour', /unknown field/],
      ['a bad ttl', { name: 'x', grants: ['client_credentials'], accessTokenTtl: 5 }, 'accessTokenTtl'],
      ['refresh_token alone', { name: 'x', grants: ['refresh_token'] }, 'grants'],
    ])('refuses %s (field %s), creating nothing', async (_label, input, field, message) => {
      const before = await count();
      const err = await createClient(db(), input as ClientInput).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
      expect((err as Error).message).not.toContain('\n');
      if (message) expect((err as Error).message).toMatch(message);
      expect(await count()).toBe(before);
    });

    it('allows http redirect URIs on loopback and private-use schemes', async () => {
      const r = await createClient(db(), {
        name: 'native',
        public: true,
        grants: ['authorization_code'],
        redirectUris: ['http://localhost:8080/cb', 'http://127.0.0.1/cb', 'http://[::1]:3000/cb', 'com.example.app:/oauth'],
      });
      expect(r.client.redirectUris).toHaveLength(4);
    });

    it('refuses a taken id', async () => {
      const before = await count();
      await expect(createClient(db(), { ...web, id: 'spa', public: true })).rejects.toThrow(ConflictError);
      expect(await count()).toBe(before);
    });
  });

  describe('update, delete, list', () => {
    it('replaces lists, bumps the version and checks the merged client', async () => {
      const { client } = await createClient(db(), { ...web, id: 'u1' });
      const r = await updateClient(db(), 'u1', { redirectUris: ['https://new.example/cb'], requireDpop: true });
      expect(r.client).toMatchObject({ redirectUris: ['https://new.example/cb'], requireDpop: true, version: client.version + 1 });
      expect(r.clientSecret).toBeUndefined();
      await expect(updateClient(db(), 'u1', { redirectUris: [] })).rejects.toMatchObject({ field: 'redirectUris' });
      await expect(updateClient(db(), 'u1', { authMethod: 'none' })).rejects.toMatchObject({ field: 'authMethod' });
      await expect(updateClient(db(), 'u1', { id: 'u2' })).rejects.toMatchObject({ field: 'id' });
      await expect(updateClient(db(), 'u1', { secret: 'x' } as never)).rejects.toMatchObject({ field: 'secret' });
      expect((await getClient(db(), 'u1')).version).toBe(2);
    });

    it('clears optional values with null and disables / enables', async () => {
      await updateClient(db(), 'u1', { backchannelLogoutUri: 'https://app.example/bcl', accessTokenTtl: 60 });
      const r = await updateClient(db(), 'u1', { backchannelLogoutUri: null, accessTokenTtl: null, disabled: true });
      expect(r.client).toMatchObject({ backchannelLogoutUri: null, accessTokenTtl: null, disabled: true });
      expect((await updateClient(db(), 'u1', { disabled: false })).client.disabled).toBe(false);
    });

    it('optimistic concurrency: a stale expectedVersion is a conflict and changes nothing', async () => {
      const v = (await getClient(db(), 'u1')).version;
      await updateClient(db(), 'u1', { name: 'first' }, { expectedVersion: v });
      const err = await updateClient(db(), 'u1', { name: 'second' }, { expectedVersion: v }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((await getClient(db(), 'u1')).name).toBe('first');
      await expect(deleteClient(db(), 'u1', { expectedVersion: v })).rejects.toThrow(ConflictError);
    });

    it('switching to public drops the secret; switching back generates a new one', async () => {
      const { clientSecret: first } = await createClient(db(), { ...web, id: 'sw' });
      const pub = await updateClient(db(), 'sw', { public: true });
      expect(pub.client).toMatchObject({ public: true, authMethod: 'none', hasSecret: false });
      expect((await getClientRecord(db(), 'sw'))!.secretDigest).toBeNull();
      const conf = await updateClient(db(), 'sw', { public: false });
      expect(conf.client).toMatchObject({ public: false, authMethod: 'client_secret_basic', hasSecret: true });
      expect(conf.clientSecret).toBeDefined();
      expect(conf.clientSecret).not.toBe(first);
      expect(verifyClientSecret((await getClientRecord(db(), 'sw'))!, conf.clientSecret!)).toBe('current');
    });

    it('unknown ids are NotFoundError', async () => {
      await expect(getClient(db(), 'nope')).rejects.toThrow("client 'nope' not found");
      await expect(updateClient(db(), 'nope', { name: 'x' })).rejects.toThrow(NotFoundError);
      await expect(deleteClient(db(), 'nope')).rejects.toThrow(NotFoundError);
      await expect(rotateClientSecret(db(), 'nope', { graceSeconds: 0 })).rejects.toThrow(NotFoundError);
      expect(await getClientRecord(db(), 'nope')).toBeUndefined();
    });

    it('deletes', async () => {
      await deleteClient(db(), 'sw');
      expect(await getClientRecord(db(), 'sw')).toBeUndefined();
    });

    it('lists page by page, ordered by id', async () => {
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listClients(db(), { cursor, limit: 3 });
        ids.push(...page.items.map((c) => c.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(ids).toEqual([...ids].sort());
      expect(ids.length).toBe(await count());
    });
  });

  describe('secret rotation', () => {
    it('keeps the old secret valid for the grace period', async () => {
      const { client, clientSecret: oldSecret } = await createClient(db(), { name: 'svc', grants: ['client_credentials'] });
      const now = new Date();
      const r = await rotateClientSecret(db(), client.id, { graceSeconds: 3600, now });
      expect(r.clientSecret).not.toBe(oldSecret);
      expect(r.previousSecretExpiresAt?.getTime()).toBe(now.getTime() + 3_600_000);
      const rec = (await getClientRecord(db(), client.id))!;
      expect(rec.secretDigest).toBe(digestSecret(r.clientSecret));
      expect(rec.previousSecretDigest).toBe(digestSecret(oldSecret!));
      expect(verifyClientSecret(rec, r.clientSecret, now)).toBe('current');
      expect(verifyClientSecret(rec, oldSecret!, new Date(now.getTime() + 3_599_000))).toBe('previous');
      expect(verifyClientSecret(rec, oldSecret!, new Date(now.getTime() + 3_600_000))).toBe(false);
      expect((await getClient(db(), client.id)).previousSecretExpiresAt).toEqual(r.previousSecretExpiresAt);
    });

    it('with grace 0 the old secret stops at once', async () => {
      const { client, clientSecret: oldSecret } = await createClient(db(), { name: 'svc0', grants: ['client_credentials'] });
      const r = await rotateClientSecret(db(), client.id, { graceSeconds: 0 });
      const rec = (await getClientRecord(db(), client.id))!;
      expect(r.previousSecretExpiresAt).toBeNull();
      expect(rec.previousSecretDigest).toBeNull();
      expect(verifyClientSecret(rec, oldSecret!)).toBe(false);
      expect(verifyClientSecret(rec, r.clientSecret)).toBe('current');
    });

    it('is refused for clients without a secret', async () => {
      await expect(rotateClientSecret(db(), 'spa', { graceSeconds: 10 })).rejects.toThrow(/does not use a client secret/);
      await expect(rotateClientSecret(db(), 'spa', { graceSeconds: -1 })).rejects.toThrow(ValidationError);
    });
  });

  describe('registry cache', () => {
    it('another instance sees an update within a second; hits need no I/O', async () => {
      const other = openDb({ url: tdb.url, poolSize: 2 });
      const feedA: ChangeFeed = listenForChanges(tdb.url);
      const feedB: ChangeFeed = listenForChanges(tdb.url);
      await Promise.all([feedA.ready, feedB.ready]);
      const regA = createClientRegistry(db(), feedA);
      const regB = createClientRegistry(other.prisma, feedB);
      try {
        const announced = new Promise<void>((resolve) => {
          const off = feedB.subscribe('client', (id) => id === 'cached' && (off(), resolve()));
        });
        await createClient(db(), { id: 'cached', name: 'before', grants: ['client_credentials'] });
        await announced;

        const [a, b] = await Promise.all([regB.get('cached'), regB.get('cached')]);
        expect(a).toBe(b);
        expect(a?.name).toBe('before');
        expect(a?.secretDigest).toMatch(/^[0-9a-f]{64}$/);
        expect(Object.isFrozen(a)).toBe(true);

        // a hit does no I/O: it is answered even with B's pool closed
        await other.close();
        expect((await regB.get('cached'))?.name).toBe('before');
        const reopened = openDb({ url: tdb.url, poolSize: 2 });
        regB.close();
        const regB2 = createClientRegistry(reopened.prisma, feedB);
        try {
          expect((await regB2.get('cached'))?.name).toBe('before');
          // the contract: a disabled client is refused on every instance within one second
          await updateClient(db(), 'cached', { name: 'after', disabled: true });
          expect(await eventually(async () => (await regB2.get('cached'))?.disabled === true, 1_000)).toBe(true);
          expect((await regB2.get('cached'))?.name).toBe('after');

          // and the other way round, deletion included
          expect((await regA.get('cached'))?.name).toBe('after');
          await deleteClient(reopened.prisma, 'cached');
          expect(await eventually(async () => (await regA.get('cached')) === undefined, 1_000)).toBe(true);
          expect(await regA.get('not a valid id')).toBeUndefined();
        } finally {
          regB2.close();
          await reopened.close();
        }
      } finally {
        regA.close();
        regB.close();
        await feedA.close();
        await feedB.close();
        await other.close();
      }
    });
  });
});
