// An https issuer served over plain HTTP behind a TLS-terminating proxy that
// sends no X-Forwarded-* headers (TRUST_PROXY off): every route answers as
// the issuer — the provider's endpoints and Gatehouse's own sign-in pages,
// which set the same secure cookies (src/http/issuer.ts pins the request).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, codeFlowTokens, createUser, createWebClient, type TestClient } from './flow.ts';

const ISSUER = 'https://id.example.com';

describe('https issuer behind a TLS-terminating proxy', () => {
  let t: TestApp;
  let client: TestClient;

  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER } });
    await createUser(t, 'alice@example.com');
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('signs in through the login form and issues tokens whose iss is the https issuer', async () => {
    const b = new Browser(t);
    const tokens = await codeFlowTokens(b, client, { scope: 'openid' }, { email: 'alice@example.com' });
    expect(tokens.access_token).toEqual(expect.any(String));
    const idToken = JSON.parse(Buffer.from(String(tokens.id_token).split('.')[1]!, 'base64url').toString()) as { iss?: string };
    expect(idToken.iss).toBe(ISSUER);
    // the session cookie is the __Host- one, Secure, as on https
    const session = [...b.cookies.values()].find((c) => c.name.startsWith('__Host-gh_session'));
    expect(session).toBeDefined();
  });

  it('discovery names https endpoints whatever Host header arrives', async () => {
    const res = await t.request.get('/.well-known/openid-configuration').set('Host', 'evil.example.net');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(ISSUER);
    expect(res.body.token_endpoint).toBe(`${ISSUER}/token`);
  });
});

describe('TRUST_PROXY on: forwarded headers give the client IP, never the issuer', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER, TRUST_PROXY: '1' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('X-Forwarded-Host and X-Forwarded-Proto do not change discovery', async () => {
    const res = await t.request
      .get('/.well-known/openid-configuration')
      .set('X-Forwarded-Host', 'evil.example.net')
      .set('X-Forwarded-Proto', 'http');
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(ISSUER);
    expect(res.body.authorization_endpoint).toBe(`${ISSUER}/auth`);
    expect(res.body.jwks_uri).toBe(`${ISSUER}/jwks`);
  });
});
