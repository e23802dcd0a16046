// oidc-provider answers some token-endpoint cases with `invalid_request` (or
// `invalid_grant`) where RFC 6749 §5.2 / RFC 9449 name a more precise error. Clients and the contract
// rely on the precise codes, so they are rewritten here.
import type { Context, Middleware } from 'koa';

interface Rewrite {
  description: RegExp;
  error: string;
  status: number;
  challenge?: boolean;
  /** the error oidc-provider answered with (default invalid_request) */
  from?: string;
  /** further condition on the request */
  when?: (ctx: Context) => boolean;
}

/** a request parameter as oidc-provider parsed it (after the request ran) */
function param(ctx: Context, name: string): unknown {
  try {
    return (ctx as Context & { oidc?: { params?: Record<string, unknown> } }).oidc?.params?.[name];
  } catch {
    return undefined;
  }
}

const REWRITES: Rewrite[] = [
  // "no client authentication included" is invalid_client (401 + WWW-Authenticate)
  { description: /^no client authentication mechanism provided$/, error: 'invalid_client', status: 401, challenge: true },
  // an authenticated client using a grant it was not given is unauthorized_client
  { description: /^requested grant type is not allowed for this client$/, error: 'unauthorized_client', status: 400 },
  // DPoP (RFC 9449 §5): a missing (when required) or replayed proof is invalid_dpop_proof
  { from: 'invalid_grant', description: /^DPoP proof JWT not provided$/, error: 'invalid_dpop_proof', status: 400 },
  { from: 'invalid_grant', description: /^DPoP proof JWT Replay detected$/, error: 'invalid_dpop_proof', status: 400 },
  // the storage adapter's one-time insert lost a race (the same proof or
  // client assertion used twice at once): name what was replayed
  {
    description: /^replay detected$/,
    error: 'invalid_dpop_proof',
    status: 400,
    when: (ctx) => !!ctx.get('DPoP') && param(ctx, 'client_assertion') === undefined,
  },
  {
    description: /^replay detected$/,
    error: 'invalid_client',
    status: 401,
    when: (ctx) => !ctx.get('DPoP') && param(ctx, 'client_assertion') !== undefined,
  },
];

const ENDPOINTS = new Set(['/token', '/token/introspection', '/token/revocation']);

export function preciseTokenErrors(issuerPath: string): Middleware {
  const base = issuerPath.replace(/\/$/, '');
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST' || ctx.status !== 400 || !ENDPOINTS.has(ctx.path.slice(base.length))) return;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (!body || typeof body.error !== 'string' || typeof body.error_description !== 'string') return;
    const rule = REWRITES.find(
      (r) => body.error === (r.from ?? 'invalid_request') && r.description.test(body.error_description as string) && (!r.when || r.when(ctx)),
    );
    if (!rule) return;
    ctx.status = rule.status;
    ctx.body = { ...body, error: rule.error };
    if (rule.challenge) ctx.set('WWW-Authenticate', `Basic realm="${ctx.origin}"`);
  };
}
