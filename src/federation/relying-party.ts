// Gatehouse as an ordinary OpenID Connect relying party of an upstream
// provider, with openid-client: authorization code flow with PKCE (S256),
// state and nonce.
//
//   begin     discovery (a fresh read of the provider's metadata, so an
//             outage shows at once), then a new state, nonce and PKCE
//             verifier, stored server-side (store.ts saveRequest: the state's
//             digest, bound to the Gatehouse interaction), and the
//             authorization URL to send the browser to.
//   complete  the callback: the request taken once (store.ts consumeRequest,
//             by the caller), then openid-client's code exchange, which
//             checks state, the `iss` response parameter, and the ID token
//             (signature against the provider's JWKS, iss, aud, azp, exp,
//             iat, nonce). Email claims missing from the ID token are read
//             from the userinfo endpoint (subject checked).
//
// Every outgoing request goes through the outbound guard
// (src/http/outbound.ts, OUTBOUND_ALLOWLIST), installed as openid-client's
// customFetch. The upstream tokens are used here and dropped: nothing stores
// them, and the tokens Gatehouse issues never carry them.
import * as oidc from 'openid-client';
import type { UpstreamIdp } from '../generated/prisma/client.ts';
import type { Logger } from '../logging/logger.ts';
import { idpSecret, type PendingRequest } from './store.ts';

/** The fetch the outbound guard gives (src/http/outbound.ts guardedFetch). */
export type OutboundFetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** The provider could not be reached (refused, timed out, not allowed by OUTBOUND_ALLOWLIST, or answering with errors). */
export class UpstreamUnavailableError extends Error {
  override readonly name = 'UpstreamUnavailableError';
  constructor(readonly idpName: string, readonly reason: string) {
    super(`identity provider ${idpName} is unavailable: ${reason}`);
  }
}

/** The provider answered, but the response does not prove who signed in (bad code, bad ID token …). */
export class UpstreamRejectedError extends Error {
  override readonly name = 'UpstreamRejectedError';
  constructor(readonly idpName: string, readonly reason: string) {
    super(`the response of identity provider ${idpName} was not accepted: ${reason}`);
  }
}

/** Who the provider says signed in. */
export interface UpstreamIdentity {
  subject: string;
  email?: string;
  /** only a boolean `true` from the provider counts */
  emailVerified: boolean;
  name?: string;
}

/** The redirect URI to register at every provider. */
export function federationCallbackUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/federation/callback`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'GATEHOUSE_OUTBOUND_REFUSED',
]);

/** A network failure (anywhere in the cause chain), as opposed to an answer we refuse. */
function networkFailure(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const name = (e as { name?: unknown }).name;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code === 'GATEHOUSE_OUTBOUND_REFUSED' ? 'refused by OUTBOUND_ALLOWLIST' : code;
    if (name === 'TimeoutError' || name === 'AbortError') return 'timed out';
    if (e instanceof TypeError && e.message === 'fetch failed') return 'fetch failed';
  }
  return undefined;
}

/** An HTTP status of 500 or more from the provider. */
function serverFailure(err: unknown): string | undefined {
  const status = (err as { status?: unknown; response?: { status?: unknown } }).status ?? (err as { response?: { status?: unknown } }).response?.status;
  return typeof status === 'number' && status >= 500 ? `HTTP ${status}` : undefined;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').slice(0, 200);

export interface RelyingPartyOptions {
  kek: Buffer;
  /** Gatehouse's issuer: the callback is below it */
  issuer: string;
  fetch: OutboundFetch;
  logger: Logger;
  /** seconds an upstream request may take (default 10) */
  timeoutSeconds?: number;
}

interface Cached {
  config: oidc.Configuration;
  at: number;
}

const CACHE_MS = 10 * 60_000;

export class RelyingParty {
  private readonly cache = new Map<string, Cached>();
  readonly callbackUrl: string;

  constructor(private readonly opts: RelyingPartyOptions) {
    this.callbackUrl = federationCallbackUrl(opts.issuer);
  }

  /** The provider's configuration: discovered afresh for `begin`, reused (10 minutes) for the callback. */
  private async configuration(idp: UpstreamIdp, fresh: boolean): Promise<oidc.Configuration> {
    const key = `${idp.id}:${idp.version}`;
    const hit = this.cache.get(key);
    if (hit && !fresh && Date.now() - hit.at < CACHE_MS) return hit.config;
    const issuer = new URL(idp.issuer);
    let config: oidc.Configuration;
    try {
      config = await oidc.discovery(issuer, idp.clientId, idpSecret(idp, this.opts.kek), undefined, {
        [oidc.customFetch]: this.opts.fetch as oidc.CustomFetch,
        timeout: this.opts.timeoutSeconds ?? 10,
        // http is only accepted for loopback issuers (store.ts): tests and local development
        ...(issuer.protocol === 'http:' && { execute: [oidc.allowInsecureRequests] }),
      });
    } catch (err) {
      const reason = networkFailure(err) ?? serverFailure(err) ?? `discovery failed: ${oneLine((err as Error).message)}`;
      this.opts.logger.warn({ idp: idp.name, reason }, 'identity provider unavailable');
      throw new UpstreamUnavailableError(idp.name, reason);
    }
    oidc.enableNonRepudiationChecks(config);
    for (const [k, v] of this.cache) if (k.startsWith(`${idp.id}:`) || Date.now() - v.at > CACHE_MS) this.cache.delete(k);
    this.cache.set(key, { config, at: Date.now() });
    return config;
  }

  /**
   * Discovers the provider and makes a new upstream request: returns the
   * state, nonce and verifier to store (the caller stores them before the
   * browser leaves) and the authorization URL.
   */
  async begin(idp: UpstreamIdp, opts: { loginHint?: string } = {}): Promise<{ url: URL; state: string; request: Omit<PendingRequest, 'idpId' | 'interactionUid'> }> {
    const config = await this.configuration(idp, true);
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.callbackUrl,
      response_type: 'code',
      scope: idp.scopes.join(' '),
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      ...(opts.loginHint && { login_hint: opts.loginHint }),
    });
    return { url, state, request: { nonce, codeVerifier } };
  }

  /** Exchanges the code of the callback (`query`: the callback's query string) and returns who signed in. */
  async complete(idp: UpstreamIdp, query: string, state: string, request: PendingRequest): Promise<UpstreamIdentity> {
    const config = await this.configuration(idp, false);
    const current = new URL(`${this.callbackUrl}?${query}`);
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: request.codeVerifier,
        expectedState: state,
        expectedNonce: request.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims) throw new UpstreamRejectedError(idp.name, 'no ID token');
      const identity: UpstreamIdentity = { subject: claims.sub, emailVerified: claims.email_verified === true };
      if (typeof claims.email === 'string') identity.email = claims.email;
      if (typeof claims.name === 'string') identity.name = claims.name;
      if (identity.email === undefined && config.serverMetadata().userinfo_endpoint) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        if (typeof info.email === 'string') {
          identity.email = info.email;
          identity.emailVerified = info.email_verified === true;
        }
        if (identity.name === undefined && typeof info.name === 'string') identity.name = info.name;
      }
      return identity;
    } catch (err) {
      if (err instanceof UpstreamRejectedError) throw err;
      const down = networkFailure(err) ?? serverFailure(err);
      if (down) {
        this.opts.logger.warn({ idp: idp.name, reason: down }, 'identity provider unavailable');
        throw new UpstreamUnavailableError(idp.name, down);
      }
      const code = (err as { code?: unknown }).code;
      const error = (err as { error?: unknown }).error;
      const reason = `${typeof code === 'string' ? `${code}: ` : ''}${typeof error === 'string' ? `${error}: ` : ''}${oneLine((err as Error).message ?? String(err))}`;
      this.opts.logger.warn({ idp: idp.name, reason }, 'identity provider response refused');
      throw new UpstreamRejectedError(idp.name, reason);
    }
  }
}
