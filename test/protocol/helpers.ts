// Client-side pieces for PAR, JAR, private_key_jwt and DPoP tests: keys,
// client assertions, DPoP proofs, request objects, and the browser side of
// an authorization request by reference (request_uri).
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { expect } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { Browser, isConsentPage, isLoginPage, PASSWORD, redirect, submitConsent, submitLogin, type Step } from '../sso/flow.ts';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const now = () => Math.floor(Date.now() / 1000);

export interface KeyPair {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function keyPair(alg: 'ES256' | 'PS256' | 'RS256' | 'EdDSA', kid = `${alg}-${randomUUID().slice(0, 8)}`): Promise<KeyPair> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid, use: 'sig' } };
}

/** A private_key_jwt client assertion (RFC 7523) for `clientId`, audience the issuer by default. */
export function clientAssertion(t: TestApp, clientId: string, key: KeyPair, opts: { alg?: string; aud?: string; claims?: JWTPayload } = {}): Promise<string> {
  return new SignJWT({ iss: clientId, sub: clientId, aud: opts.aud ?? t.config.issuer, jti: randomUUID(), iat: now(), exp: now() + 60, ...opts.claims })
    .setProtectedHeader({ alg: opts.alg ?? key.alg, kid: key.publicJwk.kid! })
    .sign(key.privateKey);
}

/** A DPoP proof (RFC 9449) for `method url` (with `accessToken`: its ath, for resource requests). */
export function dpopProof(key: KeyPair, method: string, url: string, accessToken?: string): Promise<string> {
  const { kid: _kid, use: _use, ...jwk } = key.publicJwk;
  const ath = accessToken ? { ath: createHash('sha256').update(accessToken).digest('base64url') } : {};
  return new SignJWT({ htm: method, htu: url, jti: randomUUID(), iat: now(), ...ath }).setProtectedHeader({ typ: 'dpop+jwt', alg: key.alg, jwk }).sign(key.privateKey);
}

/** A signed request object (RFC 9101) carrying `params`. */
export function requestObject(t: TestApp, clientId: string, key: KeyPair, params: Record<string, string>, opts: { alg?: string } = {}): Promise<string> {
  return new SignJWT({ ...params, iss: clientId, aud: t.config.issuer, client_id: clientId, jti: randomUUID(), iat: now(), nbf: now() - 1, exp: now() + 300 })
    .setProtectedHeader({ alg: opts.alg ?? key.alg, kid: key.publicJwk.kid! })
    .sign(key.privateKey);
}

/** The browser side of /auth?client_id&request_uri (or any /auth URL): login, consent, back to the client. */
export async function signInAt(t: TestApp, url: string, email: string): Promise<Step> {
  const browser = new Browser(t);
  let step = await browser.get(url);
  for (let i = 0; i < 4 && step.kind === 'page'; i++) {
    const p = step.page;
    if (isLoginPage(p)) step = await submitLogin(browser, p, email, PASSWORD);
    else if (isConsentPage(p)) step = await submitConsent(browser, p, 'approve');
    else break;
  }
  return step;
}

/** The code from a step that must be the redirect back to the client. */
export function codeOf(step: Step): string {
  const back = redirect(step);
  const code = back.searchParams.get('code');
  expect(code, back.href).toBeTruthy();
  return code!;
}
