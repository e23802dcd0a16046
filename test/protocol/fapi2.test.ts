// The FAPI 2.0 Security Profile per client (--profile fapi2), through the
// real app. Registration refuses a client that cannot meet the profile, with
// a message that says what to change. The happy path: PAR authenticated with
// private_key_jwt (ES256, aud = issuer) and PKCE S256 → the browser signs in
// by reference → code → token with private_key_jwt and a DPoP proof → a
// DPoP-bound access token, an ES256 ID token. The negatives: no PAR, a bearer
// token request (no DPoP proof), a client assertion signed with RS256, no
// PKCE; codes live 30 s.
import { randomUUID } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { ValidationError } from '../../src/kernel/errors.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { adminToken, api, expectProblem } from '../admin/helpers.ts';
import { createUser, pkce, REDIRECT_URI } from '../sso/flow.ts';
import { ASSERTION_TYPE, clientAssertion, codeOf, dpopProof, keyPair, signInAt, type KeyPair } from './helpers.ts';

const CLIENT = 'open-banking';

describe('FAPI 2.0 profile', () => {
  let t: TestApp;
  let es: KeyPair; // the client's ES256 key
  let rsa: KeyPair; // the client's RSA key for PS256
  let rs256: KeyPair; // a registered RSA key used with RS256 (not allowed)
  let dpop: KeyPair;
  let tmp: string;
  const email = 'fapi@example.com';

  const authParams = (challenge: string) => ({
    client_id: CLIENT,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    state: randomUUID(),
    nonce: randomUUID(),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const auth = async (key: KeyPair = es, alg?: string) => ({
    client_id: CLIENT,
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: await clientAssertion(t, CLIENT, key, alg ? { alg } : {}),
  });
  const push = async (form: Record<string, string>, key: KeyPair = es, alg?: string) =>
    t.request.post('/request').type('form').send({ ...(await auth(key, alg)), ...form });
  const byReference = (requestUri: string) => `/auth?${new URLSearchParams({ client_id: CLIENT, request_uri: requestUri }).toString()}`;
  const tokenRequest = async (form: Record<string, string>, opts: { dpop?: boolean } = {}) => {
    const req = t.request.post('/token').type('form');
    if (opts.dpop !== false) req.set('DPoP', await dpopProof(dpop, 'POST', `${t.config.issuer}/token`));
    return req.send({ ...(await auth()), ...form });
  };
  /** PAR → sign in → code (and its verifier). */
  const codeViaPar = async () => {
    const { verifier, challenge } = pkce();
    const pushed = await push(authParams(challenge));
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
    const step = await signInAt(t, byReference(pushed.body.request_uri as string), email);
    if (step.kind === 'page') throw new Error(/<span class="details">([\s\S]*?)<\/span>/.exec(step.page.html)?.[1] ?? step.page.html);
    const code = codeOf(step);
    return { code, verifier };
  };

  beforeAll(async () => {
    t = await createTestApp();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-fapi-'));
    await createUser(t, email);
    es = await keyPair('ES256');
    rsa = await keyPair('PS256');
    rs256 = await keyPair('RS256');
    dpop = await keyPair('ES256');
    const created = await createClient(t.gatehouse.db.prisma, {
      id: CLIENT,
      name: 'Open banking app',
      grants: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
      authMethod: 'private_key_jwt',
      jwks: { keys: [es.publicJwk, rsa.publicJwk, rs256.publicJwk] },
      profile: 'fapi2',
    });
    // the profile turned on what it needs
    expect(created.client).toMatchObject({ profile: 'fapi2', requirePar: true, requireDpop: true });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('happy path: PAR + private_key_jwt + PKCE → code → DPoP-bound token, ES256 ID token', async () => {
    const { code, verifier } = await codeViaPar();
    const res = await tokenRequest({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    expect(decodeProtectedHeader(res.body.id_token as string).alg).toBe('ES256');
    const me = await t.request.get('/me').set('Authorization', `DPoP ${String(res.body.access_token)}`).set('DPoP', await dpopProof(dpop, 'GET', `${t.config.issuer}/me`, String(res.body.access_token)));
    expect(me.status, me.text).toBe(200);
    // the token is bound: as a bearer token it is refused
    const bearer = await t.request.get('/me').set('Authorization', `Bearer ${String(res.body.access_token)}`);
    expect(bearer.status).toBe(401);
  });

  it('a PS256 client assertion is accepted too', async () => {
    const { challenge } = pkce();
    const pushed = await push(authParams(challenge), rsa, 'PS256');
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
  });

  it('codes of a fapi2 client live 30 s', async () => {
    await codeViaPar();
    const { rows } = await t.gatehouse.db.pool.query<{ life: number }>(
      `SELECT (payload->>'exp')::int - (payload->>'iat')::int AS life FROM oidc_payloads WHERE model = 'AuthorizationCode' AND payload->>'clientId' = $1`,
      [CLIENT],
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.life).toBe(30);
  });

  it('refused: an authorization request without PAR', async () => {
    const { challenge } = pkce();
    const res = await t.request.get(`/auth?${new URLSearchParams(authParams(challenge)).toString()}`);
    expect(res.status).toBe(303);
    const back = new URL(res.headers.location as string);
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toMatch(/Pushed Authorization Request must be used/i);
    expect(back.searchParams.get('code')).toBeNull();
  });

  it('refused: a bearer token request (no DPoP proof)', async () => {
    const { code, verifier } = await codeViaPar();
    const res = await tokenRequest({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI }, { dpop: false });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_dpop_proof');
    expect(res.body.access_token).toBeUndefined();
  });

  it('refused: a client assertion signed with RS256 (at PAR and at the token endpoint)', async () => {
    const { challenge } = pkce();
    const pushed = await push(authParams(challenge), rs256);
    expect(pushed.status).toBe(401);
    expect(pushed.body.error).toBe('invalid_client');
    const { code, verifier } = await codeViaPar();
    const req = t.request.post('/token').type('form').set('DPoP', await dpopProof(dpop, 'POST', `${t.config.issuer}/token`));
    const res = await req.send({
      client_id: CLIENT,
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await clientAssertion(t, CLIENT, rs256),
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('refused: PAR without PKCE, and a client assertion whose audience is not the issuer', async () => {
    const { challenge } = pkce();
    const { code_challenge: _c, code_challenge_method: _m, ...noPkce } = authParams(challenge);
    const res = await push(noPkce);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.error_description).toMatch(/PKCE/);
    const wrongAud = await t.request
      .post('/request')
      .type('form')
      .send({ client_assertion_type: ASSERTION_TYPE, client_assertion: await clientAssertion(t, CLIENT, es, { aud: `${t.config.issuer}/request` }), ...authParams(challenge) });
    expect(wrongAud.status).toBe(401);
    expect(wrongAud.body.error).toBe('invalid_client');
  });

  it('registration refuses a client that cannot meet the profile, saying what to change', async () => {
    const db = t.gatehouse.db.prisma;
    const base = { name: 'x', grants: ['authorization_code' as const], redirectUris: [REDIRECT_URI], authMethod: 'private_key_jwt' as const, jwks: { keys: [es.publicJwk] }, profile: 'fapi2' as const };
    const refusals: [Record<string, unknown>, string, RegExp][] = [
      [{ authMethod: 'client_secret_basic', jwks: undefined }, 'authMethod', /needs private_key_jwt client authentication \(not client_secret_basic\)/],
      [{ public: true, authMethod: 'none', jwks: undefined }, 'public', /needs a confidential client/],
      [{ requireDpop: false }, 'requireDpop', /needs DPoP-bound tokens/],
      [{ requirePar: false }, 'requirePar', /needs pushed authorization requests/],
      [{ grants: ['authorization_code', 'client_credentials'] }, 'grants', /allows only authorization_code and refresh_token, not client_credentials/],
      [{ redirectUris: ['http://localhost:8080/cb'] }, 'redirectUris', /needs https redirect URIs/],
      [{ jwks: { keys: [(await keyPair('EdDSA')).publicJwk] } }, 'jwks', /PS256 or ES256 only/],
    ];
    for (const [change, field, message] of refusals) {
      const err = await createClient(db, { ...base, ...change } as Parameters<typeof createClient>[1]).catch((e: unknown) => e);
      expect(err, JSON.stringify(change)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
      expect((err as Error).message).toMatch(/profile fapi2 \(FAPI 2\.0\): /);
      expect((err as Error).message).toMatch(message);
    }

    // the CLI: one line naming the flag
    const r = await cli(t.database.url, ['clients', 'create', '--name', 'bank', '--grant', 'authorization_code', '--redirect-uri', REDIRECT_URI, '--profile', 'fapi2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('gatehouse: invalid --auth-method: profile fapi2 (FAPI 2.0): needs private_key_jwt client authentication (not client_secret_basic); mTLS is not offered\n');
    const unknown = await cli(t.database.url, ['clients', 'create', '--name', 'bank', '--grant', 'authorization_code', '--redirect-uri', REDIRECT_URI, '--profile', 'fapi1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^gatehouse: invalid --profile: 'fapi1'.*fapi2/);

    // the CLI happy path, with the keys from a file
    const jwksFile = path.join(tmp, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [es.publicJwk] }));
    const ok = await cli(t.database.url, ['clients', 'create', '--id', 'cli-bank', '--name', 'bank', '--grant', 'authorization_code', '--redirect-uri', REDIRECT_URI, '--auth-method', 'private_key_jwt', '--jwks-file', jwksFile, '--profile', 'fapi2', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ client_id: 'cli-bank', profile: 'fapi2', requirePar: true, requireDpop: true });
    // turning DPoP off while the profile holds is refused; dropping the profile first works
    const off = await cli(t.database.url, ['clients', 'update', 'cli-bank', '--no-require-dpop']);
    expect(off.stderr).toMatch(/^gatehouse: invalid --require-dpop: profile fapi2 \(FAPI 2\.0\): needs DPoP-bound tokens/);
    const drop = await cli(t.database.url, ['clients', 'update', 'cli-bank', '--profile', 'none', '--no-require-dpop']);
    expect(drop.code, drop.stderr).toBe(0);

    // the admin API: problem+json naming the field
    const token = await adminToken(t, ['gatehouse:admin']);
    const res = await api(t, token, 'post', '/clients').send({ name: 'bank', grants: ['authorization_code'], redirectUris: [REDIRECT_URI], profile: 'fapi2' });
    expectProblem(res, 422, 'authMethod');
    expect(JSON.stringify(res.body)).toContain('needs private_key_jwt');
    const good = await api(t, token, 'post', '/clients').send({ ...base, jwks: { keys: [rsa.publicJwk] } });
    expect(good.status, JSON.stringify(good.body)).toBe(201);
    expect(good.body).toMatchObject({ profile: 'fapi2', requirePar: true, requireDpop: true });

    // apply / export: the profile round-trips
    const exported = await cli(t.database.url, ['export']);
    expect(exported.stdout).toMatch(/id: open-banking[\s\S]*?profile: fapi2/);
    const file = path.join(tmp, 'bank.yaml');
    writeFileSync(file, `clients:\n  - id: applied-bank\n    name: Bank\n    grants: [authorization_code]\n    redirectUris: ["${REDIRECT_URI}"]\n    profile: fapi2\n`);
    const applied = await cli(t.database.url, ['apply', '-f', file]);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain('clients[0] (id "applied-bank"): authMethod: profile fapi2 (FAPI 2.0): needs private_key_jwt');
  });

  it('bad input at the new endpoints: OAuth error JSON, never a 5xx', async () => {
    const { code, verifier } = await codeViaPar();
    const junkProof = await t.request
      .post('/token')
      .type('form')
      .set('DPoP', 'not-a-jwt')
      .send({ ...(await auth()), grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI });
    expect(junkProof.status).toBe(400);
    expect(junkProof.body.error).toBe('invalid_dpop_proof');
    for (const assertion of ['', 'a.b.c', 'x'.repeat(20_000)]) {
      const res = await t.request.post('/request').type('form').send({ client_id: CLIENT, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, response_type: 'code' });
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
      expect(res.body.error).toMatch(/^invalid_(client|request)$/);
    }
    expect(decodeJwt(await clientAssertion(t, CLIENT, es)).aud).toBe(t.config.issuer);
  });
});
