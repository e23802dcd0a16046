// Who may call the admin API: tokens, scopes, DPoP. Walks every operation of
// the served OpenAPI document.
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ROUTES } from '../../src/admin/index.ts';
import { updateClient } from '../../src/clients/store.ts';
import { loadKeyring } from '../../src/keys/index.ts';
import { ADMIN_RESOURCE, createResource } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ALL_SCOPES, BASE, adminClient, adminToken, api, basic, expectProblem, tokenFor } from './helpers.ts';

const ISSUER = 'http://localhost:3000';
const ORDERS = 'https://orders.example.com';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
interface Operation {
  method: Method;
  path: string;
}

/** Every operation of the served document, with path parameters filled in. */
async function documentedOperations(t: TestApp): Promise<Operation[]> {
  const doc = (await t.request.get(`${BASE}/openapi.json`).expect(200)).body as { paths: Record<string, Record<string, unknown>> };
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) {
      ops.push({ method: method as Method, path: path.replace(/\{[^}]+\}/g, 'x') });
    }
  }
  return ops;
}

describe('admin API: authorisation', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    await createResource(t.gatehouse.db.prisma, { identifier: ORDERS, scopes: ['orders:read'] });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Signs an access token with a key of the app's keyring (or `key`), claims overridable. */
  async function mint(claims: Record<string, unknown> = {}, opts: { typ?: string; key?: { jwk: JWK; kid: string } } = {}): Promise<string> {
    let jwk: JWK;
    let kid: string;
    if (opts.key) {
      ({ jwk, kid } = opts.key);
    } else {
      const ring = await loadKeyring(t.gatehouse.db.prisma, t.config.keyEncryptionKey);
      jwk = ring.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops)!;
      kid = jwk.kid!;
    }
    const now = Math.floor(Date.now() / 1000);
    const client = await adminClient(t, ['gatehouse:admin']);
    const payload = { client_id: client.id, sub: client.id, scope: 'gatehouse:admin', jti: randomUUID(), iss: ISSUER, aud: ADMIN_RESOURCE, iat: now, exp: now + 300, ...claims };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid, typ: opts.typ ?? 'at+jwt' })
      .sign(await importJWK({ ...jwk, key_ops: undefined }, 'RS256'));
  }

  describe('401', () => {
    it('no token: 401 problem with WWW-Authenticate Bearer realm', async () => {
      const res = await api(t, undefined, 'get', '/clients');
      expectProblem(res, 401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="gatehouse-admin"');
    });

    it('garbage, wrong scheme, or a token that is not a JWT: invalid_token', async () => {
      for (const auth of ['Bearer garbage', 'Bearer a.b.c', 'Basic Zm9vOmJhcg==', 'Bearer', `Bearer ${'x'.repeat(15_000)}`]) {
        const res = await t.request.get(`${BASE}/clients`).set('Authorization', auth);
        expectProblem(res, 401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse-admin", error="invalid_token"/);
      }
    });

    it('a token for another audience', async () => {
      const c = await adminClient(t, ['gatehouse:admin', 'orders:read'], { resources: [ADMIN_RESOURCE, ORDERS] });
      const res = await t.request.post('/token').type('form').set('Authorization', basic(c.id, c.secret)).send({ grant_type: 'client_credentials', resource: ORDERS });
      expect(res.status).toBe(200);
      const r = await api(t, res.body.access_token, 'get', '/clients');
      expectProblem(r, 401);
      expect(r.body.detail).toMatch(/not for the admin API/);
      expect(r.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    });

    it('a self-minted token signed with the real key is accepted (control for the cases below)', async () => {
      await api(t, await mint(), 'get', '/clients').expect(200);
    });

    it('an expired token', async () => {
      const now = Math.floor(Date.now() / 1000);
      const res = await api(t, await mint({ iat: now - 600, exp: now - 60 }), 'get', '/clients');
      expectProblem(res, 401);
      expect(res.body.detail).toMatch(/expired/);
    });

    it('a token signed with a key not in the keyring (unknown kid, and a known kid with another key)', async () => {
      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      const jwk = await exportJWK(privateKey);
      expectProblem(await api(t, await mint({}, { key: { jwk, kid: 'rogue' } }), 'get', '/clients'), 401);
      const ring = await loadKeyring(t.gatehouse.db.prisma, t.config.keyEncryptionKey);
      const realKid = ring.jwks.keys.find((k) => k.alg === 'RS256')!.kid!;
      expectProblem(await api(t, await mint({}, { key: { jwk, kid: realKid } }), 'get', '/clients'), 401);
    });

    it('a wrong issuer, a wrong typ, a token without client_id', async () => {
      expectProblem(await api(t, await mint({ iss: 'https://evil.example.com' }), 'get', '/clients'), 401);
      expectProblem(await api(t, await mint({}, { typ: 'JWT' }), 'get', '/clients'), 401);
      expectProblem(await api(t, await mint({ client_id: undefined }), 'get', '/clients'), 401);
      expectProblem(await api(t, await mint({ aud: ORDERS }), 'get', '/clients'), 401);
    });

    it('a token of a client that is disabled or deleted', async () => {
      const c = await adminClient(t, ['gatehouse:admin']);
      const tok = await tokenFor(t, c);
      await api(t, tok, 'get', '/clients').expect(200);
      await updateClient(t.gatehouse.db.prisma, c.id, { disabled: true });
      // the registry hears of the change through the change feed
      let status = 0;
      for (let i = 0; i < 50 && status !== 401; i++) {
        status = (await api(t, tok, 'get', '/clients')).status;
        if (status !== 401) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(401);
    });

    it('a revoked token', async () => {
      const c = await adminClient(t, ['gatehouse:admin']);
      const tok = await tokenFor(t, c);
      await api(t, tok, 'get', '/clients').expect(200);
      await t.request.post('/token/revocation').type('form').set('Authorization', basic(c.id, c.secret)).send({ token: tok }).expect(200);
      const res = await api(t, tok, 'get', '/clients');
      expectProblem(res, 401);
      expect(res.body.detail).toMatch(/revoked/);
    });

    it('every operation of the OpenAPI document refuses an unauthenticated request (the document itself excepted)', async () => {
      const ops = await documentedOperations(t);
      expect(ops.length).toBeGreaterThan(30);
      for (const op of ops) {
        const res = await t.request[op.method](`${BASE}${op.path}`).set('Content-Type', 'application/json').send('{}');
        if (op.path === '/openapi.json') {
          expect(res.status).toBe(200);
          continue;
        }
        expect(res.status, `${op.method.toUpperCase()} ${op.path}`).toBe(401);
        expect(res.headers['www-authenticate'], `${op.method.toUpperCase()} ${op.path}`).toMatch(/^Bearer realm="gatehouse-admin"/);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
    });

    it('every operation refuses a garbage token and an expired one before looking at the input', async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = await mint({ iat: now - 600, exp: now - 60 });
      for (const op of await documentedOperations(t)) {
        if (op.path === '/openapi.json') continue;
        for (const tok of ['garbage', expired]) {
          const res = await t.request[op.method](`${BASE}${op.path}`).set('Authorization', `Bearer ${tok}`).set('Content-Type', 'application/json').send('{not json');
          expect(res.status, `${op.method.toUpperCase()} ${op.path}`).toBe(401);
          expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
        }
      }
    });
  });

  describe('403 per scope', () => {
    const tokens: Record<string, string> = {};
    beforeAll(async () => {
      for (const s of ALL_SCOPES) tokens[s] = await adminToken(t, [s]);
    });

    it('each operation needs its own scope (or gatehouse:admin): every other narrow scope gets 403', async () => {
      for (const route of ADMIN_ROUTES) {
        const path = route.path.replace(/\{[^}]+\}/g, 'x');
        for (const scope of ALL_SCOPES) {
          const res = await t.request[route.method](`${BASE}${path}`).set('Authorization', `Bearer ${tokens[scope]}`).set('Content-Type', 'application/json').send('{}');
          const what = `${route.method.toUpperCase()} ${route.path} with ${scope}`;
          // a route may need a further scope as well (alsoNeeds): one narrow scope alone is then never enough
          const missing = scope === route.scope ? route.alsoNeeds?.[0] : route.scope;
          if (missing === undefined) {
            expect([401, 403], what).not.toContain(res.status);
            expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
          } else {
            expect(res.status, what).toBe(403);
            expectProblem(res, 403);
            expect(res.headers['www-authenticate'], what).toBe(
              `Bearer realm="gatehouse-admin", error="insufficient_scope", error_description="${res.body.detail}", scope="${missing}"`,
            );
          }
        }
      }
    });

    it('examples: clients:read cannot create clients; users:read cannot read keys; gatehouse:admin can do both', async () => {
      expectProblem(await api(t, tokens['gatehouse:clients:read'], 'post', '/clients').send({ name: 'x', grants: ['client_credentials'] }), 403);
      expectProblem(await api(t, tokens['gatehouse:users:read'], 'get', '/keys'), 403);
      const full = await adminToken(t, ['gatehouse:admin']);
      await api(t, full, 'post', '/clients').send({ name: 'x', grants: ['client_credentials'] }).expect(201);
      await api(t, full, 'get', '/keys').expect(200);
    });

    it('a token carries only the admin scopes its client was granted', async () => {
      const c = await adminClient(t, ['gatehouse:clients:read']);
      const res = await t.request
        .post('/token')
        .type('form')
        .set('Authorization', basic(c.id, c.secret))
        .send({ grant_type: 'client_credentials', resource: ADMIN_RESOURCE, scope: 'gatehouse:admin' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_scope');
    });
  });

  describe('DPoP-bound tokens', () => {
    let privateKey: CryptoKey;
    let publicJwk: JWK;
    let client: { id: string; secret: string };

    const proof = (htm: string, htu: string, opts: { ath?: string; iat?: number; jti?: string; key?: CryptoKey } = {}) =>
      new SignJWT({ htm, htu, iat: opts.iat ?? Math.floor(Date.now() / 1000), jti: opts.jti ?? randomUUID(), ...(opts.ath && { ath: opts.ath }) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
        .sign(opts.key ?? privateKey);
    const ath = (tok: string) => createHash('sha256').update(tok).digest('base64url');

    beforeAll(async () => {
      const pair = await generateKeyPair('ES256');
      privateKey = pair.privateKey;
      publicJwk = await exportJWK(pair.publicKey);
      client = await adminClient(t, ['gatehouse:admin']);
    });

    async function boundToken(): Promise<string> {
      const res = await t.request
        .post('/token')
        .type('form')
        .set('Authorization', basic(client.id, client.secret))
        .set('DPoP', await proof('POST', `${ISSUER}/token`))
        .send({ grant_type: 'client_credentials', resource: ADMIN_RESOURCE });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.token_type).toBe('DPoP');
      return res.body.access_token as string;
    }

    it('accepted with "Authorization: DPoP" and a valid proof', async () => {
      const tok = await boundToken();
      const res = await t.request
        .get(`${BASE}/clients`)
        .set('Authorization', `DPoP ${tok}`)
        .set('DPoP', await proof('GET', `${ISSUER}${BASE}/clients`, { ath: ath(tok) }));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(await calculateJwkThumbprint(publicJwk)).toBeTruthy();
    });

    it('refused as a Bearer token, without a proof, with a wrong or replayed proof', async () => {
      const tok = await boundToken();
      const url = `${ISSUER}${BASE}/clients`;
      const asBearer = await api(t, tok, 'get', '/clients');
      expectProblem(asBearer, 401);
      expect(asBearer.headers['www-authenticate']).toMatch(/^DPoP realm="gatehouse-admin"/);

      const noProof = await t.request.get(`${BASE}/clients`).set('Authorization', `DPoP ${tok}`);
      expectProblem(noProof, 401);
      expect(noProof.headers['www-authenticate']).toMatch(/error="invalid_dpop_proof"/);

      const other = await generateKeyPair('ES256');
      const cases = [
        await proof('POST', url, { ath: ath(tok) }), // wrong method
        await proof('GET', `${ISSUER}${BASE}/users`, { ath: ath(tok) }), // wrong URL
        await proof('GET', url), // no ath
        await proof('GET', url, { ath: ath(tok), iat: Math.floor(Date.now() / 1000) - 3600 }), // stale
        await proof('GET', url, { ath: ath(tok), key: other.privateKey }), // signature does not verify with the embedded key
      ];
      for (const p of cases) {
        const res = await t.request.get(`${BASE}/clients`).set('Authorization', `DPoP ${tok}`).set('DPoP', p);
        expectProblem(res, 401);
        expect(res.headers['www-authenticate']).toMatch(/error="invalid_dpop_proof"/);
      }

      const once = await proof('GET', url, { ath: ath(tok) });
      await t.request.get(`${BASE}/clients`).set('Authorization', `DPoP ${tok}`).set('DPoP', once).expect(200);
      const replay = await t.request.get(`${BASE}/clients`).set('Authorization', `DPoP ${tok}`).set('DPoP', once);
      expectProblem(replay, 401);
      expect(replay.body.detail).toMatch(/already used/);
    });

    it('an unbound token sent with the DPoP scheme is refused', async () => {
      const tok = await adminToken(t, ['gatehouse:admin']);
      const res = await t.request.get(`${BASE}/clients`).set('Authorization', `DPoP ${tok}`).set('DPoP', await proof('GET', `${ISSUER}${BASE}/clients`, { ath: ath(tok) }));
      expectProblem(res, 401);
    });
  });
});
