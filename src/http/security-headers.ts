// Strict security headers on every response. HTML pages get a CSP that allows
// only our own scripts and styles; oidc-provider adds hashes for the inline
// scripts of the pages it renders itself (form_post, logout).
import type { Middleware } from 'koa';

export const HTML_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const API_CSP = "default-src 'none'; frame-ancestors 'none'";

export function securityHeaders(opts: { hsts: boolean }): Middleware {
  return async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Content-Security-Policy', HTML_CSP);
    if (opts.hsts) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
    if (!/text\/html/.test(String(ctx.response.get('Content-Type')))) {
      const csp = ctx.response.get('Content-Security-Policy');
      if (csp === HTML_CSP) ctx.set('Content-Security-Policy', API_CSP);
    }
  };
}
