// Single-use credentials under concurrency, on one instance and across two:
// an authorization code or a refresh token raced by ≥ 10 requests gives
// exactly one set of tokens, and the race itself counts as a second use
// (RFC 6749 §4.1.2, RFC 9700 §4.14.2): what the winner got is revoked, so a
// thief who races the victim never ends up with a chain of their own.
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { Browser, basic, codeFlowTokens, exchangeCode, pkce, refresh, signIn } from '../sso/flow.ts';
import { createApi, createServiceClient, createUser, createWebClient, twoApps, type TestClient } from './fixtures.ts';

const RACERS = 10;
const ROUNDS = 3;
const OFFLINE = { scope: 'openid email offline_access', prompt: 'consent' };

interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

const winners = (results: Outcome[]) => results.filter((r) => r.status === 200);

function expectOneWinner(results: Outcome[]): Outcome {
  const won = winners(results);
  expect(won.length, `statuses: ${results.map((r) => r.status).join(',')}`).toBe(1);
  for (const r of results.filter((x) => x.status !== 200)) {
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_grant');
  }
  return won[0]!;
}

async function introspect(t: TestApp, client: TestClient, token: string): Promise<boolean> {
  const res = await t.request.post('/token/introspection').type('form').set('Authorization', basic(client.id, client.secret!)).send({ token });
  expect(res.status).toBe(200);
  return res.body.active === true;
}

describe('single use under concurrency', () => {
  let apps: Awaited<ReturnType<typeof twoApps>>;
  let web: TestClient;
  let n = 0;

  const a = () => apps.a;
  const b = () => apps.b;
  /** request i goes to instance a or b (both: alternate; one: always a) */
  const on = (i: number, both: boolean) => (both && i % 2 === 1 ? b() : a());

  beforeAll(async () => {
    apps = await twoApps({ LOGIN_IP_MAX_FAILURES: '1000' });
    web = await createWebClient(apps.a, { name: 'Web', firstParty: true });
  });
  afterAll(async () => {
    await apps?.close();
  });

  async function person(): Promise<string> {
    const email = `racer${++n}@example.com`;
    await createUser(a(), email);
    return email;
  }

  for (const both of [false, true]) {
    const where = both ? 'across two instances' : 'on one instance';

    it(`an authorization code raced ${RACERS} times ${where}: one set of tokens, then all of it revoked`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const email = await person();
        const browser = new Browser(a());
        const { verifier, challenge } = pkce();
        const r = await signIn(browser, { client_id: web.id, code_challenge: challenge, code_challenge_method: 'S256', ...OFFLINE }, { email });
        const code = r.code!;
        expect(code).toBeTruthy();
        const results = await Promise.all(
          Array.from({ length: RACERS }, (_, i) => exchangeCode(on(i, both), web, code, verifier).then((res) => ({ status: res.status, body: res.body as Record<string, unknown> }))),
        );
        const won = expectOneWinner(results);
        // the losers were second redemptions: what the winner got is revoked (RFC 6749 §4.1.2)
        const rt = won.body.refresh_token as string;
        const at = won.body.access_token as string;
        expect(rt).toEqual(expect.any(String));
        expect((await refresh(a(), web, rt)).body.error).toBe('invalid_grant');
        expect(await introspect(b(), web, at)).toBe(false);
        await a().request.get('/me').set('Authorization', `Bearer ${at}`).expect(401);
      }
    });

    it(`a refresh token raced ${RACERS} times ${where}: one successor, then reuse revokes the grant`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const email = await person();
        const first = await codeFlowTokens(new Browser(a()), web, OFFLINE, { email });
        const rt = first.refresh_token as string;
        const results = await Promise.all(
          Array.from({ length: RACERS }, (_, i) => refresh(on(i, both), web, rt).then((res) => ({ status: res.status, body: res.body as Record<string, unknown> }))),
        );
        const won = expectOneWinner(results);
        // the chain did not fork: the single successor died with the grant
        expect((await refresh(b(), web, won.body.refresh_token as string)).body.error).toBe('invalid_grant');
        expect(await introspect(a(), web, won.body.access_token as string)).toBe(false);
        expect(await introspect(a(), web, first.access_token as string)).toBe(false);
      }
    });
  }

  it('sequential use still works: each refresh token once, codes once', async () => {
    const email = await person();
    let tokens = await codeFlowTokens(new Browser(a()), web, OFFLINE, { email });
    for (let i = 0; i < 3; i++) {
      const res = await refresh(i % 2 ? b() : a(), web, tokens.refresh_token as string);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      tokens = res.body as Record<string, unknown>;
    }
    expect(await introspect(b(), web, tokens.access_token as string)).toBe(true);
  });
});

describe('one-time proofs and assertions across instances', () => {
  let apps: Awaited<ReturnType<typeof twoApps>>;
  const ISSUER = 'http://localhost:3000';
  const API = 'https://api.example.com';

  beforeAll(async () => {
    apps = await twoApps({ ISSUER });
    await createApi(apps.a, { identifier: API, scopes: ['api:use'] });
  });
  afterAll(async () => {
    await apps?.close();
  });

  it('a client assertion (private_key_jwt) raced at both instances authenticates once', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const signer = await createServiceClient(apps.a, { name: 'signer', resources: [API], scopes: ['api:use'], authMethod: 'private_key_jwt', jwks: { keys: [jwk] } });
    for (let round = 0; round < ROUNDS; round++) {
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ iss: signer.id, sub: signer.id, aud: `${ISSUER}/token`, jti: randomUUID(), iat: now, exp: now + 60 })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .sign(privateKey);
      const results = await Promise.all(
        Array.from({ length: RACERS }, (_, i) =>
          (i % 2 ? apps.b : apps.a).request
            .post('/token')
            .type('form')
            .send({ grant_type: 'client_credentials', resource: API, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
        ),
      );
      expect(results.filter((r) => r.status === 200), results.map((r) => r.status).join(',')).toHaveLength(1);
      for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error).toBe('invalid_client');
    }
  });

  it('a DPoP proof raced at both instances of the token endpoint mints once', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const svc = await createServiceClient(apps.a, { name: 'dpop-svc', resources: [API], scopes: ['api:use'] });
    for (let round = 0; round < ROUNDS; round++) {
      const proof = await new SignJWT({ htm: 'POST', htu: `${ISSUER}/token`, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(privateKey);
      const results = await Promise.all(
        Array.from({ length: RACERS }, (_, i) =>
          (i % 2 ? apps.b : apps.a).request.post('/token').type('form').auth(svc.id, svc.secret!).set('DPoP', proof).send({ grant_type: 'client_credentials', resource: API }),
        ),
      );
      expect(results.filter((r) => r.status === 200), results.map((r) => r.status).join(',')).toHaveLength(1);
      for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error).toBe('invalid_dpop_proof');
    }
  });
});
