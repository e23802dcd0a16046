// Who may call the admin API: holders of a Gatehouse JWT access token
// (RFC 9068) for the built-in resource `urn:gatehouse:admin`.
//
// Two checks, each done by the one module that does it everywhere:
//   - the token itself, by the `gatehouse/verify` library that every service
//     uses (src/verify): signature against the keyring this instance signs
//     with (no HTTP call to our own /jwks), `typ` at+jwt, `iss`, `aud`
//     urn:gatehouse:admin, `exp`, and for a DPoP-bound token (`cnf.jkt`) the
//     `Authorization: DPoP` scheme with a valid proof (RFC 9449) whose jti is
//     single-use on every instance (the database's replay store, shared with
//     oidc-provider's own DPoP and client-assertion checks);
//   - whether it still stands, by the rule introspection and token exchange
//     use (src/oidc/introspection.ts checkAccessToken): not revoked, its
//     client enabled, its grant alive, its person enabled.
//
// Scopes: `gatehouse:admin` allows everything; otherwise the route's own
// scope (e.g. gatehouse:clients:write) is needed. A write scope does not imply
// the read scope: each route names exactly one narrow scope. A person holds
// only what their roles on the admin API grant now (the built-in role
// gatehouse-admin, or narrower ones): their token's scopes are cut to their
// current roles on every call, so taking a role away applies at once.
import { decodeJwt } from 'jose';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Db } from '../db/client.ts';
import { FULL_ADMIN_SCOPE, holds } from '../kernel/actor.ts';
import type { Keyring } from '../keys/index.ts';
import { SIGNING_ALGS } from '../keys/index.ts';
import { checkAccessToken, isRefusal } from '../oidc/introspection.ts';
import { rolesForAccount } from '../resources/roles.ts';
import { ADMIN_RESOURCE } from '../resources/store.ts';
import { createVerifier, VerifyError, type ReplayStore } from '../verify/index.ts';
import { ProblemError } from './problem.ts';

export const ADMIN_REALM = 'gatehouse-admin';
export { FULL_ADMIN_SCOPE };

/** Proof algorithms accepted in a DPoP proof (as the token endpoint: provider.ts). */
export const DPOP_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'];

/** The authenticated caller, in ctx.state.admin. */
export interface AdminPrincipal {
  clientId: string;
  /** a person's account id; for a machine, the token's `sub` (the client id for client_credentials) */
  subject: string;
  /** a person's token (issued within a grant, or exchanged from one) rather than a machine's */
  isUser: boolean;
  scopes: Set<string>;
  jti: string;
  exp: number;
  /** RFC 8693 actor chain of an exchanged token: who acts on behalf of `subject` */
  act?: Record<string, unknown>;
}

export interface AuthDeps {
  db: Db;
  issuer: string;
  keyring: () => Keyring;
  provider: () => Provider;
  /** DPoP proof jtis, shared by every instance */
  replay: ReplayStore;
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

/** The same rule as every domain write function (kernel/actor.ts holds). */
export function hasScope(p: AdminPrincipal, required: string): boolean {
  return holds({ type: 'client', id: p.clientId, scopes: p.scopes }, required);
}

export interface Authenticator {
  authenticate(ctx: Context): Promise<AdminPrincipal & { scheme: 'Bearer' | 'DPoP' }>;
}

/** Whether the token claims to be DPoP-bound (to answer with the right challenge scheme). */
function claimsDpopBinding(token: string): boolean {
  try {
    const cnf = decodeJwt(token).cnf as { jkt?: unknown } | undefined;
    return typeof cnf?.jkt === 'string';
  } catch {
    return false;
  }
}

/** What the verifier says, in the admin API's words where tests and clients rely on them. */
function describe(err: VerifyError): string {
  if (/not meant for this API/.test(err.description)) return 'the access token is not for the admin API (aud must be urn:gatehouse:admin)';
  return err.description.replace(/^the token\b/, 'the access token');
}

export function createAuthenticator(deps: AuthDeps): Authenticator {
  const verifier = createVerifier({
    issuer: deps.issuer,
    audience: ADMIN_RESOURCE,
    algorithms: [...SIGNING_ALGS],
    dpopAlgorithms: DPOP_ALGS,
    // the keyring this instance signs with now (a rotation swaps it)
    jwks: () => deps.keyring().publicJwks,
    dpopReplayStore: deps.replay,
  });

  return {
    async authenticate(ctx) {
      const header = ctx.get('Authorization');
      if (header === '') throw noCredentials();
      const m = /^(Bearer|DPoP) +([^\s]+) *$/i.exec(header);
      if (!m) throw unauthorized('the Authorization header must be "Bearer <access token>" (or "DPoP <access token>")');
      const scheme: 'Bearer' | 'DPoP' = m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
      const token = m[2]!;

      let claims;
      try {
        claims = await verifier.verify(token, {
          scheme,
          // the URL as the caller addressed it: the issuer's origin (pinned, src/http/issuer.ts) and the path
          dpop: { proof: ctx.get('DPoP'), method: ctx.method, url: ctx.href },
        });
      } catch (err) {
        if (!(err instanceof VerifyError)) throw err;
        const bound = err.error === 'invalid_dpop_proof' || claimsDpopBinding(token);
        throw unauthorized(describe(err), bound ? 'DPoP' : scheme, err.error === 'invalid_dpop_proof' ? 'invalid_dpop_proof' : 'invalid_token');
      }
      if (typeof claims.jti !== 'string') throw unauthorized('the access token has no jti', scheme);

      const standing = await checkAccessToken(deps.provider(), token);
      if (isRefusal(standing)) throw unauthorized(`the access token ${standing.refused}`, scheme);

      let scopes = new Set((claims.scope ?? '').split(' ').filter(Boolean));
      const person = standing.accountId;
      if (person !== undefined) {
        // people reach the admin API only through their roles on it, as they are now
        const roles = await rolesForAccount(deps.db, person, ADMIN_RESOURCE);
        const held = new Set(roles.flatMap((r) => r.scopes));
        scopes = new Set([...scopes].filter((s) => held.has(s)));
      }

      return {
        scheme,
        clientId: claims.client_id,
        subject: person ?? claims.sub,
        isUser: person !== undefined,
        scopes,
        jti: claims.jti,
        exp: claims.exp,
        ...(claims.act ? { act: claims.act as Record<string, unknown> } : {}),
      };
    },
  };
}
