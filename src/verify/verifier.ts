// createVerifier: checks Gatehouse (RFC 9068) JWT access tokens at a protected resource.
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { checkDpopProof, ReplayCache, type DpopRequest, type ReplayStore } from './dpop.ts';
import { VerifyError } from './errors.ts';
import { createKeyCache, createMetadataCache, KeysUnavailable, type FetchFunction } from './remote.ts';

/** Asymmetric JWS algorithms the verifier can be configured with. */
export const SUPPORTED_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);

/** The algorithms Gatehouse signs access tokens with: the default allow-list. */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'ES256', 'EdDSA']);

/** Algorithms accepted for DPoP proofs by default. */
export const DEFAULT_DPOP_ALGORITHMS: readonly string[] = Object.freeze(['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'Ed25519']);

/** Options of {@link createVerifier}. */
export interface VerifierOptions {
  /** The issuer URL, exactly as in the tokens' `iss` (e.g. `https://id.example.com`). */
  issuer: string;
  /** This API's resource identifier: the `aud` its tokens carry. An array accepts any of several. */
  audience: string | readonly string[];
  /** JWS algorithm allow-list (default RS256, ES256, EdDSA). `none` and HS* are never accepted: listing them throws. */
  algorithms?: readonly string[];
  /** Seconds of clock skew tolerated on `exp`, `nbf`, `iat` and DPoP `iat` (default 5). */
  clockTolerance?: number;
  /** Where the issuer's keys are. Default: `jwks_uri` from `${issuer}/.well-known/openid-configuration`. */
  jwksUri?: string;
  /** A `fetch` implementation for discovery and the JWKS (default: the global `fetch`). */
  fetch?: FetchFunction;
  /** Minimum seconds between two JWKS fetches triggered by unknown `kid`s or stale keys (default 30). */
  jwksCooldown?: number;
  /** Seconds after which cached keys are refreshed in the background; kept if that fails (default 600). */
  jwksMaxAge?: number;
  /** Timeout of each discovery / JWKS request in milliseconds (default 5000). */
  timeout?: number;
  /** Algorithms accepted for DPoP proofs (default ES256, ES384, RS256, PS256, EdDSA, Ed25519; asymmetric only). */
  dpopAlgorithms?: readonly string[];
  /** Seconds a DPoP proof's `iat` may differ from now, on top of `clockTolerance` (default 60). */
  dpopWindow?: number;
  /** How many DPoP proof `jti`s are remembered for replay detection (default 50 000). */
  dpopReplayCacheSize?: number;
  /**
   * Where DPoP proof `jti`s are remembered. Default: in this process (a proof
   * replayed against another instance of the service is not detected). Give
   * a store that all instances share (a database or Redis `SET NX` with a TTL)
   * to detect replays across instances.
   */
  dpopReplayStore?: ReplayStore;
  /**
   * The issuer's public keys, when the service already holds them (the
   * current set is asked for on each verification, so it may change). No
   * discovery or JWKS request is made. Gatehouse's own admin API uses this.
   */
  jwks?: () => JSONWebKeySet;
}

/** The actor chain of a token obtained by token exchange (RFC 8693 §4.1). */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
  [claim: string]: unknown;
}

/** The claims of a verified access token (RFC 9068 §2.2); `iss`, `sub`, `aud`, `exp`, `iat` and `client_id` are always present. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  client_id: string;
  jti?: string;
  /** space-separated scopes */
  scope?: string;
  /** set when the token was obtained by token exchange: who acts on behalf of `sub` */
  act?: ActorClaim;
  /** confirmation: `jkt` is the thumbprint of the DPoP key the token is bound to */
  cnf?: { jkt?: string; [member: string]: unknown };
}

/** Options of one {@link Verifier.verify} call. */
export interface VerifyOptions {
  /** Scopes the request needs; all must be in the token's `scope` (else 403 insufficient_scope). */
  scopes?: readonly string[];
  /** The request's DPoP proof, method and URL: required when the token is DPoP-bound (`cnf.jkt`). */
  dpop?: DpopRequest;
  /**
   * The `Authorization` scheme the token came with, when known (the middlewares pass it).
   * `Bearer` with a DPoP-bound token is refused (RFC 9449 §7.2); `DPoP` with a token
   * that is not DPoP-bound is refused too.
   */
  scheme?: 'Bearer' | 'DPoP';
}

/** Verifies access tokens for one API. Create one per API at start-up and share it: it holds the key and replay caches. */
export interface Verifier {
  /**
   * Resolves with the token's claims, or rejects with a {@link VerifyError}
   * (401 invalid_token / invalid_dpop_proof, 403 insufficient_scope).
   */
  verify(token: string, opts?: VerifyOptions): Promise<AccessTokenClaims>;
  /** The DPoP proof algorithms accepted (for the `algs` challenge parameter). */
  readonly dpopAlgorithms: readonly string[];
}

const MAX_TOKEN_LENGTH = 16_384;

function checkAlgorithms(list: readonly string[], option: string): string[] {
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`createVerifier: ${option} must be a non-empty array`);
  for (const alg of list) {
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none' || /^HS/i.test(alg)) {
      throw new TypeError(`createVerifier: ${option} must not contain ${JSON.stringify(alg)} (only asymmetric algorithms)`);
    }
    if (!SUPPORTED_ALGORITHMS.includes(alg)) throw new TypeError(`createVerifier: ${option}: unsupported algorithm ${JSON.stringify(alg)}`);
  }
  return [...list];
}

function seconds(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`createVerifier: ${option} must be a non-negative number`);
  return value;
}

/** Maps jose's verification failures to what the client is told. */
function describe(err: unknown): string {
  if (err instanceof KeysUnavailable) return "the issuer's signing keys are unavailable";
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'the token is too old' : 'the token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `the token has no ${err.claim} claim`;
    switch (err.claim) {
      case 'iss':
        return 'the token was issued by another issuer';
      case 'aud':
        return 'the token is not meant for this API';
      case 'nbf':
        return 'the token is not valid yet';
      case 'typ':
        return 'the token is not a JWT access token (typ must be at+jwt)';
      default:
        return `the token ${err.claim} claim is invalid`;
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'the token algorithm is not accepted';
  if (err instanceof errors.JWKSNoMatchingKey) return 'the token was signed with an unknown key';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  return 'the token is malformed';
}

/** A key resolver over a JWK set the caller holds; rebuilt only when the caller hands out another set. */
function localKeys(current: () => JSONWebKeySet): JWTVerifyGetKey {
  let set: JSONWebKeySet | undefined;
  let resolver: JWTVerifyGetKey | undefined;
  return (header, token) => {
    const now = current();
    if (now !== set || !resolver) {
      set = now;
      resolver = createLocalJWKSet(now);
    }
    return resolver(header, token);
  };
}

/** Space-separated scopes of a `scope` claim. */
function scopesOf(claim: unknown): Set<string> {
  return new Set(typeof claim === 'string' ? claim.split(' ').filter(Boolean) : []);
}

/**
 * Creates a verifier of Gatehouse access tokens for one API (`audience`).
 *
 * It fetches the issuer's keys from its JWKS (found through discovery unless
 * `jwksUri` is given), caches them, refetches on an unknown `kid` at most once
 * per `jwksCooldown`, and keeps using cached keys while the JWKS endpoint is
 * down. Each token must be a signed JWT with `typ: at+jwt`, an allowed
 * asymmetric algorithm, the exact `iss`, this API in `aud`, an unexpired `exp`,
 * a past `nbf` / `iat`, and the RFC 9068 claims `sub` and `client_id`.
 * DPoP-bound tokens (`cnf.jkt`) also need a valid DPoP proof.
 *
 * @example
 * const verifier = createVerifier({ issuer: 'https://id.example.com', audience: 'https://orders.example.com' });
 * const claims = await verifier.verify(token, { scopes: ['orders:read'] });
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const { issuer } = options;
  if (typeof issuer !== 'string' || !URL.canParse(issuer)) throw new TypeError('createVerifier: issuer must be a URL');
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a.length === 0)) {
    throw new TypeError('createVerifier: audience must be a non-empty string (or array of strings)');
  }
  if (options.jwksUri !== undefined && !URL.canParse(options.jwksUri)) throw new TypeError('createVerifier: jwksUri must be a URL');
  const algorithms = checkAlgorithms(options.algorithms ?? DEFAULT_ALGORITHMS, 'algorithms');
  const dpopAlgorithms = checkAlgorithms(options.dpopAlgorithms ?? DEFAULT_DPOP_ALGORITHMS, 'dpopAlgorithms');
  const clockTolerance = seconds(options.clockTolerance, 5, 'clockTolerance');
  const dpopWindow = seconds(options.dpopWindow, 60, 'dpopWindow');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = Math.round(seconds(options.timeout, 5000, 'timeout'));
  const replay: ReplayStore =
    options.dpopReplayStore ?? new ReplayCache(Math.max(1, Math.floor(seconds(options.dpopReplayCacheSize, 50_000, 'dpopReplayCacheSize'))));
  if (options.jwks !== undefined && typeof options.jwks !== 'function') throw new TypeError('createVerifier: jwks must be a function returning a JWK set');

  const metadata = createMetadataCache(issuer, fetchImpl, timeoutMs);
  const keys = options.jwks ? localKeys(options.jwks) : createKeyCache({
    jwksUri: async () => {
      if (options.jwksUri !== undefined) return options.jwksUri;
      const { jwks_uri } = await metadata();
      if (!jwks_uri) throw new Error(`the metadata of ${issuer} has no jwks_uri`);
      return jwks_uri;
    },
    fetch: fetchImpl,
    timeoutMs,
    cooldownMs: seconds(options.jwksCooldown, 30, 'jwksCooldown') * 1000,
    maxAgeMs: seconds(options.jwksMaxAge, 600, 'jwksMaxAge') * 1000,
  });

  const jwtOptions: JWTVerifyOptions = {
    issuer,
    audience: audiences,
    algorithms,
    clockTolerance,
    typ: 'at+jwt', // jose also accepts application/at+jwt
    requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'client_id'],
  };

  const invalid = (description: string, cause?: unknown) => new VerifyError('invalid_token', description, { cause });

  const verifySignatureAndClaims = async (token: string): Promise<AccessTokenClaims> => {
    if (typeof token !== 'string' || token.length === 0) throw invalid('no access token');
    if (token.length > MAX_TOKEN_LENGTH) throw invalid('the token is too long');
    // reject the wrong shapes and algorithms before any key lookup (which may go to the network)
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch (cause) {
      throw invalid('the token is malformed', cause);
    }
    if (token.split('.').length !== 3) throw invalid('the token is not a signed JWT');
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg) || /^HS|^none$/i.test(header.alg)) {
      throw invalid('the token algorithm is not accepted');
    }
    try {
      const { payload } = await jwtVerify(token, keys, jwtOptions);
      return payload as AccessTokenClaims;
    } catch (err) {
      if (err instanceof errors.JWKSMultipleMatchingKeys) {
        // no kid and several candidate keys: try each
        for await (const key of err) {
          try {
            return (await jwtVerify(token, key, jwtOptions)).payload as AccessTokenClaims;
          } catch {
            // next key
          }
        }
        throw invalid('the token signature is invalid', err);
      }
      throw invalid(describe(err), err);
    }
  };

  return {
    dpopAlgorithms,
    async verify(token: string, opts: VerifyOptions = {}): Promise<AccessTokenClaims> {
      const claims = await verifySignatureAndClaims(token);
      if (typeof claims.sub !== 'string' || typeof claims.client_id !== 'string') throw invalid('the token sub and client_id must be strings');
      const now = Date.now() / 1000;
      if (claims.iat > now + clockTolerance) throw invalid('the token was issued in the future');
      if (claims.iat > claims.exp) throw invalid('the token expires before it was issued');
      if (claims.scope !== undefined && typeof claims.scope !== 'string') throw invalid('the token scope claim must be a string');

      // sender constraint
      const cnf = claims.cnf;
      if (cnf !== undefined && (typeof cnf !== 'object' || cnf === null)) throw invalid('the token cnf claim is invalid');
      const jkt = cnf?.jkt;
      if (cnf !== undefined && jkt === undefined) throw invalid('the token is bound to a credential this API cannot check');
      if (jkt !== undefined) {
        if (typeof jkt !== 'string' || jkt.length === 0) throw invalid('the token cnf.jkt claim is invalid');
        if (opts.scheme === 'Bearer') throw invalid('the token is DPoP-bound: send it with the DPoP scheme and a DPoP proof');
        if (!opts.dpop || opts.dpop.proof === undefined || opts.dpop.proof === '') {
          if (opts.scheme === 'DPoP') throw new VerifyError('invalid_dpop_proof', 'a DPoP proof (DPoP header) is required');
          throw invalid('the token is DPoP-bound: a DPoP proof is required');
        }
        await checkDpopProof(opts.dpop, token, jkt, { algorithms: dpopAlgorithms, windowSeconds: dpopWindow, clockTolerance, replay });
      } else if (opts.scheme === 'DPoP') {
        throw invalid('the token is not DPoP-bound: send it with the Bearer scheme');
      }
      // else: a proof sent with an unbound token is ignored (RFC 9449 §7.2 lets a resource server do so)

      const required = opts.scopes ?? [];
      if (required.length > 0) {
        const granted = scopesOf(claims.scope);
        const missing = required.filter((s) => !granted.has(s));
        if (missing.length > 0) {
          throw new VerifyError('insufficient_scope', `the token lacks the scope ${missing.join(' ')}`, { scope: required.join(' ') });
        }
      }
      return claims;
    },
  };
}
