// oidc-provider answers some token-endpoint cases with `invalid_request`
// where RFC 6749 §5.2 names a more precise error. Clients and the contract
// rely on the precise codes, so they are rewritten here (at /token and at the
// introspection, revocation, device authorization and pushed authorization
// request endpoints, which authenticate clients alike).
import type { Context } from 'koa';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface ErrorBody {
  error?: unknown;
  error_description?: unknown;
}

interface Rewrite {
  /** oidc-provider's error_description for the case */
  description: RegExp;
  error: string;
  status: number;
  /** further condition on the request, when the description alone is not enough */
  when?: (ctx: Context) => boolean;
}

/** A parameter as oidc-provider parsed it (undefined before it did). */
function param(ctx: Context, name: string): unknown {
  return (ctx as { oidc?: { params?: Record<string, unknown> } }).oidc?.params?.[name];
}

const REWRITES: Rewrite[] = [
  // "no client authentication included" is invalid_client (401 + WWW-Authenticate)
  { description: /^no client authentication mechanism provided$/, error: 'invalid_client', status: 401 },
  // A client_assertion that is not a JWT at all (RFC 7523 §3.2): the client
  // did authenticate, with the JWT bearer assertion type, and that failed —
  // like an assertion with a bad signature, and whichever client_id came with
  // it. Without client_assertion_type, or with another type, the request
  // itself is malformed and stays invalid_request.
  {
    description: /^invalid client_assertion format$/,
    error: 'invalid_client',
    status: 401,
    when: (ctx) => param(ctx, 'client_assertion_type') === JWT_BEARER,
  },
  // an authenticated client using a grant it was not given is unauthorized_client
  { description: /^requested grant type is not allowed for this client$/, error: 'unauthorized_client', status: 400 },
  // the same at the device authorization endpoint (RFC 8628 §3.2 uses RFC 6749 §5.2's codes)
  { description: /^urn:ietf:params:oauth:grant-type:device_code is not allowed for this client$/, error: 'unauthorized_client', status: 400 },
];

function rewriteFor(ctx: Context, error: unknown, description: unknown): Rewrite | undefined {
  if (error !== 'invalid_request' || typeof description !== 'string') return undefined;
  return REWRITES.find((r) => r.description.test(description) && (r.when?.(ctx) ?? true));
}

/**
 * The error code the client is answered with for an error oidc-provider
 * raised at these endpoints (after the rewrites above): for metrics, which
 * see oidc-provider's error before this middleware changes the answer.
 */
export function preciseErrorCode(ctx: Context, error: unknown, description: unknown): unknown {
  return rewriteFor(ctx, error, description)?.error ?? error;
}

const ENDPOINTS = new Set(['/token', '/token/introspection', '/token/revocation', '/device/auth', '/request']);

/** The rewrite of the provider's answers (mountProvider's `rewrites`). */
export function preciseTokenErrors(issuerPath: string): (ctx: Context) => void {
  const base = issuerPath.replace(/\/$/, '');
  return (ctx) => {
    if (ctx.method !== 'POST' || !ENDPOINTS.has(ctx.path.slice(base.length))) return;
    const body = ctx.body as ErrorBody | undefined;
    if (!body || typeof body !== 'object') return;
    const rule = ctx.status === 400 ? rewriteFor(ctx, body.error, body.error_description) : undefined;
    if (rule) {
      ctx.status = rule.status;
      ctx.body = { ...body, error: rule.error };
    }
    // A 401 names the scheme to use (RFC 6749 §5.2, RFC 7235 §3.1).
    // oidc-provider adds its own challenge only when the client sent an
    // Authorization header; every other invalid_client gets this one.
    if (ctx.status === 401 && (ctx.body as ErrorBody).error === 'invalid_client' && !ctx.response.get('WWW-Authenticate')) {
      ctx.set('WWW-Authenticate', `Basic realm="${ctx.origin}"`);
    }
  };
}
