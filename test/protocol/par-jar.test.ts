// Pushed authorization requests (RFC 9126) for every client, required for
// clients registered with requirePar; request objects (RFC 9101) signed with
// the client's registered keys. Through the real app: the push, the browser
// at /auth with the request_uri, the code, the token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { adminToken, api } from '../admin/helpers.ts';
import { basic, createUser, exchangeCode, pkce, REDIRECT_URI, type TestClient } from '../sso/flow.ts';
import { codeOf, keyPair, requestObject, signInAt, type KeyPair } from './helpers.ts';

describe('pushed authorization requests and request objects', () => {
  let t: TestApp;
  let open: TestClient; // PAR allowed, not required
  let strict: TestClient; // requirePar
  let signer: TestClient; // has registered keys for request objects
  let key: KeyPair;
  const email = 'par@example.com';

  const push = (client: TestClient, form: Record<string, string>) =>
    t.request.post('/request').type('form').set('Authorization', basic(client.id, client.secret!)).send(form);
  const authParams = (client: TestClient, challenge: string) => ({
    client_id: client.id,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    state: 'st-1',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const byReference = (client: TestClient, requestUri: string) => `/auth?${new URLSearchParams({ client_id: client.id, request_uri: requestUri }).toString()}`;

  beforeAll(async () => {
    t = await createTestApp();
    await createUser(t, email);
    const mk = async (id: string, extra: Record<string, unknown> = {}) => {
      const c = await createClient(t.gatehouse.db.prisma, { id, name: id, grants: ['authorization_code'], redirectUris: [REDIRECT_URI], ...extra });
      return { id, secret: c.clientSecret! };
    };
    key = await keyPair('ES256');
    open = await mk('par-open');
    strict = await mk('par-strict', { requirePar: true });
    signer = await mk('jar-signer', { jwks: { keys: [key.publicJwk] } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('discovery advertises PAR and request objects', async () => {
    const d = (await t.request.get('/.well-known/openid-configuration').expect(200)).body as Record<string, unknown>;
    expect(d.pushed_authorization_request_endpoint).toBe(`${t.config.issuer}/request`);
    expect(d.request_parameter_supported).toBe(true);
    expect(d.request_object_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'PS256']));
    expect(d.request_object_signing_alg_values_supported).not.toContain('HS256');
  });

  it('any client may push: 201 with a request_uri, then the browser signs in by reference and the code works', async () => {
    const { verifier, challenge } = pkce();
    const pushed = await push(open, authParams(open, challenge));
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
    expect(pushed.body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(pushed.body.expires_in).toBeGreaterThan(0);
    const code = codeOf(await signInAt(t, byReference(open, pushed.body.request_uri as string), email));
    const res = await exchangeCode(t, open, code, verifier);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // the request_uri is single use
    const again = await t.request.get(byReference(open, pushed.body.request_uri as string)).set('Accept', 'text/html');
    expect(again.status).toBe(400);
    expect(again.text).toContain('<code>invalid_request_uri</code>');
  });

  it('a client with requirePar is refused without PAR and served with it', async () => {
    const { verifier, challenge } = pkce();
    const direct = await t.request.get(`/auth?${new URLSearchParams(authParams(strict, challenge)).toString()}`);
    expect(direct.status).toBe(303);
    const back = new URL(direct.headers.location as string);
    expect(back.origin + back.pathname).toBe(REDIRECT_URI);
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toMatch(/Pushed Authorization Request must be used/i);
    const pushed = await push(strict, authParams(strict, challenge));
    expect(pushed.status).toBe(201);
    const code = codeOf(await signInAt(t, byReference(strict, pushed.body.request_uri as string), email));
    expect((await exchangeCode(t, strict, code, verifier)).status).toBe(200);
  });

  it('request objects: signed with the registered key accepted; another key, alg none, or a client without keys refused', async () => {
    const { verifier, challenge } = pkce();
    const good = await push(signer, { client_id: signer.id, request: await requestObject(t, signer.id, key, authParams(signer, challenge)) });
    expect(good.status, JSON.stringify(good.body)).toBe(201);
    const code = codeOf(await signInAt(t, byReference(signer, good.body.request_uri as string), email));
    expect((await exchangeCode(t, signer, code, verifier)).status).toBe(200);

    const stranger = await keyPair('ES256', key.publicJwk.kid);
    const forged = await push(signer, { client_id: signer.id, request: await requestObject(t, signer.id, stranger, authParams(signer, challenge)) });
    expect(forged.status).toBe(400);
    expect(forged.body.error).toBe('invalid_request_object');

    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ ...authParams(signer, challenge), iss: signer.id, aud: t.config.issuer })).toString('base64url');
    const unsigned = await push(signer, { client_id: signer.id, request: `${header}.${payload}.` });
    expect(unsigned.status).toBe(400);
    expect(unsigned.body.error).toBe('invalid_request_object');

    const keyless = await push(open, { client_id: open.id, request: await requestObject(t, open.id, key, authParams(open, challenge)) });
    expect(keyless.status).toBe(400);
    expect(keyless.body.error).toBe('invalid_request_object');
  });

  it('bad input at /request gets OAuth error JSON, never a 5xx', async () => {
    const { challenge } = pkce();
    const cases: [() => ReturnType<typeof push>, number, string][] = [
      [() => t.request.post('/request').type('form').send(authParams(open, challenge)) as ReturnType<typeof push>, 401, 'invalid_client'],
      [() => t.request.post('/request').type('form').set('Authorization', basic(open.id, 'wrong')).send(authParams(open, challenge)) as ReturnType<typeof push>, 401, 'invalid_client'],
      [() => push(open, { ...authParams(open, challenge), redirect_uri: 'https://evil.example.com/cb' }), 400, 'invalid_request'],
      [() => push(open, { ...authParams(open, challenge), response_type: 'token' }), 400, 'unsupported_response_type'],
      [() => push(open, { ...authParams(open, challenge), request_uri: 'urn:x' }), 400, 'request_uri_not_supported'],
      [() => push(open, { ...authParams(open, challenge), code_challenge_method: 'plain' }), 400, 'invalid_request'],
      [() => push(open, { ...authParams(open, challenge), scope: 'openid \u0000' }), 400, ''],
      [() => push(open, { ...authParams(open, challenge), state: 'x'.repeat(100_000) }), 400, ''],
      [() => push(signer, { client_id: signer.id, request: 'not.a.jwt' }), 400, 'invalid_request_object'],
    ];
    for (const [send, status, error] of cases) {
      const res = await send();
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
      if (status === 401 || res.status !== 413) expect(res.status, JSON.stringify(res.body)).toBe(status);
      if (error) expect(res.body.error).toBe(error);
      else expect(res.body.error).toEqual(expect.any(String));
    }
    // an unknown request_uri at /auth: an error back to the client or an error page, never a 5xx
    const unknown = await t.request.get(`/auth?client_id=${open.id}&request_uri=urn:ietf:params:oauth:request_uri:nope`);
    expect(unknown.status).toBeLessThan(500);
  });

  it('requirePar through the CLI (create, update, show), the admin API and apply/export', async () => {
    const r = await cli(t.database.url, ['clients', 'create', '--id', 'cli-par', '--name', 'cli', '--grant', 'authorization_code', '--redirect-uri', REDIRECT_URI, '--require-par', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ client_id: 'cli-par', requirePar: true, profile: null });
    const off = await cli(t.database.url, ['clients', 'update', 'cli-par', '--no-require-par']);
    expect(off.code, off.stderr).toBe(0);
    const show = await cli(t.database.url, ['clients', 'show', 'cli-par']);
    expect(show.stdout).toMatch(/require par\s+no/);
    const bad = await cli(t.database.url, ['clients', 'create', '--name', 'svc', '--grant', 'client_credentials', '--require-par']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('gatehouse: invalid --require-par: pushed authorization requests are for the authorization_code grant; this client has none\n');

    const token = await adminToken(t, ['gatehouse:admin']);
    const created = await api(t, token, 'post', '/clients').send({ name: 'api-par', grants: ['authorization_code'], redirectUris: [REDIRECT_URI], requirePar: true });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ requirePar: true, profile: null });
    const refused = await api(t, token, 'post', '/clients').send({ name: 'api-par', grants: ['authorization_code'], redirectUris: [REDIRECT_URI], requirePar: 'yes' });
    expect(refused.status).toBe(422);

    const exported = await cli(t.database.url, ['export']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/id: par-strict[\s\S]*?requirePar: true/);
  });
});
