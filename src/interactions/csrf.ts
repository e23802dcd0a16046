// CSRF tokens for the interaction forms.
//
// The token is HMAC-SHA256(newest COOKIE_SECRETS key, "gatehouse/csrf/v1:" + uid)
// of the interaction it belongs to. It needs no storage, is valid only for
// that interaction, and is checked against every configured key, so rotating
// COOKIE_SECRETS (new key first) does not break forms already on screen.
// An attacker cannot compute it without the key, and the uid alone is no
// help: the interaction is also bound to the browser by oidc-provider's
// signed, SameSite=Lax interaction cookie.
import { createHmac, timingSafeEqual } from 'node:crypto';

const LABEL = 'gatehouse/csrf/v1:';

function mac(key: string, uid: string): Buffer {
  return createHmac('sha256', key).update(LABEL + uid).digest();
}

export function csrfToken(keys: readonly string[], uid: string): string {
  const key = keys[0];
  if (!key) throw new Error('no cookie secret configured');
  return mac(key, uid).toString('base64url');
}

export function verifyCsrfToken(keys: readonly string[], uid: string, token: unknown): boolean {
  if (typeof token !== 'string' || token.length !== 43 || !/^[A-Za-z0-9_-]+$/.test(token)) return false;
  const given = Buffer.from(token, 'base64url');
  if (given.length !== 32) return false;
  let ok = false;
  // Compare against every key (no early exit) so timing says nothing about which matched.
  for (const key of keys) ok = timingSafeEqual(mac(key, uid), given) || ok;
  return ok;
}
