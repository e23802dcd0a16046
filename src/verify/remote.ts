// Fetching the issuer's metadata and signing keys: discovery (cached once it
// succeeds) and a JWKS cache that refreshes on an unknown `kid` at most once
// per cooldown and keeps serving its keys while the JWKS endpoint is down.
import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';

/** A `fetch` implementation (the global one by default). */
export type FetchFunction = typeof fetch;

/** The fields of the issuer's metadata (OpenID Connect Discovery) the library uses. */
export interface IssuerMetadata {
  issuer: string;
  jwks_uri?: string;
  token_endpoint?: string;
  [key: string]: unknown;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;

/** GET a JSON document: 200 only, no redirects followed, bounded size and time. */
export async function getJson(url: string, fetchImpl: FetchFunction, timeoutMs: number): Promise<unknown> {
  const res = await fetchImpl(url, {
    method: 'GET',
    redirect: 'manual',
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`GET ${url} answered ${res.status}`);
  }
  const text = await res.text();
  if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`GET ${url}: document too large`);
  return JSON.parse(text) as unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `${issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/**
 * The issuer's metadata, fetched once and cached after the first success.
 * Concurrent callers share one request; a failure is not cached. A document
 * whose `issuer` is not exactly the configured issuer is refused (OpenID
 * Connect Discovery §4.3: it could be an attacker's metadata).
 */
export function createMetadataCache(issuer: string, fetchImpl: FetchFunction, timeoutMs: number): () => Promise<IssuerMetadata> {
  let metadata: IssuerMetadata | undefined;
  let pending: Promise<IssuerMetadata> | undefined;
  const load = async (): Promise<IssuerMetadata> => {
    const url = discoveryUrl(issuer);
    const doc = await getJson(url, fetchImpl, timeoutMs);
    if (!isRecord(doc)) throw new Error(`${url} is not a JSON object`);
    if (doc.issuer !== issuer) {
      throw new Error(`${url} names the issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)}`);
    }
    for (const field of ['jwks_uri', 'token_endpoint'] as const) {
      if (doc[field] !== undefined && (typeof doc[field] !== 'string' || !URL.canParse(doc[field]))) {
        throw new Error(`${url}: ${field} is not a URL`);
      }
    }
    return doc as IssuerMetadata;
  };
  return async () => {
    if (metadata) return metadata;
    pending ??= load()
      .then((m) => (metadata = m))
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

/** Private or symmetric key material never belongs in a published key set; such members are dropped. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

function publicKeysOnly(doc: unknown): JSONWebKeySet {
  if (!isRecord(doc) || !Array.isArray(doc.keys)) throw new Error('the JWKS is not a JSON Web Key Set');
  const keys = (doc.keys as unknown[]).filter(
    (k): k is JWK => isRecord(k) && typeof k.kty === 'string' && k.kty !== 'oct' && PRIVATE_MEMBERS.every((m) => !(m in k)),
  );
  return { keys };
}

export interface KeyCacheOptions {
  /** where the JWKS is (resolved lazily: discovery) */
  jwksUri: () => Promise<string>;
  fetch: FetchFunction;
  timeoutMs: number;
  /** at most one refetch per this many ms (unknown `kid`, stale keys) */
  cooldownMs: number;
  /** keys older than this are refreshed in the background (kept if that fails) */
  maxAgeMs: number;
}

/** The key resolver `jwtVerify` takes, plus a view of the cache for tests and diagnostics. */
export interface KeyCache {
  (header: JWSHeaderParameters, token: FlattenedJWSInput): ReturnType<ReturnType<typeof createLocalJWKSet>>;
  /** whether any keys are cached */
  readonly loaded: boolean;
}

/** Thrown when no key set could be fetched and none is cached. */
export class KeysUnavailable extends Error {
  override readonly name = 'KeysUnavailable';
}

export function createKeyCache(opts: KeyCacheOptions): KeyCache {
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  let fetchedAt = -Infinity;
  let attemptedAt = -Infinity;
  let pending: Promise<void> | undefined;

  const refresh = (): Promise<void> => {
    pending ??= (async () => {
      attemptedAt = Date.now();
      const uri = await opts.jwksUri();
      const set = publicKeysOnly(await getJson(uri, opts.fetch, opts.timeoutMs));
      local = createLocalJWKSet(set);
      fetchedAt = Date.now();
    })().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const coolingDown = () => Date.now() < attemptedAt + opts.cooldownMs;

  const resolve = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (!local) {
      try {
        await refresh();
      } catch (cause) {
        throw new KeysUnavailable('the signing keys could not be fetched', { cause });
      }
    } else if (Date.now() >= fetchedAt + opts.maxAgeMs && !coolingDown()) {
      // stale: refresh in the background and keep using what is cached (stale-if-error)
      refresh().catch(() => undefined);
    }
    const current = local!;
    try {
      return await current(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // an unknown kid: the issuer may have rotated its keys — refetch, rate limited
      if (pending) await pending.catch(() => undefined);
      else if (!coolingDown()) await refresh().catch(() => undefined);
      if (local === current) throw err;
      return local!(header, token);
    }
  };
  return Object.defineProperty(resolve, 'loaded', { get: () => local !== undefined, enumerable: true }) as KeyCache;
}
