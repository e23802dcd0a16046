// createVerifier: signature, algorithm allow-list, typ and claim checks, scopes.
import { createHmac } from 'node:crypto';
import { base64url, exportSPKI } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, VerifyError, wwwAuthenticate, type Verifier } from '../../src/verify/index.ts';
import { accessToken, makeKey, now, startStubIssuer, type StubIssuer, type TestKey } from './stub-issuer.ts';

const ORDERS = 'https://orders.example.com';
const PAYMENTS = 'https://payments.example.com';

/** The VerifyError a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<VerifyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VerifyError);
  return err as VerifyError;
}

describe('createVerifier', () => {
  let stub: StubIssuer;
  let rsa: TestKey;
  let ec: TestKey;
  let ed: TestKey;
  let verifier: Verifier;

  beforeAll(async () => {
    [rsa, ec, ed] = await Promise.all([makeKey('RS256'), makeKey('ES256'), makeKey('EdDSA')]);
    stub = await startStubIssuer([rsa, ec, ed]);
    verifier = createVerifier({ issuer: stub.issuer, audience: ORDERS });
  });
  afterAll(async () => {
    await stub?.close();
  });

  const token = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key = rsa) =>
    accessToken(key, { iss: stub.issuer, aud: ORDERS, ...claims }, header);

  it('accepts a valid token signed with each default algorithm and returns its claims', async () => {
    for (const key of [rsa, ec, ed]) {
      const claims = await verifier.verify(await token({ scope: 'orders:read orders:write' }, {}, key));
      expect(claims).toMatchObject({ iss: stub.issuer, aud: ORDERS, sub: 'frontend', client_id: 'frontend', scope: 'orders:read orders:write' });
    }
    // discovery once, the JWKS once: both cached
    expect(stub.hits).toEqual({ discovery: 1, jwks: 1 });
  });

  it('accepts typ application/at+jwt and an aud array containing the API', async () => {
    await verifier.verify(await token({}, { typ: 'application/at+jwt' }));
    await verifier.verify(await token({ aud: [PAYMENTS, ORDERS] }));
  });

  it('accepts any of several configured audiences', async () => {
    const v = createVerifier({ issuer: stub.issuer, audience: [ORDERS, PAYMENTS], jwksUri: stub.jwksUri });
    await v.verify(await token({ aud: PAYMENTS }));
    await v.verify(await token({ aud: ORDERS }));
    expect((await refusal(v.verify(await token({ aud: 'https://other.example.com' })))).description).toMatch(/not meant for this API/);
  });

  describe('refuses with 401 invalid_token', () => {
    const cases: [string, () => Promise<string>, RegExp][] = [
      ['another issuer', () => token({ iss: 'https://evil.example.com' }), /another issuer/],
      ['the issuer with a trailing slash', () => token({ iss: `${stub.issuer}/` }), /another issuer/],
      ['no iss', () => token({ iss: undefined }), /no iss claim/],
      ['wrong audience', () => token({ aud: PAYMENTS }), /not meant for this API/],
      ['no aud', () => token({ aud: undefined }), /no aud claim/],
      ['expired', () => token({ iat: now() - 600, exp: now() - 60 }), /expired/],
      ['no exp', () => token({ exp: undefined }), /no exp claim/],
      ['exp not a number', () => token({ exp: 'tomorrow' }), /exp/],
      ['nbf in the future', () => token({ nbf: now() + 120 }), /not valid yet/],
      ['iat in the future', () => token({ iat: now() + 120 }), /issued in the future/],
      ['no iat', () => token({ iat: undefined }), /no iat claim/],
      ['no sub', () => token({ sub: undefined }), /no sub claim/],
      ['no client_id', () => token({ client_id: undefined }), /no client_id claim/],
      ['scope not a string', () => token({ scope: ['orders:read'] }), /scope/],
      ['typ missing', () => token({}, { typ: undefined }), /typ must be at\+jwt/],
      ['typ JWT (an ID token)', () => token({}, { typ: 'JWT' }), /typ must be at\+jwt/],
      ['typ dpop+jwt', () => token({}, { typ: 'dpop+jwt' }), /typ must be at\+jwt/],
      ['an unknown kid', () => token({}, { kid: 'nope' }), /unknown key/],
      ['a cnf this API cannot check (mTLS)', () => token({ cnf: { 'x5t#S256': 'abc' } }), /cannot check/],
      ['garbage', async () => 'not-a-token', /malformed/],
      ['three dots', async () => 'a.b.c', /malformed/],
      ['an encrypted token (5 parts)', async () => `${base64url.encode('{"alg":"RSA-OAEP","enc":"A128GCM"}')}.a.b.c.d`, /algorithm|signed JWT/],
    ];
    for (const [name, make, description] of cases) {
      it(name, async () => {
        const err = await refusal(verifier.verify(await make()));
        expect({ status: err.status, error: err.error }).toEqual({ status: 401, error: 'invalid_token' });
        expect(err.description).toMatch(description);
      });
    }

    it('a tampered payload (signature no longer matches)', async () => {
      const [h, p, s] = (await token()).split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
      const forged = `${h}.${base64url.encode(JSON.stringify({ ...claims, scope: 'orders:read orders:admin' }))}.${s}`;
      expect((await refusal(verifier.verify(forged))).description).toMatch(/signature is invalid/);
    });

    it('an empty or oversized token', async () => {
      expect((await refusal(verifier.verify(''))).error).toBe('invalid_token');
      expect((await refusal(verifier.verify(`${'a'.repeat(20_000)}.b.c`))).description).toMatch(/too long/);
    });
  });

  describe('expiry and clock tolerance', () => {
    it('accepts a token expired by less than clockTolerance, refuses one expired by more', async () => {
      const v = createVerifier({ issuer: stub.issuer, audience: ORDERS, jwksUri: stub.jwksUri, clockTolerance: 30 });
      await v.verify(await token({ iat: now() - 300, exp: now() - 10 }));
      expect((await refusal(v.verify(await token({ iat: now() - 300, exp: now() - 60 })))).description).toMatch(/expired/);
      // the default tolerance is 5 s
      expect((await refusal(verifier.verify(await token({ iat: now() - 300, exp: now() - 10 })))).description).toMatch(/expired/);
      await verifier.verify(await token({ iat: now() - 300, exp: now() - 2 }));
    });
    it('tolerates nbf and iat slightly in the future', async () => {
      await verifier.verify(await token({ nbf: now() + 3, iat: now() + 3 }));
    });
  });

  describe('algorithms', () => {
    it('refuses alg none', async () => {
      const claims = { iss: stub.issuer, aud: ORDERS, sub: 'frontend', client_id: 'frontend', iat: now(), exp: now() + 300, scope: 'orders:read' };
      for (const alg of ['none', 'None', 'NONE']) {
        const unsigned = `${base64url.encode(JSON.stringify({ alg, typ: 'at+jwt', kid: rsa.kid }))}.${base64url.encode(JSON.stringify(claims))}.`;
        const err = await refusal(verifier.verify(unsigned));
        expect(err.error).toBe('invalid_token');
        expect(err.description).toMatch(/algorithm is not accepted|not a signed JWT/);
      }
    });

    it('refuses HS256 signed with the RSA public key as the secret (key confusion)', async () => {
      const claims = { iss: stub.issuer, aud: ORDERS, sub: 'frontend', client_id: 'frontend', iat: now(), exp: now() + 300, scope: 'orders:read' };
      const pem = await exportSPKI(rsa.publicKey);
      const secrets = [Buffer.from(pem), Buffer.from(JSON.stringify(rsa.publicJwk)), Buffer.from(rsa.publicJwk.n!, 'base64url')];
      for (const secret of secrets) {
        for (const alg of ['HS256', 'HS384', 'HS512']) {
          const input = `${base64url.encode(JSON.stringify({ alg, typ: 'at+jwt', kid: rsa.kid }))}.${base64url.encode(JSON.stringify(claims))}`;
          const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg]!;
          const forged = `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
          const err = await refusal(verifier.verify(forged));
          expect(err.description).toMatch(/algorithm is not accepted/);
        }
      }
    });

    it('never lets HS* or none into the allow-list', () => {
      for (const algorithms of [['HS256'], ['RS256', 'HS256'], ['none'], ['hs512'], []]) {
        expect(() => createVerifier({ issuer: stub.issuer, audience: ORDERS, algorithms })).toThrow(TypeError);
      }
      expect(() => createVerifier({ issuer: stub.issuer, audience: ORDERS, dpopAlgorithms: ['HS256'] })).toThrow(TypeError);
      expect(() => createVerifier({ issuer: stub.issuer, audience: ORDERS, algorithms: ['XX999'] })).toThrow(/unsupported/);
    });

    it('refuses an algorithm outside a narrowed allow-list', async () => {
      const v = createVerifier({ issuer: stub.issuer, audience: ORDERS, jwksUri: stub.jwksUri, algorithms: ['ES256'] });
      await v.verify(await token({}, {}, ec));
      expect((await refusal(v.verify(await token({}, {}, rsa)))).description).toMatch(/algorithm is not accepted/);
    });

    it('refuses a token whose alg does not fit the key of its kid', async () => {
      // ES256 header naming the RSA key: no usable key
      const forged = await accessToken(ec, { iss: stub.issuer, aud: ORDERS }, { kid: rsa.kid });
      expect((await refusal(verifier.verify(forged))).error).toBe('invalid_token');
    });

    it('accepts a token without kid when one key fits, by trying the candidates', async () => {
      await verifier.verify(await token({}, { kid: undefined }, ec));
      await verifier.verify(await token({}, { kid: undefined }, rsa));
    });
  });

  describe('scopes', () => {
    it('passes when the token has every required scope', async () => {
      const t = await token({ scope: 'orders:read orders:write profile' });
      await verifier.verify(t, { scopes: ['orders:read'] });
      await verifier.verify(t, { scopes: ['orders:write', 'orders:read'] });
      await verifier.verify(t, { scopes: [] });
    });
    it('refuses with 403 insufficient_scope naming the required scopes', async () => {
      const err = await refusal(verifier.verify(await token({ scope: 'orders:read' }), { scopes: ['orders:read', 'orders:write'] }));
      expect(err).toMatchObject({ status: 403, error: 'insufficient_scope', scope: 'orders:read orders:write' });
      expect(err.description).toMatch(/orders:write/);
      expect(wwwAuthenticate(err, { realm: 'orders' })).toBe(
        `Bearer realm="orders", error="insufficient_scope", error_description="the token lacks the scope orders:write", scope="orders:read orders:write"`,
      );
    });
    it('a token without scope claim has no scopes; prefixes do not count', async () => {
      expect((await refusal(verifier.verify(await token({ scope: undefined }), { scopes: ['orders:read'] }))).status).toBe(403);
      expect((await refusal(verifier.verify(await token({ scope: 'orders:read:all orders' }), { scopes: ['orders:read'] }))).status).toBe(403);
    });
    it('checks the token before the scopes: a bad token is 401 even when scopes are missing', async () => {
      expect((await refusal(verifier.verify(await token({ aud: PAYMENTS, scope: '' }), { scopes: ['orders:read'] }))).status).toBe(401);
    });
  });

  describe('options', () => {
    it('rejects bad configuration at once', () => {
      expect(() => createVerifier({ issuer: 'not a url', audience: ORDERS })).toThrow(TypeError);
      expect(() => createVerifier({ issuer: stub.issuer, audience: '' })).toThrow(TypeError);
      expect(() => createVerifier({ issuer: stub.issuer, audience: [] })).toThrow(TypeError);
      expect(() => createVerifier({ issuer: stub.issuer, audience: ORDERS, clockTolerance: -1 })).toThrow(TypeError);
      expect(() => createVerifier({ issuer: stub.issuer, audience: ORDERS, jwksUri: 'nope' })).toThrow(TypeError);
    });
  });
});

describe('wwwAuthenticate', () => {
  it('builds RFC 6750 challenges and escapes what it must', () => {
    const err = new VerifyError('invalid_token', 'bad "quote" and \\ backslash\r\nInjected: yes é');
    expect(wwwAuthenticate(err)).toBe(`Bearer error="invalid_token", error_description="bad \\"quote\\" and \\\\ backslash??Injected: yes ?"`);
    expect(wwwAuthenticate(err, { realm: 'a"b', scheme: 'DPoP', algs: ['ES256', 'EdDSA'] })).toBe(
      `DPoP realm="a\\"b", error="invalid_token", error_description="bad \\"quote\\" and \\\\ backslash??Injected: yes ?", algs="ES256 EdDSA"`,
    );
  });
  it('gives the bare challenge when no credentials were sent', () => {
    const err = new VerifyError('invalid_request', 'an access token is required', { credentialsMissing: true });
    expect(wwwAuthenticate(err, { realm: 'orders' })).toBe('Bearer realm="orders"');
    expect(wwwAuthenticate(err)).toBe('Bearer');
  });
  it('status follows the error code', () => {
    expect(new VerifyError('insufficient_scope', 'x').status).toBe(403);
    expect(new VerifyError('invalid_token', 'x').status).toBe(401);
    expect(new VerifyError('invalid_dpop_proof', 'x').status).toBe(401);
  });
});
