// oidc-provider answers two token-endpoint cases with `invalid_request`
// where RFC 6749 §5.2 names a more precise error. Clients and the contract
// rely on the precise codes, so they are rewritten here.
import type { Middleware } from 'koa';

const REWRITES: { description: RegExp; error: string; status: number; challenge?: boolean }[] = [
  // "no client authentication included" is invalid_client (401 + WWW-Authenticate)
  { description: /^no client authentication mechanism provided$/, error: 'invalid_client', status: 401, challenge: true },
  // an authenticated client using a grant it was not given is unauthorized_client
  { description: /^requested grant type is not allowed for this client$/, error: 'unauthorized_client', status: 400 },
];

const ENDPOINTS = new Set(['/token', '/token/introspection', '/token/revocation']);

export function preciseTokenErrors(issuerPath: string): Middleware {
  const base = issuerPath.replace(/\/$/, '');
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST' || ctx.status !== 400 || !ENDPOINTS.has(ctx.path.slice(base.length))) return;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (!body || body.error !== 'invalid_request' || typeof body.error_description !== 'string') return;
    const rule = REWRITES.find((r) => r.description.test(body.error_description as string));
    if (!rule) return;
    ctx.status = rule.status;
    ctx.body = { ...body, error: rule.error };
    if (rule.challenge) ctx.set('WWW-Authenticate', `Basic realm="${ctx.origin}"`);
  };
}
