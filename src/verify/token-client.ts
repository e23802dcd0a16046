// createTokenClient: a service's own tokens — client_credentials (cached until
// shortly before expiry, concurrent requests shared) and RFC 8693 token
// exchange for calls to downstream APIs on a caller's behalf.
import { createHash } from 'node:crypto';
import { createMetadataCache, type FetchFunction } from './remote.ts';

/** RFC 8693 identifiers. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** Options of {@link createTokenClient}. */
export interface TokenClientOptions {
  /** The issuer URL (its metadata gives the token endpoint unless `tokenEndpoint` is set). */
  issuer: string;
  /** This service's client id and secret at the issuer. */
  clientId: string;
  clientSecret: string;
  /** The token endpoint; default: `token_endpoint` from the issuer's metadata. */
  tokenEndpoint?: string;
  /** How the client authenticates: `client_secret_basic` (default) or `client_secret_post`. */
  authMethod?: 'client_secret_basic' | 'client_secret_post';
  /** A `fetch` implementation (default: the global `fetch`). */
  fetch?: FetchFunction;
  /** A cached token is replaced this many seconds before it expires (default 30; at most half its lifetime). */
  refreshBefore?: number;
  /** Timeout of each request in milliseconds (default 10 000). */
  timeout?: number;
  /** How many tokens are cached at most (default 1000; oldest dropped first). */
  maxCachedTokens?: number;
}

/** A token issued to the service. */
export interface IssuedToken {
  /** the access token, for `Authorization: <tokenType> <accessToken>` */
  accessToken: string;
  /** `Bearer` (or `DPoP`) */
  tokenType: string;
  /** when it expires, in milliseconds since the epoch */
  expiresAt: number;
  /** the granted scopes, space-separated, when the issuer said */
  scope?: string;
  /** token exchange: the type of the issued token */
  issuedTokenType?: string;
}

/** Parameters of a client_credentials request. */
export interface ClientCredentialsParams {
  /** the API (RFC 8707 resource indicator) the token is for */
  resource?: string;
  /** the scopes wanted, space-separated or as an array (default: all the client may have on the API) */
  scope?: string | readonly string[];
}

/** Parameters of a token exchange. */
export interface ExchangeParams {
  /** the downstream API the new token is for (sent as `audience`; Gatehouse takes it as the resource) */
  audience?: string;
  /** alternatively the downstream API as an RFC 8707 `resource` */
  resource?: string;
  /** the scopes wanted on the downstream API (fewer is better) */
  scope?: string | readonly string[];
}

/** Why the token endpoint refused, or could not be reached (`status` 0). */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
  constructor(
    /** HTTP status of the token endpoint; 0 when it could not be reached */
    readonly status: number,
    /** OAuth `error` code, or `request_failed` when there is none */
    readonly error: string,
    readonly description: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`token request failed: ${error}${description ? ` (${description})` : ''}`, options);
  }
}

/** The service's client at the issuer. */
export interface TokenClient {
  /**
   * A client_credentials token for `resource` with `scope`: served from the
   * cache until shortly before it expires; concurrent calls share one request.
   */
  clientCredentials(params?: ClientCredentialsParams): Promise<IssuedToken>;
  /**
   * Exchanges the caller's access token (RFC 8693) for a token for a downstream
   * API, authenticating with the service's own credentials. The result names
   * the caller as `sub` and this service in `act`. Cached per (subject token,
   * audience, scope) like client_credentials tokens.
   *
   * @example
   * const { accessToken } = await tokens.exchangeForDownstream(ctx.state.token, { audience: 'https://payments.example.com', scope: 'payments:read' });
   */
  exchangeForDownstream(subjectToken: string, params: ExchangeParams): Promise<IssuedToken>;
  /** Drops every cached token. */
  clear(): void;
}

function scopeParam(scope: string | readonly string[] | undefined): string | undefined {
  if (scope === undefined) return undefined;
  const list = typeof scope === 'string' ? scope.split(' ') : [...scope];
  const normalized = [...new Set(list.filter(Boolean))].sort();
  return normalized.length > 0 ? normalized.join(' ') : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Creates the service's token client.
 *
 * @example
 * const tokens = createTokenClient({ issuer, clientId: 'orders-service', clientSecret: process.env.ORDERS_SECRET! });
 * const { accessToken } = await tokens.clientCredentials({ resource: 'https://inventory.example.com', scope: 'inventory:read' });
 */
export function createTokenClient(options: TokenClientOptions): TokenClient {
  const { issuer, clientId, clientSecret } = options;
  if (typeof issuer !== 'string' || !URL.canParse(issuer)) throw new TypeError('createTokenClient: issuer must be a URL');
  if (typeof clientId !== 'string' || !clientId) throw new TypeError('createTokenClient: clientId is required');
  if (typeof clientSecret !== 'string' || !clientSecret) throw new TypeError('createTokenClient: clientSecret is required');
  if (options.tokenEndpoint !== undefined && !URL.canParse(options.tokenEndpoint)) throw new TypeError('createTokenClient: tokenEndpoint must be a URL');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeout ?? 10_000;
  const refreshBefore = options.refreshBefore ?? 30;
  const maxCached = options.maxCachedTokens ?? 1000;
  const authMethod = options.authMethod ?? 'client_secret_basic';
  const metadata = createMetadataCache(issuer, fetchImpl, timeoutMs);

  const cache = new Map<string, { token: IssuedToken; refreshAt: number }>();
  const inflight = new Map<string, Promise<IssuedToken>>();

  const tokenEndpoint = async (): Promise<string> => {
    if (options.tokenEndpoint !== undefined) return options.tokenEndpoint;
    try {
      const { token_endpoint } = await metadata();
      if (!token_endpoint) throw new Error(`the metadata of ${issuer} has no token_endpoint`);
      return token_endpoint;
    } catch (cause) {
      throw new TokenRequestError(0, 'request_failed', 'the token endpoint could not be discovered', { cause });
    }
  };

  const request = async (form: Record<string, string>): Promise<IssuedToken> => {
    const url = await tokenEndpoint();
    const body = new URLSearchParams(form);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: form-encode each part, then Basic
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
    } else {
      body.set('client_id', clientId);
      body.set('client_secret', clientSecret);
    }
    const started = Date.now();
    let res: Response;
    let json: unknown;
    try {
      res = await fetchImpl(url, { method: 'POST', headers, body: body.toString(), redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      json = await res.json().catch(() => undefined);
    } catch (cause) {
      throw new TokenRequestError(0, 'request_failed', 'the token endpoint could not be reached', { cause });
    }
    const doc = isRecord(json) ? json : {};
    if (res.status !== 200) {
      throw new TokenRequestError(
        res.status,
        typeof doc.error === 'string' ? doc.error : 'request_failed',
        typeof doc.error_description === 'string' ? doc.error_description : undefined,
      );
    }
    const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    if (typeof doc.access_token !== 'string' || typeof doc.token_type !== 'string') {
      throw new TokenRequestError(res.status, 'invalid_response', 'the token response has no access_token or token_type');
    }
    return {
      accessToken: doc.access_token,
      tokenType: doc.token_type,
      expiresAt: started + expiresIn * 1000,
      ...(typeof doc.scope === 'string' ? { scope: doc.scope } : {}),
      ...(typeof doc.issued_token_type === 'string' ? { issuedTokenType: doc.issued_token_type } : {}),
    };
  };

  /** Cached, de-duplicated fetch of the token for `key`. */
  const cached = (key: string, form: Record<string, string>): Promise<IssuedToken> => {
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.refreshAt > now) return Promise.resolve(hit.token);
    if (hit) cache.delete(key);
    let pending = inflight.get(key);
    if (!pending) {
      pending = request(form)
        .then((token) => {
          const lifetime = token.expiresAt - Date.now();
          const margin = Math.min(refreshBefore * 1000, lifetime / 2);
          for (const [k, v] of cache) {
            if (cache.size < maxCached && v.refreshAt > Date.now()) break;
            cache.delete(k);
          }
          cache.set(key, { token, refreshAt: token.expiresAt - margin });
          return token;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  };

  return {
    clientCredentials(params: ClientCredentialsParams = {}) {
      const scope = scopeParam(params.scope);
      const form: Record<string, string> = { grant_type: 'client_credentials' };
      if (params.resource !== undefined) form.resource = params.resource;
      if (scope !== undefined) form.scope = scope;
      return cached(`cc\n${params.resource ?? ''}\n${scope ?? ''}`, form);
    },
    exchangeForDownstream(subjectToken: string, params: ExchangeParams) {
      if (typeof subjectToken !== 'string' || !subjectToken) {
        return Promise.reject(new TypeError('exchangeForDownstream: the subject token is required'));
      }
      if (params.audience === undefined && params.resource === undefined) {
        return Promise.reject(new TypeError('exchangeForDownstream: audience (or resource) is required'));
      }
      const scope = scopeParam(params.scope);
      const form: Record<string, string> = {
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
      };
      if (params.audience !== undefined) form.audience = params.audience;
      if (params.resource !== undefined) form.resource = params.resource;
      if (scope !== undefined) form.scope = scope;
      const subject = createHash('sha256').update(subjectToken).digest('base64url');
      return cached(`tx\n${subject}\n${params.audience ?? ''}\n${params.resource ?? ''}\n${scope ?? ''}`, form);
    },
    clear() {
      cache.clear();
    },
  };
}
