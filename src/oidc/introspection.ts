// Introspection (RFC 7662) and revocation (RFC 7009) for every token
// Gatehouse issues, JWT access tokens (RFC 9068) included.
//
// oidc-provider stores opaque tokens and finds them through the adapter, but
// it does not store JWT access tokens (`save()` signs and returns the value)
// and its introspection and revocation endpoints refuse any JWT outright. So:
//
// - The refusal (`rejectStructuredTokens`) is taken out of those two routes'
//   middleware stacks before any provider is built (see acceptStructuredTokens).
// - `AccessToken.find` / `ClientCredentials.find` are patched per provider:
//   a JWT-looking value is verified (signature against the provider's own
//   published keys, verify-only ones included; `iss`, `exp`, `typ: at+jwt`,
//   algorithm allow-list), checked against the client registry (the client
//   must exist and be enabled), `revoked_tokens` and, for a token issued within
//   a grant, its `JwtAccessToken` row; then it is materialised as a model
//   instance. oidc-provider's own introspection and revocation actions, client
//   authentication and the allowedPolicy hooks then work unchanged.
// - A JWT access token issued within a grant (user flows) gets a marked jti
//   (`g.` prefix; random jtis never contain a dot) and a small `JwtAccessToken`
//   row in oidc_payloads carrying its grant id, so `revokeByGrantId` deletes it
//   and the token turns inactive. client_credentials tokens are a different
//   model (ClientCredentials), get no row and stay write-free.
// - Revoking a JWT access token inserts its jti into `revoked_tokens` until
//   it would expire anyway; every instance checks that table.
//
// Opaque tokens (refresh tokens, opaque access tokens) go through the
// adapter as before; a JWT-looking value never reaches it.
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type Provider from 'oidc-provider';
import type pg from 'pg';
import type { AccessToken, ClientCredentials, KoaContextWithOIDC, RefreshToken } from 'oidc-provider';
// oidc-provider has no public API for these two; see acceptStructuredTokens().
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import * as oidcActions from 'oidc-provider/lib/actions/index.js';
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import rejectStructuredTokens from 'oidc-provider/lib/shared/reject_structured_tokens.js';
// The provider's published keys (what /jwks serves); see publishedKeys().
// @ts-expect-error -- internal module of oidc-provider, shipped without types
import providerInternals from 'oidc-provider/lib/helpers/weak_cache.js';
import type { ClientRegistry } from '../clients/registry.ts';
import type { Db } from '../db/client.ts';
import type { ResourceCatalog } from '../resources/cache.ts';
import type { RevocationList } from './revocations.ts';
import { createAdapterFactory, type AdapterPayload, type OidcAdapter } from './adapter.ts';
import { installDpopErrors } from './dpop.ts';
import { SIGNING_ALGS } from '../keys/index.ts';
import type { ProviderDeps } from './provider.ts';

export interface TokenPolicyDeps {
  db: Db;
  /** the pool under `db`, for the JwtAccessToken rows (see adapter.ts) */
  pool: pg.Pool;
  clients: ClientRegistry;
  resources: ResourceCatalog;
  /** revoked JWT ids, in memory (src/oidc/revocations.ts) */
  revocations: RevocationList;
}

/** A token as introspection and revocation see it. */
export type IntrospectableToken = AccessToken | ClientCredentials | RefreshToken;

/** oidc-provider model name of the rows that tie grant-bound JWT access tokens to their grant. */
export const JWT_ACCESS_TOKEN_MODEL = 'JwtAccessToken';

/** jti prefix of JWT access tokens issued within a grant (nanoid jtis never contain '.'). */
const GRANT_JTI_PREFIX = 'g.';

/** Longest value treated as a JWT (oidc-provider accepts bodies up to 56 KiB). */
const MAX_JWT_LENGTH = 16 * 1024;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Claims that are the token's own fields; every other claim (act, roles, …) is reported as is. */
const REGISTERED_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'cnf', 'authorization_details']);

/** Opaque tokens are nanoids (no dots): a compact JWS never is one. */
export function looksLikeJwt(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_JWT_LENGTH && JWS_COMPACT.test(value);
}

// ----------------------------------------------------------- route patch

interface ActionStacks {
  introspection: unknown[];
  revocation: unknown[];
}

let structuredTokensAccepted = false;

/**
 * Removes oidc-provider's "structured tokens cannot be introspected/revoked"
 * step from the introspection and revocation routes. Routes are composed from
 * these (module-level) arrays when a provider is constructed, so this must run
 * before the first `new Provider`: it runs when this module is loaded, and
 * again (a no-op) from tokenPolicies(), which app.ts calls before building
 * each provider. Throws if oidc-provider's internals no longer look as
 * expected, so an upgrade that breaks this fails at start-up, not silently.
 */
export function acceptStructuredTokens(): void {
  if (structuredTokensAccepted) return;
  const stacks = oidcActions as unknown as Partial<ActionStacks>;
  const reject = rejectStructuredTokens as unknown;
  for (const name of ['introspection', 'revocation'] as const) {
    const stack = stacks[name];
    const at = Array.isArray(stack) ? stack.indexOf(reject) : -1;
    if (typeof reject !== 'function' || !stack || at === -1) {
      throw new Error(`oidc-provider internals changed: cannot enable JWT access tokens at the ${name} endpoint`);
    }
    stack.splice(at, 1);
  }
  structuredTokensAccepted = true;
}

acceptStructuredTokens();

// -------------------------------------------------------------- policies

/**
 * The introspection and revocation allowedPolicy hooks:
 * - introspection: the token's client must still exist and be enabled; the
 *   caller must be that client, or (access tokens only) a confidential client
 *   that serves the token's audience (`servedBy`). Anyone else gets
 *   `{active: false}`.
 * - revocation: only the token's own client; anyone else gets the normal 200
 *   and nothing happens (RFC 7009 §2.2).
 */
export function tokenPolicies(deps: TokenPolicyDeps): Pick<ProviderDeps, 'introspectionAllowed' | 'revocationAllowed'> {
  acceptStructuredTokens();
  const { clients, resources } = deps;
  return {
    async introspectionAllowed(_ctx: KoaContextWithOIDC, caller, token) {
      const owner = token.clientId ? await clients.get(token.clientId) : undefined;
      if (!owner || owner.disabled) return false;
      if (token.clientId === caller.clientId) return true;
      if (token.kind === 'RefreshToken' || caller.clientAuthMethod === 'none') return false;
      const aud = token.aud;
      for (const identifier of aud === undefined ? [] : Array.isArray(aud) ? aud : [aud]) {
        const resource = await resources.get(identifier);
        if (resource?.servedBy.includes(caller.clientId)) return true;
      }
      return false;
    },
    revocationAllowed(_ctx: KoaContextWithOIDC, caller, token) {
      return token.clientId === caller.clientId;
    },
  };
}

// ------------------------------------------------------ JWT access tokens

interface JwtState {
  provider: Provider;
  deps: TokenPolicyDeps;
  keys: JWTVerifyGetKey;
  rows: OidcAdapter;
}

const states = new WeakMap<Provider, JwtState>();

/** What a `JwtAccessToken` row holds: what the JWT itself does not say. */
interface GrantBinding extends AdapterPayload {
  clientId: string;
  grantId: string;
  accountId?: string;
  gty?: string;
  sessionUid?: string;
  expiresWithSession?: boolean;
  sid?: string;
}

/** The fields of oidc-provider's AccessToken that the issuing hooks read. */
interface IssuingAccessToken {
  jti?: string;
  format?: string;
  clientId?: string;
  grantId?: string;
  accountId?: string;
  gty?: string;
  sessionUid?: string;
  expiresWithSession?: boolean;
  sid?: string;
  readonly remainingTTL: number;
  generateTokenId(): string;
  save(): Promise<string>;
}

interface FindOptions {
  ignoreExpiration?: boolean;
  ignoreSessionBinding?: boolean;
}
type Finder<T> = (value: string, opts?: FindOptions) => Promise<T | undefined>;

/** The public keys the provider publishes at /jwks: the signing keys and the verify-only ones. */
function publishedKeys(provider: Provider): JSONWebKeySet {
  const internals = (providerInternals as (p: Provider) => { jwks?: { keys?: unknown } } | undefined)(provider);
  const keys = internals?.jwks?.keys;
  if (!Array.isArray(keys)) throw new Error('oidc-provider internals changed: cannot read the published signing keys');
  // drop the undefined members oidc-provider leaves in each JWK
  return JSON.parse(JSON.stringify({ keys })) as JSONWebKeySet;
}

/**
 * Called on every provider built (app.ts): JWT access tokens become
 * introspectable and revocable, and grant-bound ones are recorded so that
 * revoking their grant revokes them.
 */
export function installJwtAccessTokens(provider: Provider, deps: TokenPolicyDeps): void {
  if (states.has(provider)) return; // the patches below must not stack
  // the other per-provider token rule (app.ts calls only this one)
  installDpopErrors(provider);

  const Adapter = createAdapterFactory({ prisma: deps.db, pool: deps.pool });
  const state: JwtState = {
    provider,
    deps,
    keys: createLocalJWKSet(publishedKeys(provider)),
    rows: new Adapter(JWT_ACCESS_TOKEN_MODEL),
  };
  states.set(provider, state);

  // Issuing: mark and record JWT access tokens issued within a grant.
  const proto = provider.AccessToken.prototype as unknown as IssuingAccessToken;
  const generateTokenId = proto.generateTokenId;
  proto.generateTokenId = function (this: IssuingAccessToken) {
    const id = generateTokenId.call(this);
    return this.format === 'jwt' && this.grantId ? `${GRANT_JTI_PREFIX}${id}` : id;
  };
  const save = proto.save;
  proto.save = async function (this: IssuingAccessToken) {
    const value = await save.call(this);
    if (this.format === 'jwt' && this.grantId && this.jti && this.clientId) {
      const binding: GrantBinding = {
        clientId: this.clientId,
        grantId: this.grantId,
        accountId: this.accountId,
        gty: this.gty,
        sessionUid: this.sessionUid,
        expiresWithSession: this.expiresWithSession,
        sid: this.sid,
      };
      await state.rows.upsert(this.jti, binding, Math.max(1, this.remainingTTL));
    }
    return value;
  };

  // Finding: each JWT is materialised by exactly one finder (grant-bound →
  // AccessToken, the rest → ClientCredentials), so it is verified once.
  const AT = provider.AccessToken as unknown as { find: Finder<AccessToken> };
  const findAccessToken = AT.find.bind(AT);
  AT.find = async (value, opts) => {
    if (!looksLikeJwt(value)) return findAccessToken(value, opts);
    if (!isGrantBound(value)) return undefined;
    return (await materialise(state, value, opts)) as AccessToken | undefined;
  };
  const CC = provider.ClientCredentials as unknown as { find: Finder<ClientCredentials> };
  const findClientCredentials = CC.find.bind(CC);
  CC.find = async (value, opts) => {
    if (!looksLikeJwt(value)) return findClientCredentials(value, opts);
    if (isGrantBound(value)) return undefined;
    return (await materialise(state, value, opts)) as ClientCredentials | undefined;
  };
  // Refresh tokens are opaque: a JWT is never one (and costs no query).
  const RT = provider.RefreshToken as unknown as { find: Finder<RefreshToken> };
  const findRefreshToken = RT.find.bind(RT);
  RT.find = async (value, opts) => (looksLikeJwt(value) ? undefined : findRefreshToken(value, opts));
}

// Introspection asks AccessToken.find and then ClientCredentials.find for the
// same value: remembering the last answer saves decoding the JWT twice.
let lastDecoded: { value: string; grantBound: boolean } | undefined;

function isGrantBound(value: string): boolean {
  if (lastDecoded?.value === value) return lastDecoded.grantBound;
  let grantBound = false;
  try {
    const { jti } = decodeJwt(value);
    grantBound = typeof jti === 'string' && jti.startsWith(GRANT_JTI_PREFIX);
  } catch {
    grantBound = false;
  }
  lastDecoded = { value, grantBound };
  return grantBound;
}

/**
 * Verifies a JWT access token this provider issued and returns it as an
 * oidc-provider model instance (AccessToken if issued within a grant,
 * ClientCredentials otherwise), or undefined if it is not one of ours or is
 * expired, revoked, or its client or grant is gone or disabled. For other
 * domains (e.g. token exchange) that need the same answer as introspection.
 */
export async function findJwtAccessToken(provider: Provider, value: string): Promise<AccessToken | ClientCredentials | undefined> {
  const state = states.get(provider);
  if (!state || !looksLikeJwt(value)) return undefined;
  return materialise(state, value);
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const v = payload[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

async function verify(state: JwtState, value: string): Promise<JWTPayload | undefined> {
  try {
    const { payload } = await jwtVerify(value, state.keys, {
      issuer: state.provider.issuer,
      typ: 'at+jwt',
      algorithms: [...SIGNING_ALGS],
      requiredClaims: ['exp', 'iat', 'jti', 'aud', 'client_id'],
    });
    return payload;
  } catch {
    return undefined; // bad signature, unknown key, wrong issuer or typ, expired, malformed
  }
}

async function materialise(state: JwtState, value: string, opts: FindOptions = {}): Promise<AccessToken | ClientCredentials | undefined> {
  const { provider, deps } = state;
  const payload = await verify(state, value);
  if (!payload) return undefined;
  const jti = stringClaim(payload, 'jti');
  const clientId = stringClaim(payload, 'client_id');
  const { exp, iat, aud } = payload;
  if (!jti || !clientId || typeof exp !== 'number' || typeof iat !== 'number' || aud === undefined) return undefined;
  const scope = payload.scope;
  if (scope !== undefined && typeof scope !== 'string') return undefined;

  const client = await deps.clients.get(clientId);
  if (!client || client.disabled) return undefined;

  if (deps.revocations.has(jti)) return undefined;
  const grantBound = jti.startsWith(GRANT_JTI_PREFIX);
  const binding = grantBound ? ((await state.rows.find(jti)) as GrantBinding | undefined) : undefined;
  if (grantBound && (!binding || binding.clientId !== clientId || typeof binding.grantId !== 'string')) return undefined;

  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload)) if (!REGISTERED_CLAIMS.has(k)) extra[k] = v;
  const cnf = typeof payload.cnf === 'object' && payload.cnf !== null ? (payload.cnf as Record<string, unknown>) : {};
  const fields: Record<string, unknown> = {
    jti,
    iat,
    exp,
    clientId,
    aud,
    scope,
    extra,
    ...(typeof cnf.jkt === 'string' ? { jkt: cnf.jkt } : {}),
    ...(typeof cnf['x5t#S256'] === 'string' ? { 'x5t#S256': cnf['x5t#S256'] } : {}),
  };

  let token: AccessToken | ClientCredentials;
  if (binding) {
    if (binding.expiresWithSession && !opts.ignoreSessionBinding) {
      // as oidc-provider does for stored access tokens: logout ends them
      const session = binding.sessionUid ? await provider.Session.findByUid(binding.sessionUid) : undefined;
      if (!session || session.accountId !== binding.accountId || session.grantIdFor(clientId) !== binding.grantId) return undefined;
    }
    token = instantiate(provider.AccessToken, {
      ...fields,
      grantId: binding.grantId,
      accountId: binding.accountId,
      gty: binding.gty,
      sessionUid: binding.sessionUid,
      expiresWithSession: binding.expiresWithSession,
      sid: binding.sid,
    });
  } else {
    token = instantiate(provider.ClientCredentials, fields);
  }

  // Revocation: a JWT cannot be deleted, so its jti is recorded as revoked
  // until it would expire anyway (and its grant row, if any, goes).
  Object.defineProperty(token, 'destroy', {
    configurable: true,
    value: async () => {
      await deps.revocations.revoke(jti, new Date(exp * 1000));
      if (grantBound) await state.rows.destroy(jti);
      token.emit('destroyed');
    },
  });
  return token;
}

function instantiate<T>(model: abstract new (...args: never[]) => T, fields: Record<string, unknown>): T {
  // BaseModel.instantiate(payload) = new Model(payload), keeping only the model's payload fields
  return (model as unknown as { instantiate(payload: Record<string, unknown>): T }).instantiate(fields);
}
