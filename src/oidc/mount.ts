// Mounts oidc-provider (itself a Koa app) inside Gatehouse's Koa app at the
// issuer's path, through a holder so that the provider can be swapped when
// the signing keys change (oidc-provider reads its keystore once).
import compose from 'koa-compose';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';

export interface ProviderHolder {
  readonly current: Provider;
  swap(next: Provider): void;
}

export function providerHolder(initial: Provider): ProviderHolder & { middleware: () => Middleware } {
  let provider = initial;
  let downstream = compose(initial.middleware as Middleware[]);
  return {
    get current() {
      return provider;
    },
    swap(next) {
      provider = next;
      downstream = compose(next.middleware as Middleware[]);
    },
    middleware: () => downstream as Middleware,
  };
}

/**
 * oidc-provider derives endpoint URLs from the request (Host header,
 * protocol). Gatehouse pins them to the configured issuer instead, like
 * Keycloak's fixed hostname: a forged Host header cannot change discovery,
 * and a TLS-terminating proxy needs no extra headers for https URLs.
 */
function pinToIssuer(ctx: Parameters<Middleware>[0], issuer: URL): void {
  ctx.request.header.host = issuer.host;
  const secure = issuer.protocol === 'https:';
  Object.defineProperty(ctx.request, 'protocol', { value: secure ? 'https' : 'http', configurable: true });
  Object.defineProperty(ctx.request, 'secure', { value: secure, configurable: true });
}

export function mountProvider(holder: ReturnType<typeof providerHolder>, issuer: string): Middleware {
  const issuerUrl = new URL(issuer);
  const base = issuerUrl.pathname.replace(/\/$/, '');
  return async (ctx, next) => {
    const original = ctx.path;
    let inner = original;
    if (base) {
      if (original !== base && !original.startsWith(`${base}/`)) return next();
      inner = original.slice(base.length) || '/';
    }
    const run = holder.middleware();
    pinToIssuer(ctx, issuerUrl);
    ctx.path = inner;
    try {
      await run(ctx, async () => {
        ctx.path = original;
        await next();
        ctx.path = inner;
      });
    } finally {
      ctx.path = original;
    }
  };
}
