// RFC 8693 token exchange through the real app: a small chain of services.
//
//   frontend ──client_credentials──▶ orders API (served by orders-service)
//   orders-service ──exchange──▶ payments API (served by payments-service)
//   payments-service ──exchange──▶ ledger API
import { randomUUID } from 'node:crypto';
import {
  SignJWT,
  base64url,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type JWK,
  type JWTPayload,
} from 'jose';
import { knownRevoked } from '../helpers/revocations.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, updateClient } from '../../src/clients/store.ts';
import { loadKeyring, rotateSigningKey } from '../../src/keys/index.ts';
import { createResource, updateResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';



const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';
const PAYMENTS = 'https://payments.example.com';
const LEDGER = 'https://ledger.example.com';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('token exchange (RFC 8693)', () => {
  let t: TestApp;
  const secrets = new Map<string, string>();

  const basic = (cid: string) => `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(secrets.get(cid)!)}`).toString('base64')}`;
  const token = (form: Record<string, string>, auth?: string, headers: Record<string, string> = {}) => {
    const r = t.request.post('/token').type('form');
    if (auth) r.set('Authorization', auth);
    for (const [k, v] of Object.entries(headers)) r.set(k, v);
    return r.send(form);
  };
  const clientCredentials = async (cid: string, resource: string, scope: string): Promise<string> => {
    const res = await token({ grant_type: 'client_credentials', resource, scope }, basic(cid)).expect(200);
    return res.body.access_token as string;
  };
  const exchange = (actor: string, form: Record<string, string>, headers?: Record<string, string>) =>
    token({ grant_type: EXCHANGE, subject_token_type: ACCESS_TOKEN, ...form }, basic(actor), headers);
  const jwks = async () => createLocalJWKSet((await t.request.get('/jwks')).body);
  const verify = async (jwt: string, audience: string) =>
    (await jwtVerify(jwt, await jwks(), { issuer: ISSUER, audience, typ: 'at+jwt' })).payload;
  const expectError = async (res: { status: number; body: { error?: string; error_description?: string } }, error: string, status = 400, description?: RegExp) => {
    expect({ status: res.status, error: res.body.error }).toEqual({ status, error });
    if (description) expect(res.body.error_description).toMatch(description);
  };
  const now = () => Math.floor(Date.now() / 1000);

  /** A token signed with Gatehouse's current RS256 key: for claims the real endpoints never produce (expired, odd typ …). */
  const gatehouseSigned = async (claims: JWTPayload, header: Record<string, unknown> = {}) => {
    const ring = await loadKeyring(t.gatehouse.db.prisma, t.config.keyEncryptionKey);
    const jwk = ring.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops)!;
    return new SignJWT({ iss: ISSUER, sub: 'frontend', client_id: 'frontend', aud: ORDERS, scope: 'orders:read', jti: randomUUID(), iat: now(), exp: now() + 300, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid!, typ: 'at+jwt', ...header })
      .sign(await importJWK(jwk, 'RS256'));
  };

  /** A DPoP proof for POST /token (RFC 9449). */
  const dpopProof = async (key: { privateKey: PrivateKey; publicJwk: JWK }, jti = randomUUID()) =>
    new SignJWT({ htm: 'POST', htu: `${ISSUER}/token`, jti, iat: now() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
      .sign(key.privateKey);
  const dpopKey = async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    return { privateKey, publicJwk: await exportJWK(publicKey) };
  };

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    const db = t.gatehouse.db.prisma;
    await createResource(db, { identifier: ORDERS, scopes: ['orders:read', 'orders:write'], accessTokenTtl: 600 });
    await createResource(db, { identifier: PAYMENTS, scopes: ['payments:read', 'payments:charge'], accessTokenTtl: 120, signingAlg: 'ES256' });
    await createResource(db, { identifier: LEDGER, scopes: ['ledger:read', 'ledger:write'], accessTokenTtl: 300, signingAlg: 'EdDSA' });
    const clients = [
      { id: 'frontend', grants: ['client_credentials' as const], resources: [ORDERS], scopes: ['orders:read', 'orders:write'] },
      // serves the orders API; may call payments, and its own API (same-audience exchanges)
      {
        id: 'orders-service',
        grants: [EXCHANGE],
        resources: [ORDERS, PAYMENTS],
        scopes: ['orders:read', 'orders:write', 'payments:read', 'payments:charge'],
      },
      // serves the payments API; may write to the ledger; its tokens live 90 s
      { id: 'payments-service', grants: [EXCHANGE], resources: [LEDGER], scopes: ['ledger:write'], accessTokenTtl: 90 },
      // serves the orders API too, but has no exchange grant
      { id: 'reporting', grants: ['client_credentials' as const], resources: [PAYMENTS], scopes: ['payments:read'] },
      // serves nothing: may exchange only its own tokens
      { id: 'batch-job', grants: ['client_credentials' as const, EXCHANGE], resources: [ORDERS, PAYMENTS], scopes: ['orders:read', 'payments:read'] },
      // serves the orders API and must bind its tokens with DPoP
      { id: 'fraud-service', grants: [EXCHANGE], resources: [PAYMENTS], scopes: ['payments:read'], requireDpop: true },
      // a second front end, disabled during a test
      { id: 'legacy-frontend', grants: ['client_credentials' as const], resources: [ORDERS], scopes: ['orders:read'] },
    ] as const;
    for (const { id, ...rest } of clients) {
      const c = await createClient(db, { id, name: id, ...rest, grants: [...rest.grants], resources: [...rest.resources], scopes: [...rest.scopes] });
      secrets.set(id, c.clientSecret!);
    }
    await updateResource(db, ORDERS, { servedBy: ['orders-service', 'reporting', 'fraud-service'] });
    await updateResource(db, PAYMENTS, { servedBy: ['payments-service'] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('advertises the grant in discovery', async () => {
    const res = await t.request.get('/.well-known/openid-configuration').expect(200);
    expect(res.body.grant_types_supported).toContain(EXCHANGE);
  });

  it('exchanges a token for an API the actor serves: subject kept, actor named in act', async () => {
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read orders:write');
    const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'payments:read payments:charge' }).expect(200);
    expect(res.body).toMatchObject({
      issued_token_type: ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: 120,
      scope: 'payments:read payments:charge',
    });
    expect(res.body.refresh_token).toBeUndefined();
    expect(decodeProtectedHeader(res.body.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    const claims = await verify(res.body.access_token, PAYMENTS);
    expect(claims).toMatchObject({
      iss: ISSUER,
      aud: PAYMENTS,
      sub: 'frontend',
      client_id: 'orders-service',
      scope: 'payments:read payments:charge',
      act: { sub: 'orders-service' },
    });
    expect(typeof claims.jti).toBe('string');
    expect(claims.jti).not.toBe(decodeJwt(subject).jti);
    expect(claims.exp! - claims.iat!).toBe(120);
    expect(claims.cnf).toBeUndefined();
  });

  it('down-scopes to the scopes asked for', async () => {
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
    const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'payments:read' }).expect(200);
    expect(res.body.scope).toBe('payments:read');
    expect((await verify(res.body.access_token, PAYMENTS)).scope).toBe('payments:read');
  });

  it('grants the whole allowance on the downstream API when no scope is asked for', async () => {
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
    const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS }).expect(200);
    expect(res.body.scope).toBe('payments:read payments:charge');
  });

  it('accepts audience= as an alias of resource=, and both when they agree', async () => {
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
    const res = await exchange('orders-service', { subject_token: subject, audience: PAYMENTS, scope: 'payments:read' }).expect(200);
    expect((await verify(res.body.access_token, PAYMENTS)).aud).toBe(PAYMENTS);
    await exchange('orders-service', { subject_token: subject, audience: PAYMENTS, resource: PAYMENTS }).expect(200);
    await expectError(await exchange('orders-service', { subject_token: subject, audience: ORDERS, resource: PAYMENTS }), 'invalid_target');
  });

  it('nests act on a second hop and keeps the original subject', async () => {
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read orders:write');
    const hop1 = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'payments:charge' }).expect(200);
    const hop2 = await exchange('payments-service', { subject_token: hop1.body.access_token, resource: LEDGER, scope: 'ledger:write' }).expect(200);
    expect(decodeProtectedHeader(hop2.body.access_token).alg).toBe('EdDSA');
    const claims = await verify(hop2.body.access_token, LEDGER);
    expect(claims).toMatchObject({
      sub: 'frontend',
      client_id: 'payments-service',
      aud: LEDGER,
      scope: 'ledger:write',
      act: { sub: 'payments-service', act: { sub: 'orders-service' } },
    });
    // the actor's own TTL override (90 s) wins over the ledger API's 300 s
    expect(hop2.body.expires_in).toBe(90);
    expect(claims.exp! - claims.iat!).toBe(90);
  });

  it('never outlives the subject token', async () => {
    const exp = now() + 40;
    const subject = await gatehouseSigned({ exp });
    const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'payments:read' }).expect(200);
    expect(res.body.expires_in).toBeLessThanOrEqual(40);
    expect(res.body.expires_in).toBeGreaterThan(30);
    const claims = await verify(res.body.access_token, PAYMENTS);
    expect(claims.exp).toBeLessThanOrEqual(exp);
  });

  it('lets a client exchange a token issued to itself for an API it does not serve', async () => {
    const own = await clientCredentials('batch-job', ORDERS, 'orders:read');
    const res = await exchange('batch-job', { subject_token: own, resource: PAYMENTS }).expect(200);
    expect(res.body.scope).toBe('payments:read');
    expect(await verify(res.body.access_token, PAYMENTS)).toMatchObject({ sub: 'batch-job', client_id: 'batch-job', act: { sub: 'batch-job' } });
  });

  it("caps a same-API exchange at the subject token's scopes", async () => {
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
    // orders-service may hold orders:write itself, but not on behalf of a token that lacks it
    const dflt = await exchange('orders-service', { subject_token: subject, resource: ORDERS }).expect(200);
    expect(dflt.body.scope).toBe('orders:read');
    await exchange('orders-service', { subject_token: subject, resource: ORDERS, scope: 'orders:read' }).expect(200);
    await expectError(await exchange('orders-service', { subject_token: subject, resource: ORDERS, scope: 'orders:write' }), 'invalid_scope');
    await expectError(await exchange('orders-service', { subject_token: subject, resource: ORDERS, scope: 'orders:read orders:write' }), 'invalid_scope');
  });

  it('accepts a subject token signed with the current key and issued by this server (control for the refusals below)', async () => {
    await exchange('orders-service', { subject_token: await gatehouseSigned({}), resource: PAYMENTS }).expect(200);
  });

  it('writes nothing to the database', async () => {
    const db = t.gatehouse.db.prisma;
    const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
    const before = await db.oidcPayload.count();
    await exchange('orders-service', { subject_token: subject, resource: PAYMENTS }).expect(200);
    expect(await db.oidcPayload.count()).toBe(before);
  });

  describe('DPoP', () => {
    it('binds the exchanged token to the proof key', async () => {
      const key = await dpopKey();
      const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
      const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS }, { DPoP: await dpopProof(key) }).expect(200);
      expect(res.body.token_type).toBe('DPoP');
      const claims = await verify(res.body.access_token, PAYMENTS);
      expect(claims.cnf).toEqual({ jkt: await calculateJwkThumbprint(key.publicJwk) });
    });
    it('refuses a replayed or malformed proof, and a missing one when the actor requires DPoP', async () => {
      const key = await dpopKey();
      const subject = await clientCredentials('frontend', ORDERS, 'orders:read');
      const proof = await dpopProof(key);
      await exchange('fraud-service', { subject_token: subject, resource: PAYMENTS }, { DPoP: proof }).expect(200);
      await expectError(await exchange('fraud-service', { subject_token: subject, resource: PAYMENTS }, { DPoP: proof }), 'invalid_dpop_proof');
      await expectError(await exchange('fraud-service', { subject_token: subject, resource: PAYMENTS }, { DPoP: 'not-a-jwt' }), 'invalid_dpop_proof');
      await expectError(await exchange('fraud-service', { subject_token: subject, resource: PAYMENTS }), 'invalid_dpop_proof');
    });
  });

  describe('refusals', () => {
    let subject: string;
    beforeAll(async () => {
      subject = await clientCredentials('frontend', ORDERS, 'orders:read');
    });

    it('an actor without the grant → unauthorized_client', async () => {
      await expectError(await exchange('reporting', { subject_token: subject, resource: PAYMENTS }), 'unauthorized_client');
      await expectError(await exchange('frontend', { subject_token: subject, resource: ORDERS }), 'unauthorized_client');
    });
    it('no or wrong client authentication → invalid_client', async () => {
      await expectError(await token({ grant_type: EXCHANGE, subject_token_type: ACCESS_TOKEN, subject_token: subject, resource: PAYMENTS }), 'invalid_client', 401);
      const forged = `Basic ${Buffer.from('orders-service:wrong').toString('base64')}`;
      await expectError(await token({ grant_type: EXCHANGE, subject_token_type: ACCESS_TOKEN, subject_token: subject, resource: PAYMENTS }, forged), 'invalid_client', 401);
    });
    it('a subject token for an API the actor does not serve, issued to someone else → invalid_grant', async () => {
      // batch-job may call payments, but it does not serve the orders API
      const notServed = /neither addressed to an API this client serves nor issued to this client/;
      await expectError(await exchange('batch-job', { subject_token: subject, resource: PAYMENTS }), 'invalid_grant', 400, notServed);
      // payments-service serves payments, not orders
      await expectError(await exchange('payments-service', { subject_token: subject, resource: LEDGER }), 'invalid_grant', 400, notServed);
    });
    it('garbage, expired, foreign-signed, unsigned and non-access-token subjects → invalid_grant', async () => {
      const foreign = await generateKeyPair('RS256');
      const ring = await loadKeyring(t.gatehouse.db.prisma, t.config.keyEncryptionKey);
      const realKid = ring.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops)!.kid!;
      const claims = decodeJwt(subject);
      const unsigned = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${base64url.encode(JSON.stringify(claims))}.`;
      const invalid = /not a valid access token issued by this server/;
      const cases: Record<string, [string, RegExp]> = {
        garbage: ['not-a-token', invalid],
        'three dots': ['a.b.c', invalid],
        'tampered payload': [`${subject.split('.')[0]}.${base64url.encode(JSON.stringify({ ...claims, scope: 'orders:read orders:write' }))}.${subject.split('.')[2]}`, invalid],
        expired: [await gatehouseSigned({ iat: now() - 600, exp: now() - 10 }), /expired/],
        'foreign key, real kid': [await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', kid: realKid, typ: 'at+jwt' }).sign(foreign.privateKey), invalid],
        'foreign key, own kid': [await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'foreign', typ: 'at+jwt' }).sign(foreign.privateKey), invalid],
        'alg none': [unsigned, invalid],
        'ID-token-like (typ JWT, aud = client)': [await gatehouseSigned({ aud: 'frontend' }, { typ: 'JWT' }), invalid],
        'no typ': [await gatehouseSigned({}, { typ: undefined }), invalid],
        'other issuer': [await gatehouseSigned({ iss: 'https://evil.example.com' }), invalid],
        'two audiences': [await gatehouseSigned({ aud: [ORDERS, PAYMENTS] }), invalid],
        'no client_id': [await gatehouseSigned({ client_id: undefined }), invalid],
        'no jti': [await gatehouseSigned({ jti: undefined }), invalid],
        'act without sub': [await gatehouseSigned({ act: { client: 'x' } }), invalid],
        'unknown client': [await gatehouseSigned({ client_id: 'nobody', sub: 'nobody' }), /unknown or disabled/],
      };
      for (const [name, [value, reason]] of Object.entries(cases)) {
        const res = await exchange('orders-service', { subject_token: value, resource: PAYMENTS });
        expect({ name, status: res.status, error: res.body.error }).toEqual({ name, status: 400, error: 'invalid_grant' });
        expect(res.body.error_description, name).toMatch(reason);
      }
    });
    it('a revoked subject token → invalid_grant', async () => {
      const revoked = await clientCredentials('frontend', ORDERS, 'orders:read');
      await exchange('orders-service', { subject_token: revoked, resource: PAYMENTS }).expect(200);
      const { jti, exp } = decodeJwt(revoked);
      // written by something else (another instance, a script): announced by the database
      await t.gatehouse.db.prisma.revokedToken.create({ data: { jti: jti!, expiresAt: new Date(exp! * 1000) } });
      await knownRevoked(t.gatehouse.revocations, jti!);
      await expectError(await exchange('orders-service', { subject_token: revoked, resource: PAYMENTS }), 'invalid_grant', 400, /revoked/);
    });
    it('a downstream API outside the actor allowance → invalid_target', async () => {
      await expectError(await exchange('orders-service', { subject_token: subject, resource: LEDGER }), 'invalid_target');
      await expectError(await exchange('orders-service', { subject_token: subject, resource: 'https://nowhere.example.com' }), 'invalid_target');
      await expectError(await exchange('orders-service', { subject_token: subject, resource: 'not a uri' }), 'invalid_target');
    });
    it('no resource while the actor has several, or two of them → invalid_target', async () => {
      await expectError(await exchange('orders-service', { subject_token: subject }), 'invalid_target');
      const res = await t.request
        .post('/token')
        .type('form')
        .set('Authorization', basic('orders-service'))
        .send(
          new URLSearchParams([
            ['grant_type', EXCHANGE],
            ['subject_token_type', ACCESS_TOKEN],
            ['subject_token', subject],
            ['resource', ORDERS],
            ['resource', PAYMENTS],
          ]).toString(),
        );
      await expectError(res, 'invalid_target');
    });
    it("the actor's single resource is the default", async () => {
      const hop1 = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS }).expect(200);
      const res = await exchange('payments-service', { subject_token: hop1.body.access_token }).expect(200);
      expect((await verify(res.body.access_token, LEDGER)).aud).toBe(LEDGER);
    });
    it('a scope outside the actor allowance → invalid_scope', async () => {
      await expectError(await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'payments:refund' }), 'invalid_scope');
      await expectError(await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'payments:read ledger:write' }), 'invalid_scope');
      await expectError(await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, scope: 'openid' }), 'invalid_scope');
      const hop1 = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS }).expect(200);
      await expectError(await exchange('payments-service', { subject_token: hop1.body.access_token, resource: LEDGER, scope: 'ledger:read' }), 'invalid_scope');
    });
    it('malformed requests → invalid_request', async () => {
      await expectError(await exchange('orders-service', { resource: PAYMENTS }), 'invalid_request');
      await expectError(await token({ grant_type: EXCHANGE, subject_token: subject, resource: PAYMENTS }, basic('orders-service')), 'invalid_request');
      await expectError(
        await exchange('orders-service', { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', resource: PAYMENTS }),
        'invalid_request',
      );
      await expectError(
        await exchange('orders-service', { subject_token: subject, subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token', resource: PAYMENTS }),
        'invalid_request',
      );
      await expectError(await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, actor_token: subject, actor_token_type: ACCESS_TOKEN }), 'invalid_request');
      await expectError(
        await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }),
        'invalid_request',
      );
      // the supported requested token types
      for (const requested of [ACCESS_TOKEN, 'urn:ietf:params:oauth:token-type:jwt']) {
        const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS, requested_token_type: requested }).expect(200);
        expect(res.body.issued_token_type).toBe(ACCESS_TOKEN);
      }
    });
    it('malformed input never yields a 5xx', async () => {
      const bodies = [
        `grant_type=${encodeURIComponent(EXCHANGE)}`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=%00&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=${'a'.repeat(20_000)}&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}&resource=${encodeURIComponent(PAYMENTS)}`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=x&subject_token=y&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=${subject}&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}&resource=%ZZ&scope=%ZZ`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=${subject}&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}&audience=${'x'.repeat(5000)}`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=${base64url.encode('{"alg":"RS256"}')}.${base64url.encode('[]')}.AAAA&subject_token_type=${encodeURIComponent(ACCESS_TOKEN)}`,
      ];
      for (const body of bodies) {
        const res = await t.request.post('/token').type('form').set('Authorization', basic('orders-service')).send(body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(res.body.error).toBeTruthy();
      }
    });
    it('a subject token of a client that was disabled since → invalid_grant', async () => {
      const db = t.gatehouse.db.prisma;
      const legacy = await clientCredentials('legacy-frontend', ORDERS, 'orders:read');
      await exchange('orders-service', { subject_token: legacy, resource: PAYMENTS }).expect(200);
      await updateClient(db, 'legacy-frontend', { disabled: true });
      // the change reaches this instance's registry through LISTEN/NOTIFY; poll briefly
      const deadline = Date.now() + 2_000;
      let res = await exchange('orders-service', { subject_token: legacy, resource: PAYMENTS });
      while (res.status === 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        res = await exchange('orders-service', { subject_token: legacy, resource: PAYMENTS });
      }
      await expectError(res, 'invalid_grant', 400, /unknown or disabled/);
    });
  });

  // Last: it changes the signing keys of this file's database.
  it('keeps accepting subject tokens across a key rotation (old key still published, new key signing)', async () => {
    const before = await clientCredentials('frontend', ORDERS, 'orders:read');
    const { kid } = await rotateSigningKey(t.gatehouse.db.prisma, t.config.keyEncryptionKey, { alg: 'RS256', leadSeconds: 0, maxTokenTtlSeconds: 3600 });
    await t.gatehouse.reloadKeys();
    const after = await clientCredentials('frontend', ORDERS, 'orders:read');
    expect(decodeProtectedHeader(after).kid).toBe(kid);
    expect(decodeProtectedHeader(before).kid).not.toBe(kid);
    for (const subject of [before, after]) {
      const res = await exchange('orders-service', { subject_token: subject, resource: PAYMENTS }).expect(200);
      expect((await verify(res.body.access_token, PAYMENTS)).sub).toBe('frontend');
    }
  });
});
