// Strict security headers on every response. HTML pages get a CSP that allows
// only our own scripts and styles; oidc-provider adds hashes for the inline
// scripts of the pages it renders itself (form_post, logout). Every other
// response (JSON, text) gets a CSP that allows nothing.
import type { Context } from 'koa';

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

export interface SecurityHeaders {
  /** Sets the headers (before the request is handled, and again on a fresh start after a deadline). */
  apply(ctx: Context): void;
  /** Once answered: a response that is not HTML gets the API CSP. */
  finish(ctx: Context): void;
}

export function securityHeaders(opts: { hsts: boolean }): SecurityHeaders {
  const headers: [string, string][] = [
    ['X-Content-Type-Options', 'nosniff'],
    ['Referrer-Policy', 'no-referrer'],
    ['X-Frame-Options', 'DENY'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Content-Security-Policy', HTML_CSP],
  ];
  if (opts.hsts) headers.push(['Strict-Transport-Security', 'max-age=31536000; includeSubDomains']);
  return {
    apply(ctx) {
      for (const [name, value] of headers) ctx.set(name, value);
    },
    finish(ctx) {
      if (/text\/html/.test(String(ctx.response.get('Content-Type')))) return;
      if (ctx.response.get('Content-Security-Policy') === HTML_CSP) ctx.set('Content-Security-Policy', API_CSP);
    },
  };
}
