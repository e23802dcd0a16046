// DPoP proofs at a protected resource (RFC 9449 §4.3, §7.1).
import { createHash } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors, jwtVerify, type JWK } from 'jose';
import { VerifyError } from './errors.ts';

/** What the request carried besides the token: the proof and where it was sent. */
export interface DpopRequest {
  /** the value of the request's `DPoP` header (one compact JWS) */
  proof: string;
  /** the request's HTTP method, e.g. `GET` */
  method: string;
  /** the URL the request was sent to as the client saw it (query and fragment are ignored) */
  url: string;
}

/**
 * Remembers used DPoP proofs (by key thumbprint and `jti`) until they could
 * no longer be accepted anyway. `add` must be atomic: of two concurrent calls
 * with one key, exactly one may answer true.
 */
export interface ReplayStore {
  /** Records `key` until `expiresAt` (epoch ms); false when it is already recorded and not expired. */
  add(key: string, expiresAt: number): boolean | Promise<boolean>;
}

export interface DpopCheckOptions {
  algorithms: readonly string[];
  /** seconds a proof's `iat` may lie in the past or the future (before clock tolerance) */
  windowSeconds: number;
  clockTolerance: number;
  replay: ReplayStore;
}

/**
 * Remembers the `jti` of accepted proofs until their `iat` window has passed,
 * so a captured proof cannot be sent again. Bounded: past `maxEntries` the
 * oldest entries go first. Per process — a proof replayed against another
 * instance of the service is not detected.
 */
export class ReplayCache implements ReplayStore {
  private readonly seen = new Map<string, number>();
  constructor(private readonly maxEntries: number) {}

  /** Records `key` until `expiresAt` (ms); false when it was already recorded and has not expired. */
  add(key: string, expiresAt: number, now = Date.now()): boolean {
    const known = this.seen.get(key);
    if (known !== undefined && known > now) return false;
    if (known !== undefined) this.seen.delete(key);
    // drop expired entries from the front (insertion order ≈ expiry order), then enforce the bound
    for (const [k, exp] of this.seen) {
      if (exp > now && this.seen.size < this.maxEntries) break;
      this.seen.delete(k);
    }
    this.seen.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

const fail = (description: string, cause?: unknown) => new VerifyError('invalid_dpop_proof', description, { cause });

/** `htu` comparison: scheme and host case-insensitive, default port dropped, no query or fragment (RFC 9449 §4.3). */
function normalizeHtu(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const u = new URL(value);
  u.search = '';
  u.hash = '';
  return u.href;
}

/** base64url(SHA-256(access token)): the `ath` claim (RFC 9449 §4.2). */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

/**
 * Checks a DPoP proof for a request carrying `token`, bound to the key whose
 * RFC 7638 thumbprint is `jkt`. Rejects with `invalid_dpop_proof`.
 */
export async function checkDpopProof(req: DpopRequest, token: string, jkt: string, opts: DpopCheckOptions): Promise<void> {
  const { proof } = req;
  if (typeof proof !== 'string' || proof.length === 0 || proof.length > 8192 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(proof)) {
    throw fail('the DPoP header must hold exactly one DPoP proof JWT');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch (cause) {
    throw fail('the DPoP proof is not a JWT', cause);
  }
  if (header.typ !== 'dpop+jwt') throw fail('the DPoP proof must have typ dpop+jwt');
  if (typeof header.alg !== 'string' || !opts.algorithms.includes(header.alg)) throw fail('the DPoP proof algorithm is not accepted');
  if (typeof header.jwk !== 'object' || header.jwk === null) throw fail('the DPoP proof must carry its public key in jwk');

  let payload: Record<string, unknown>;
  try {
    // EmbeddedJWK refuses private and symmetric keys in the header
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...opts.algorithms] }));
  } catch (cause) {
    throw fail(cause instanceof errors.JWSSignatureVerificationFailed ? 'the DPoP proof signature is invalid' : 'the DPoP proof is invalid', cause);
  }

  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw fail('the DPoP proof must have a jti');
  if (typeof htm !== 'string' || htm !== req.method) throw fail('the DPoP proof htm does not match the request method');
  const expected = normalizeHtu(req.url);
  if (typeof htu !== 'string' || expected === undefined || normalizeHtu(htu) !== expected) throw fail('the DPoP proof htu does not match the request URL');
  const now = Date.now() / 1000;
  const window = opts.windowSeconds + opts.clockTolerance;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw fail('the DPoP proof must have a numeric iat');
  if (iat < now - window || iat > now + window) throw fail('the DPoP proof iat is outside the accepted window');
  if (typeof ath !== 'string' || ath !== accessTokenHash(token)) throw fail('the DPoP proof ath does not match the access token');

  let thumbprint: string;
  try {
    thumbprint = await calculateJwkThumbprint(header.jwk as JWK, 'sha256');
  } catch (cause) {
    throw fail('the DPoP proof key is invalid', cause);
  }
  if (thumbprint !== jkt) throw fail('the DPoP proof key is not the key the access token is bound to');

  // last, so only fully valid proofs occupy the replay cache
  if (!(await opts.replay.add(`${thumbprint} ${jti}`, (iat + window) * 1000))) throw fail('the DPoP proof was already used');
}
