// The account page's two cookies, each an HMAC-signed JSON value (the newest
// COOKIE_SECRETS key signs, every key verifies, so a rotation keeps them):
//
//   gatehouse_account        who is signed in to the account page: account id,
//                            the oidc-provider session (uid) it came from, expiry
//   gatehouse_account_login  the sign-in under way: state and PKCE verifier
//
// Both are HttpOnly, SameSite=Lax, Secure on https, and scoped to /account.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

export const SESSION_COOKIE = 'gatehouse_account';
export const LOGIN_COOKIE = 'gatehouse_account_login';

const LABEL = 'gatehouse/account-cookie/v1:';

function mac(key: string, name: string, body: string): Buffer {
  return createHmac('sha256', key).update(`${LABEL}${name}:${body}`).digest();
}

export function seal(keys: readonly string[], name: string, value: unknown): string {
  const body = Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  return `${body}.${mac(keys[0]!, name, body).toString('base64url')}`;
}

export function unseal(keys: readonly string[], name: string, cookie: string | undefined): unknown {
  if (typeof cookie !== 'string' || cookie.length > 2048) return undefined;
  const dot = cookie.indexOf('.');
  if (dot <= 0) return undefined;
  const body = cookie.slice(0, dot);
  const given = Buffer.from(cookie.slice(dot + 1), 'base64url');
  if (given.length !== 32) return undefined;
  let ok = false;
  for (const key of keys) ok = timingSafeEqual(mac(key, name, body), given) || ok;
  if (!ok) return undefined;
  try {
    return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export interface CookieOptions {
  path: string;
  secure: boolean;
}

export function setCookie(ctx: Context, name: string, value: string, maxAgeSeconds: number, o: CookieOptions): void {
  ctx.append(
    'Set-Cookie',
    `${name}=${value}; Path=${o.path}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${o.secure ? '; Secure' : ''}`,
  );
}

export function clearCookie(ctx: Context, name: string, o: CookieOptions): void {
  ctx.append('Set-Cookie', `${name}=; Path=${o.path}; Max-Age=0; HttpOnly; SameSite=Lax${o.secure ? '; Secure' : ''}`);
}

export function readCookie(ctx: Context, name: string): string | undefined {
  const header = ctx.get('Cookie');
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
