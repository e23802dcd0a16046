// Mounts oidc-provider (itself a Koa app) inside Gatehouse's Koa app at the
// issuer's path, through a holder so that the provider can be swapped when
// the signing keys change (oidc-provider reads its keystore once).
import compose from 'koa-compose';
import type { Context, Middleware } from 'koa';
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

/** Adjusts the provider's answer once it is rendered (see token-errors.ts, http/errors.ts). */
export type AnswerRewrite = (ctx: Context) => void;

/**
 * The provider's routes below the issuer's path; `rewrites` run in order on
 * each answer it renders.
 */
export function mountProvider(holder: ReturnType<typeof providerHolder>, issuer: string, rewrites: readonly AnswerRewrite[] = []): Middleware {
  const base = new URL(issuer).pathname.replace(/\/$/, '');
  return async (ctx, next) => {
    const original = ctx.path;
    let inner = original;
    if (base) {
      if (original !== base && !original.startsWith(`${base}/`)) return next();
      inner = original.slice(base.length) || '/';
    }
    const run = holder.middleware();
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
    for (const rewrite of rewrites) rewrite(ctx);
  };
}
