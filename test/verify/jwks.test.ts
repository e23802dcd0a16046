// Discovery and the JWKS cache: cached, refetched on an unknown kid at most once
// per cooldown, kept through an outage. Time is moved with a fake Date only
// (network and timers stay real).
import { base64url } from 'jose';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createVerifier, VerifyError } from '../../src/verify/index.ts';
import { accessToken, makeKey, startStubIssuer, type StubIssuer, type TestKey } from './stub-issuer.ts';

const API = 'https://orders.example.com';

async function refusal(p: Promise<unknown>): Promise<VerifyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VerifyError);
  return err as VerifyError;
}

const advance = (seconds: number) => vi.setSystemTime(new Date(Date.now() + seconds * 1000));

describe('keys: discovery and JWKS cache', () => {
  let stub: StubIssuer;
  let k1: TestKey;
  let k2: TestKey;
  let k3: TestKey;
  const stubs: StubIssuer[] = [];

  beforeEach(async () => {
    [k1, k2, k3] = await Promise.all([makeKey('RS256', 'k1'), makeKey('ES256', 'k2'), makeKey('EdDSA', 'k3')]);
    stub = await startStubIssuer([k1]);
    stubs.push(stub);
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await Promise.all(stubs.map((s) => s.close()));
  });

  const token = (key: TestKey, claims: Record<string, unknown> = {}) => accessToken(key, { iss: stub.issuer, aud: API, ...claims });
  const verifierFor = (extra: Partial<Parameters<typeof createVerifier>[0]> = {}) => createVerifier({ issuer: stub.issuer, audience: API, ...extra });

  it('discovers the JWKS once and shares concurrent fetches', async () => {
    const v = verifierFor();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => token(k1)));
    await Promise.all(tokens.map((t) => v.verify(t)));
    await v.verify(await token(k1));
    expect(stub.hits).toEqual({ discovery: 1, jwks: 1 });
  });

  it('uses jwksUri when given, without discovery', async () => {
    const v = verifierFor({ jwksUri: stub.jwksUri });
    await v.verify(await token(k1));
    expect(stub.hits).toEqual({ discovery: 0, jwks: 1 });
  });

  it('fetches nothing for tokens refused on their face (garbage, alg none, HS256)', async () => {
    const v = verifierFor();
    const claims = base64url.encode(JSON.stringify({ iss: stub.issuer, aud: API }));
    for (const t of ['garbage', `${base64url.encode('{"alg":"none"}')}.${claims}.`, `${base64url.encode('{"alg":"HS256","kid":"k1"}')}.${claims}.AAAA`]) {
      expect((await refusal(v.verify(t))).error).toBe('invalid_token');
    }
    expect(stub.hits).toEqual({ discovery: 0, jwks: 0 });
  });

  it('refuses metadata naming another issuer, and fetches no keys from it', async () => {
    stub.metadataIssuer = 'https://evil.example.com';
    const v = verifierFor();
    const err = await refusal(v.verify(await token(k1)));
    expect(err).toMatchObject({ status: 401, error: 'invalid_token', description: "the issuer's signing keys are unavailable" });
    expect(String((err.cause as Error).cause)).toMatch(/names the issuer "https:\/\/evil\.example\.com"/);
    expect(stub.hits.jwks).toBe(0);
    // not cached: once the metadata is right, it works
    delete stub.metadataIssuer;
    await v.verify(await token(k1));
  });

  it('refetches on an unknown kid and accepts the rotated key', async () => {
    const v = verifierFor();
    await v.verify(await token(k1));
    expect(stub.hits.jwks).toBe(1);
    stub.keys = [k1, k2];
    advance(31);
    await v.verify(await token(k2));
    expect(stub.hits.jwks).toBe(2);
    // both keys now cached
    await v.verify(await token(k1));
    await v.verify(await token(k2));
    expect(stub.hits.jwks).toBe(2);
  });

  it('refetches at most once per cooldown, however many unknown kids arrive', async () => {
    const v = verifierFor();
    await v.verify(await token(k1));
    stub.keys = [k1, k2];
    advance(31);
    await v.verify(await token(k2)); // refetch #2
    expect(stub.hits.jwks).toBe(2);
    // k3 published now, but the last fetch was moments ago: no refetch, refused
    stub.keys = [k1, k2, k3];
    advance(10);
    expect((await refusal(v.verify(await token(k3)))).description).toMatch(/unknown key/);
    for (const kid of ['x1', 'x2', 'x3', 'x4']) {
      await refusal(v.verify(await accessToken(k1, { iss: stub.issuer, aud: API }, { kid })));
    }
    expect(stub.hits.jwks).toBe(2);
    // once the cooldown has passed, the next unknown kid refetches
    advance(25);
    await v.verify(await token(k3));
    expect(stub.hits.jwks).toBe(3);
  });

  it('the cooldown is configurable', async () => {
    const v = verifierFor({ jwksCooldown: 5 });
    await v.verify(await token(k1));
    stub.keys = [k1, k2];
    advance(6);
    await v.verify(await token(k2));
    expect(stub.hits.jwks).toBe(2);
  });

  it('keeps verifying with cached keys while the JWKS endpoint is down', async () => {
    const v = verifierFor();
    await v.verify(await token(k1));
    stub.down = true;
    // long past the cache age: a background refresh fails, the cached key still verifies
    advance(3600);
    await v.verify(await token(k1));
    await v.verify(await token(k1));
    // an unknown kid during the outage: one failed refetch, then refused; the cached key keeps working
    advance(60);
    const before = stub.hits.jwks;
    expect((await refusal(v.verify(await token(k2)))).description).toMatch(/unknown key/);
    await refusal(v.verify(await token(k2)));
    expect(stub.hits.jwks - before).toBe(1);
    await v.verify(await token(k1));
    // the endpoint comes back: after the cooldown the new key is fetched
    stub.down = false;
    stub.keys = [k1, k2];
    advance(31);
    await v.verify(await token(k2));
  });

  it('without cached keys, an outage refuses every token, and recovers at once', async () => {
    stub.down = true;
    const v = verifierFor();
    const err = await refusal(v.verify(await token(k1)));
    expect(err).toMatchObject({ status: 401, error: 'invalid_token', description: "the issuer's signing keys are unavailable" });
    stub.down = false;
    await v.verify(await token(k1));
  });

  it('drops keys the issuer no longer publishes once the cache is refreshed', async () => {
    const v = verifierFor({ jwksMaxAge: 60 });
    stub.keys = [k1, k2];
    await v.verify(await token(k1));
    stub.keys = [k2];
    advance(61);
    // the stale cache is refreshed in the background; poll until k1 is gone
    let refused: VerifyError | undefined;
    for (let i = 0; i < 100 && !refused; i++) {
      refused = await v.verify(await token(k1)).then(
        () => undefined,
        (e: unknown) => e as VerifyError,
      );
      if (!refused) await new Promise((r) => setTimeout(r, 10));
    }
    expect(refused?.description).toMatch(/unknown key/);
    await v.verify(await token(k2));
  });

  it('ignores private and symmetric members of the JWKS', async () => {
    const { privateKey: _p, ...rest } = k1;
    const leaked = { ...rest, publicJwk: { ...k1.publicJwk, kid: 'leaky', d: 'AAAA' } };
    const oct = { ...rest, publicJwk: { kty: 'oct', k: 'c2VjcmV0', kid: 'oct', alg: 'HS256' } };
    stub.keys = [k1, leaked as TestKey, oct as TestKey];
    const v = verifierFor({ jwksUri: stub.jwksUri });
    await v.verify(await token(k1));
    expect((await refusal(v.verify(await accessToken(k1, { iss: stub.issuer, aud: API }, { kid: 'leaky' })))).description).toMatch(/unknown key/);
  });
});
