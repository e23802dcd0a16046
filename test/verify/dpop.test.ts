// DPoP-bound access tokens at the resource server (RFC 9449 §4.3, §7).
import { randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, generateSecret, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenHash, createVerifier, VerifyError, type Verifier } from '../../src/verify/index.ts';
import { accessToken, makeKey, now, startStubIssuer, type StubIssuer, type TestKey } from './stub-issuer.ts';

const API = 'https://orders.example.com';
const URL_ = 'https://orders.example.com/orders/42';

async function refusal(p: Promise<unknown>): Promise<VerifyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VerifyError);
  return err as VerifyError;
}

interface ProofOptions {
  htm?: string;
  htu?: string;
  iat?: number;
  jti?: string | null;
  ath?: string | null;
  typ?: string;
  alg?: string;
  jwk?: JWK;
  signWith?: CryptoKey;
}

describe('DPoP-bound tokens', () => {
  let stub: StubIssuer;
  let signing: TestKey;
  let verifier: Verifier;
  let clientKey: { privateKey: CryptoKey; publicJwk: JWK; jkt: string };
  let otherKey: { privateKey: CryptoKey; publicJwk: JWK; jkt: string };

  const dpopKey = async (alg: 'ES256' | 'EdDSA' | 'RS256' = 'ES256') => {
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const publicJwk = await exportJWK(publicKey);
    return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
  };
  const bound = (jkt = clientKey.jkt, claims: Record<string, unknown> = {}) => accessToken(signing, { iss: stub.issuer, aud: API, cnf: { jkt }, ...claims });
  const proof = (token: string, o: ProofOptions = {}, key = clientKey) => {
    const payload: Record<string, unknown> = { htm: o.htm ?? 'GET', htu: o.htu ?? URL_, iat: o.iat ?? now() };
    if (o.jti !== null) payload.jti = o.jti ?? randomUUID();
    if (o.ath !== null) payload.ath = o.ath ?? accessTokenHash(token);
    return new SignJWT(payload)
      .setProtectedHeader({ alg: o.alg ?? 'ES256', typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? key.publicJwk })
      .sign(o.signWith ?? key.privateKey);
  };
  const dpop = (p: string, method = 'GET', url = URL_) => ({ proof: p, method, url });

  beforeAll(async () => {
    signing = await makeKey('ES256');
    stub = await startStubIssuer([signing]);
    verifier = createVerifier({ issuer: stub.issuer, audience: API, jwksUri: stub.jwksUri });
    clientKey = await dpopKey();
    otherKey = await dpopKey();
  });
  afterAll(async () => {
    await stub?.close();
  });

  it('accepts a bound token with a valid proof (ES256, EdDSA and RS256 proof keys)', async () => {
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const key = await dpopKey(alg);
      const t = await bound(key.jkt);
      const claims = await verifier.verify(t, { scopes: ['orders:read'], dpop: dpop(await proof(t, { alg }, key)) });
      expect(claims.cnf).toEqual({ jkt: key.jkt });
    }
  });

  it('with the DPoP scheme too; htu compared without query and fragment, host case-insensitively', async () => {
    const t = await bound();
    await verifier.verify(t, { scheme: 'DPoP', dpop: dpop(await proof(t, { htu: 'https://ORDERS.example.com:443/orders/42' }), 'GET', `${URL_}?expand=items#x`) });
    await verifier.verify(t, { scheme: 'DPoP', dpop: dpop(await proof(t, { htu: `${URL_}?other=1` })) });
  });

  it('a bound token without a proof → 401 invalid_token', async () => {
    const t = await bound();
    const err = await refusal(verifier.verify(t));
    expect(err).toMatchObject({ status: 401, error: 'invalid_token' });
    expect(err.description).toMatch(/DPoP proof is required/);
    expect((await refusal(verifier.verify(t, { dpop: dpop('') }))).error).toBe('invalid_token');
  });

  it('a bound token presented as Bearer → 401 invalid_token, even with a valid proof (no downgrade)', async () => {
    const t = await bound();
    const err = await refusal(verifier.verify(t, { scheme: 'Bearer', dpop: dpop(await proof(t)) }));
    expect(err).toMatchObject({ status: 401, error: 'invalid_token' });
    expect(err.description).toMatch(/DPoP scheme/);
  });

  it('the DPoP scheme without a proof → invalid_dpop_proof; with an unbound token → invalid_token', async () => {
    const t = await bound();
    expect((await refusal(verifier.verify(t, { scheme: 'DPoP' }))).error).toBe('invalid_dpop_proof');
    const plain = await accessToken(signing, { iss: stub.issuer, aud: API });
    const err = await refusal(verifier.verify(plain, { scheme: 'DPoP', dpop: dpop(await proof(plain)) }));
    expect(err).toMatchObject({ error: 'invalid_token', description: expect.stringMatching(/not DPoP-bound/) });
  });

  it('a proof sent with an unbound token over Bearer (or no scheme) is ignored', async () => {
    const plain = await accessToken(signing, { iss: stub.issuer, aud: API });
    await verifier.verify(plain, { dpop: dpop('garbage') });
    await verifier.verify(plain, { scheme: 'Bearer', dpop: dpop(await proof(plain, { htm: 'POST' })) });
  });

  describe('refuses an invalid proof with 401 invalid_dpop_proof', () => {
    const cases: [string, (t: string) => Promise<{ proof: string; method: string; url: string }>, RegExp][] = [
      ['wrong htm', async (t) => dpop(await proof(t, { htm: 'POST' })), /htm/],
      ['htm of another case', async (t) => dpop(await proof(t, { htm: 'get' })), /htm/],
      ['wrong htu path', async (t) => dpop(await proof(t, { htu: 'https://orders.example.com/orders/43' })), /htu/],
      ['wrong htu host', async (t) => dpop(await proof(t, { htu: 'https://evil.example.com/orders/42' })), /htu/],
      ['wrong htu scheme', async (t) => dpop(await proof(t, { htu: 'http://orders.example.com/orders/42' })), /htu/],
      ['htu not a URL', async (t) => dpop(await proof(t, { htu: 'orders/42' })), /htu/],
      ['wrong ath (hash of another token)', async (t) => dpop(await proof(t, { ath: accessTokenHash(`${t}x`) })), /ath/],
      ['no ath', async (t) => dpop(await proof(t, { ath: null })), /ath/],
      ['key of another client (jkt mismatch)', async (t) => dpop(await proof(t, {}, otherKey)), /not the key the access token is bound to/],
      ['embedded jwk differs from the signing key', async (t) => dpop(await proof(t, { jwk: clientKey.publicJwk, signWith: otherKey.privateKey })), /signature/],
      ['iat too old', async (t) => dpop(await proof(t, { iat: now() - 120 })), /iat/],
      ['iat too far in the future', async (t) => dpop(await proof(t, { iat: now() + 120 })), /iat/],
      ['no jti', async (t) => dpop(await proof(t, { jti: null })), /jti/],
      ['typ JWT', async (t) => dpop(await proof(t, { typ: 'JWT' })), /typ/],
      ['an HS256 proof', async (t) => {
        const secret = await generateSecret('HS256');
        const p = await new SignJWT({ htm: 'GET', htu: URL_, iat: now(), jti: randomUUID(), ath: accessTokenHash(t) })
          .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: clientKey.publicJwk })
          .sign(secret);
        return dpop(p);
      }, /algorithm/],
      ['a private key in the header', async (t) => {
        const { privateKey } = await generateKeyPair('ES256', { extractable: true });
        const privateJwk = await exportJWK(privateKey);
        return dpop(await proof(t, { jwk: privateJwk, signWith: privateKey }));
      }, /invalid/],
      ['two proofs', async (t) => dpop(`${await proof(t)}, ${await proof(t)}`), /exactly one/],
      ['garbage', async () => dpop('not-a-jwt'), /exactly one/],
      ['not JSON', async () => dpop('aaaa.bbbb.cccc'), /not a JWT/],
    ];
    for (const [name, make, description] of cases) {
      it(name, async () => {
        const t = await bound();
        const err = await refusal(verifier.verify(t, { dpop: await make(t) }));
        expect({ status: err.status, error: err.error }).toEqual({ status: 401, error: 'invalid_dpop_proof' });
        expect(err.description).toMatch(description);
      });
    }
  });

  it('tolerates proof iat within the window', async () => {
    const t = await bound();
    await verifier.verify(t, { dpop: dpop(await proof(t, { iat: now() - 50 })) });
    await verifier.verify(t, { dpop: dpop(await proof(t, { iat: now() + 30 })) });
  });

  it('refuses a replayed proof, but not a fresh one for the same token', async () => {
    const t = await bound();
    const p = await proof(t);
    await verifier.verify(t, { dpop: dpop(p) });
    const err = await refusal(verifier.verify(t, { dpop: dpop(p) }));
    expect(err).toMatchObject({ status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof was already used' });
    await verifier.verify(t, { dpop: dpop(await proof(t)) });
  });

  it('a refused proof does not burn its jti', async () => {
    const t = await bound();
    const p = await proof(t);
    await refusal(verifier.verify(t, { dpop: dpop(p, 'POST') }));
    await verifier.verify(t, { dpop: dpop(p) });
  });

  it('a token problem is reported before the proof', async () => {
    const t = await bound(clientKey.jkt, { aud: 'https://payments.example.com' });
    const err = await refusal(verifier.verify(t, { dpop: dpop(await proof(t, { htm: 'POST' })) }));
    expect(err.error).toBe('invalid_token');
  });
});
