// Who may call the admin API: holders of a Gatehouse JWT access token
// (RFC 9068) for the built-in resource `urn:gatehouse:admin`.
//
// A token is accepted when, in this order:
//   - it is a JWS signed by a key of the keyring this instance holds now
//     (checked in-process with a local JWK set, rebuilt whenever the keyring
//     is reloaded: no HTTP call to our own /jwks),
//   - `typ` is at+jwt, `iss` is the issuer, `aud` is urn:gatehouse:admin,
//     `exp` has not passed, and it carries jti and client_id,
//   - its client still exists and is enabled (the registry's cache),
//   - its jti is not in revoked_tokens (one indexed read),
//   - a token issued within a grant (a person's token) is still backed by its
//     grant, exactly as introspection decides (findJwtAccessToken), and the
//     person's account still exists and is enabled,
//   - a DPoP-bound token (`cnf.jkt`) comes with `Authorization: DPoP …` and a
//     valid DPoP proof (RFC 9449 §4.3, §7.1: htm, htu, iat, ath, the key's
//     thumbprint; proofs are single-use per instance, within a 60 s window).
//     Tokens bound otherwise (mTLS `x5t#S256`) are refused.
//
// Scopes: `gatehouse:admin` allows everything; otherwise the route's own scope
// (e.g. gatehouse:clients:write) is needed. A write scope does not imply the
// read scope: each route names exactly one narrow scope.
import { createHash } from 'node:crypto';
import {
  EmbeddedJWK,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { getAccount, isAccountId } from '../accounts/store.ts';
import type { RevocationList } from '../oidc/revocations.ts';
import type { ClientRegistry } from '../clients/registry.ts';
import type { Db } from '../db/client.ts';
import type { Keyring } from '../keys/index.ts';
import { SIGNING_ALGS } from '../keys/index.ts';
import { findJwtAccessToken } from '../oidc/introspection.ts';
import { ADMIN_RESOURCE } from '../resources/store.ts';
import { ProblemError } from './problem.ts';

export const ADMIN_REALM = 'gatehouse-admin';
export const FULL_ADMIN_SCOPE = 'gatehouse:admin';

/** Proof algorithms accepted in a DPoP proof (as the token endpoint: provider.ts). */
export const DPOP_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'];
const DPOP_IAT_WINDOW_SECONDS = 60;

/** The authenticated caller, in ctx.state.admin. */
export interface AdminPrincipal {
  clientId: string;
  /** the token's `sub`: the client id itself for client_credentials, an account id for a person */
  subject: string;
  /** a person's token (issued within a grant) rather than a machine's */
  isUser: boolean;
  scopes: Set<string>;
  jti: string;
  exp: number;
}

export interface AuthDeps {
  db: Db;
  issuer: string;
  keyring: () => Keyring;
  clients: ClientRegistry;
  revocations: RevocationList;
  provider: () => Provider;
}

const quote = (s: string) => s.replace(/["\\]/g, '');

function challenge(scheme: 'Bearer' | 'DPoP', params: Record<string, string | undefined>): string {
  const parts = [`realm="${ADMIN_REALM}"`];
  for (const [k, v] of Object.entries(params)) if (v !== undefined) parts.push(`${k}="${quote(v)}"`);
  if (scheme === 'DPoP') parts.push(`algs="${DPOP_ALGS.join(' ')}"`);
  return `${scheme} ${parts.join(', ')}`;
}

function unauthorized(detail: string, scheme: 'Bearer' | 'DPoP' = 'Bearer', error = 'invalid_token'): ProblemError {
  return new ProblemError('unauthorized', detail, {
    headers: { 'WWW-Authenticate': challenge(scheme, { error, error_description: detail }) },
  });
}

/** 401 for a request without any credentials: RFC 6750 §3.1, no error code. */
function noCredentials(): ProblemError {
  return new ProblemError('unauthorized', 'this operation needs an access token for urn:gatehouse:admin (Authorization: Bearer <token>)', {
    headers: { 'WWW-Authenticate': challenge('Bearer', {}) },
  });
}

export function insufficientScope(required: string, scheme: 'Bearer' | 'DPoP' = 'Bearer'): ProblemError {
  const detail = `this operation needs the scope ${required} (or ${FULL_ADMIN_SCOPE})`;
  return new ProblemError('forbidden', detail, {
    headers: { 'WWW-Authenticate': challenge(scheme, { error: 'insufficient_scope', error_description: detail, scope: required }) },
  });
}

export function hasScope(p: AdminPrincipal, required: string): boolean {
  return p.scopes.has(FULL_ADMIN_SCOPE) || p.scopes.has(required);
}

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 16 * 1024;

export interface Authenticator {
  authenticate(ctx: Context): Promise<AdminPrincipal & { scheme: 'Bearer' | 'DPoP' }>;
}

export function createAuthenticator(deps: AuthDeps): Authenticator {
  // The local JWK set follows the keyring: rebuilt when the app swaps it.
  let ring: Keyring | undefined;
  let keys: JWTVerifyGetKey | undefined;
  const currentKeys = (): JWTVerifyGetKey => {
    const now = deps.keyring();
    if (now !== ring || !keys) {
      ring = now;
      keys = createLocalJWKSet({ keys: now.publicJwks.keys });
    }
    return keys;
  };
  const seenProofs = new ProofReplayCache();

  async function verifyToken(token: string, scheme: 'Bearer' | 'DPoP'): Promise<JWTPayload> {
    if (token.length > MAX_TOKEN_LENGTH || !JWS_COMPACT.test(token)) throw unauthorized('the access token is not a JWT', scheme);
    try {
      const { payload } = await jwtVerify(token, currentKeys(), {
        issuer: deps.issuer,
        audience: ADMIN_RESOURCE,
        typ: 'at+jwt',
        algorithms: [...SIGNING_ALGS],
        requiredClaims: ['exp', 'iat', 'jti', 'client_id', 'sub'],
      });
      return payload;
    } catch (err) {
      throw unauthorized(describeJoseError(err), scheme);
    }
  }

  return {
    async authenticate(ctx) {
      const header = ctx.get('Authorization');
      if (header === '') throw noCredentials();
      const m = /^(Bearer|DPoP) +([^\s]+) *$/i.exec(header);
      if (!m) throw unauthorized('the Authorization header must be "Bearer <access token>" (or "DPoP <access token>")');
      const scheme: 'Bearer' | 'DPoP' = m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
      const token = m[2]!;
      const payload = await verifyToken(token, scheme);

      const clientId = payload.client_id;
      const jti = payload.jti;
      const sub = payload.sub;
      const scope = payload.scope ?? '';
      if (typeof clientId !== 'string' || typeof jti !== 'string' || typeof sub !== 'string' || typeof scope !== 'string') {
        throw unauthorized('the access token has malformed claims', scheme);
      }

      // Sender constraint.
      const cnf = typeof payload.cnf === 'object' && payload.cnf !== null ? (payload.cnf as Record<string, unknown>) : undefined;
      if (cnf && typeof cnf.jkt === 'string') {
        if (scheme !== 'DPoP') throw unauthorized('the access token is DPoP-bound: send it as "Authorization: DPoP <token>" with a DPoP proof', 'DPoP');
        await checkDpopProof(ctx, deps.issuer, token, cnf.jkt, seenProofs);
      } else if (cnf) {
        throw unauthorized('certificate-bound access tokens are not accepted by the admin API', scheme);
      } else if (scheme === 'DPoP') {
        throw unauthorized('the access token is not DPoP-bound: send it as "Authorization: Bearer <token>"', 'DPoP');
      }

      const client = await deps.clients.get(clientId);
      if (!client || client.disabled) throw unauthorized('the client of this access token is disabled or gone', scheme);
      if (deps.revocations.has(jti)) throw unauthorized('the access token has been revoked', scheme);

      // A token issued within a grant (marked jti, see oidc/introspection.ts)
      // must still be backed by it; a person's account must still be enabled.
      if (jti.startsWith('g.') && !(await findJwtAccessToken(deps.provider(), token))) {
        throw unauthorized('the access token has been revoked', scheme);
      }
      const isUser = sub !== clientId && isAccountId(sub);
      if (isUser) {
        const account = await getAccount(deps.db, sub).catch(() => undefined);
        if (!account || account.disabled) throw unauthorized('the account of this access token is disabled or gone', scheme);
      }

      return {
        scheme,
        clientId,
        subject: sub,
        isUser,
        scopes: new Set(scope.split(' ').filter(Boolean)),
        jti,
        exp: typeof payload.exp === 'number' ? payload.exp : 0,
      };
    },
  };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the access token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'the access token is not for the admin API (aud must be urn:gatehouse:admin)';
    if (err.claim === 'iss') return 'the access token was not issued by this Gatehouse';
    if (err.claim === 'typ') return 'the token is not an access token (typ must be at+jwt)';
    return `the access token's ${err.claim} claim is not acceptable`;
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return 'the access token signature does not verify with any current signing key';
  }
  return 'the access token is not valid';
}

// ------------------------------------------------------------------- DPoP

/** jti of proofs seen in the last window (per instance; proofs older than the window are refused anyway). */
class ProofReplayCache {
  private seen = new Map<string, number>();
  /** false if the jti was already used */
  use(jti: string, nowMs: number): boolean {
    if (this.seen.size > 10_000) for (const [k, exp] of this.seen) if (exp <= nowMs) this.seen.delete(k);
    const exp = this.seen.get(jti);
    if (exp !== undefined && exp > nowMs) return false;
    this.seen.set(jti, nowMs + 2 * DPOP_IAT_WINDOW_SECONDS * 1000);
    return true;
  }
}

function dpopError(detail: string): ProblemError {
  return unauthorized(detail, 'DPoP', 'invalid_dpop_proof');
}

async function checkDpopProof(ctx: Context, issuer: string, token: string, jkt: string, seen: ProofReplayCache): Promise<void> {
  const proof = ctx.get('DPoP');
  if (proof === '' || proof.includes(',')) throw dpopError('a DPoP-bound access token needs exactly one DPoP proof header');
  let payload: JWTPayload;
  let jwk: JWK | undefined;
  try {
    const header = decodeProtectedHeader(proof);
    jwk = header.jwk;
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS }));
  } catch {
    throw dpopError('the DPoP proof is malformed or its signature does not verify');
  }
  if (!jwk || (await calculateJwkThumbprint(jwk, 'sha256')) !== jkt) throw dpopError('the DPoP proof key is not the key the access token is bound to');
  if (payload.htm !== ctx.method) throw dpopError('the DPoP proof htm does not match the request method');
  const htu = typeof payload.htu === 'string' ? stripQuery(payload.htu) : undefined;
  const expected = [new URL(ctx.path, issuer).href, `${ctx.origin}${ctx.path}`];
  if (!htu || !expected.includes(htu)) throw dpopError('the DPoP proof htu does not match the request URL');
  const now = Date.now();
  if (typeof payload.iat !== 'number' || Math.abs(now / 1000 - payload.iat) > DPOP_IAT_WINDOW_SECONDS) {
    throw dpopError('the DPoP proof iat is not within 60 seconds of now');
  }
  const ath = createHash('sha256').update(token).digest('base64url');
  if (payload.ath !== ath) throw dpopError('the DPoP proof ath does not match the access token');
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) throw dpopError('the DPoP proof has no jti');
  if (!seen.use(`${jkt}:${payload.jti}`, now)) throw dpopError('the DPoP proof has been used before');
}

function stripQuery(u: string): string | undefined {
  try {
    const url = new URL(u);
    url.search = '';
    url.hash = '';
    return url.href;
  } catch {
    return undefined;
  }
}
