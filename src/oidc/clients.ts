// How oidc-provider sees the client registry: metadata built from the stored
// client (cached in memory, kept fresh by LISTEN/NOTIFY), secrets compared
// against sha-256 digests in constant time, disabled clients invisible.
import type { ClientMetadata } from 'oidc-provider';
import type { ClientRegistry } from '../clients/registry.ts';
import { verifyClientSecret } from '../clients/secrets.ts';
import type { ClientRecord } from '../clients/store.ts';
import { fapi2Metadata } from './fapi.ts';
import type { Patch } from './seam.ts';

/**
 * oidc-provider client metadata for a stored client. `client_secret` holds the
 * digest: oidc-provider needs a value for secret-based methods, and the
 * comparison itself is replaced by clientPatches() below.
 */
export function toClientMetadata(rec: Readonly<ClientRecord>): ClientMetadata {
  const signIn = rec.grants.includes('authorization_code');
  // No `scope` metadata: oidc-provider would check it against its static scope
  // list. API scopes are enforced per resource (client ∩ resource, see
  // resource-indicators.ts); OIDC scopes are open to every sign-in client.
  const md: ClientMetadata = {
    client_id: rec.id,
    client_name: rec.name,
    token_endpoint_auth_method: rec.authMethod,
    grant_types: [...rec.grants],
    response_types: signIn ? ['code'] : [],
    redirect_uris: [...rec.redirectUris],
    post_logout_redirect_uris: [...rec.postLogoutRedirectUris],
    application_type: isNativeApp(rec.redirectUris) ? 'native' : 'web',
  };
  if (rec.secretDigest && (rec.authMethod === 'client_secret_basic' || rec.authMethod === 'client_secret_post')) {
    md.client_secret = rec.secretDigest;
  }
  // the client's keys: client assertions (private_key_jwt) and request objects (JAR)
  if (rec.jwks) md.jwks = rec.jwks as ClientMetadata['jwks'];
  else if (rec.jwksUri) md.jwks_uri = rec.jwksUri;
  if (rec.requireDpop) md.dpop_bound_access_tokens = true;
  if (rec.requirePar) md.require_pushed_authorization_requests = true;
  if (rec.profile === 'fapi2') Object.assign(md, fapi2Metadata());
  if (rec.backchannelLogoutUri) {
    md.backchannel_logout_uri = rec.backchannelLogoutUri;
    md.backchannel_logout_session_required = true;
  }
  return md;
}

/**
 * RFC 8252 native apps redirect to a private-use URI scheme
 * (com.example.app:/callback); oidc-provider accepts those only for
 * application_type native, which also lets loopback redirects use any port.
 */
function isNativeApp(redirectUris: readonly string[]): boolean {
  return redirectUris.some((u) => !/^https?:/i.test(u));
}

/**
 * The `Client` finder for the storage adapter: disabled or unknown → undefined
 * (invalid_client). oidc-provider asks it once per registry record
 * (clientPatches below keeps the client it builds).
 */
export function clientFinder(registry: ClientRegistry): (id: string) => Promise<Record<string, unknown> | undefined> {
  return async (id) => {
    const rec = await registry.get(id);
    return rec && !rec.disabled ? (toClientMetadata(rec) as Record<string, unknown>) : undefined;
  };
}

type ClientFind = (id: unknown) => Promise<unknown>;

/**
 * How oidc-provider's Client model reads the registry (installed by seam.ts):
 *
 * - `Client#compareClientSecret`: the presented secret is hashed and compared
 *   with the current digest and, during the grace period after a rotation,
 *   the previous one (oidc-provider compares plain text).
 * - `Client.find`: oidc-provider reads the metadata through the adapter and,
 *   on every call, hashes it (JSON + sha-256) to find the client instance it
 *   built before: a cost on every token request. The registry's records are
 *   immutable (a change replaces the record and drops it from the cache), so
 *   the instance is kept per record instead, and the library's own lookup
 *   runs once per record.
 */
export function clientPatches(registry: ClientRegistry): Patch[] {
  return [
    {
      method: 'Client#compareClientSecret',
      why: 'secrets are stored as digests (with a rotation grace period)',
      wrap: () =>
        async function compareClientSecret(this: { clientId: string }, actual: string) {
          const rec = await registry.get(this.clientId);
          return !!rec && !rec.disabled && verifyClientSecret(rec, actual) !== false;
        },
    },
    {
      method: 'Client.find',
      why: 'one client instance per immutable registry record (no metadata hashing per request)',
      wrap: (original) => {
        const find = original as ClientFind;
        const built = new WeakMap<object, Promise<unknown>>();
        return async (id: unknown) => {
          if (typeof id !== 'string') return find(id);
          const rec = await registry.get(id);
          if (!rec || rec.disabled) return undefined;
          let client = built.get(rec);
          if (!client) {
            client = find(id);
            built.set(rec, client);
            client.catch(() => built.delete(rec));
          }
          return client;
        };
      },
    },
  ];
}
