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
//   algorithm allow-list) and must still stand (tokenStanding below: its
//   client exists, is enabled and was registered before the token was
//   issued; it is not revoked; a token issued within a grant is still backed
//   by that grant; a person's account exists and is enabled); then it is
//   materialised as a model instance. oidc-provider's own introspection and
//   revocation actions, client authentication and the allowedPolicy hooks
//   then work unchanged. Token exchange and the admin API ask the same
//   question (checkAccessToken), so revocation shuts every door at once.
// - A JWT access token issued within a grant (user flows) gets a marked jti
//   (`g.` prefix; random jtis never contain a dot) and a small `JwtAccessToken`
//   row in oidc_payloads carrying its grant id, so `revokeByGrantId` deletes it
//   and the token turns inactive. So does a token that token exchange minted
//   from such a token (on a person's behalf): its row names the original
//   grant (`delegated`), and ending that grant ends the whole chain.
//   client_credentials tokens are a different model (ClientCredentials), get
//   no row and stay write-free.
// - Revoking a JWT access token inserts its jti into `revoked_tokens` until
//   it would expire anyway; every instance checks that table.
//
// Opaque tokens (refresh tokens, opaque access tokens) go through the
// adapter as before; a JWT-looking value never reaches it.
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type Provider from 'oidc-provider';
import type pg from 'pg';
import type { AccessToken, ClientCredentials, KoaContextWithOIDC, RefreshToken } from 'oidc-provider';
import type { AccountDirectory } from '../accounts/cache.ts';
import { isAccountId } from '../accounts/store.ts';
import type { ClientRegistry } from '../clients/registry.ts';
import type { Db } from '../db/client.ts';
import type { ResourceCatalog } from '../resources/cache.ts';
import type { RevocationList } from './revocations.ts';
import { createAdapterFactory, type AdapterPayload, type OidcAdapter } from './adapter.ts';
import { acceptStructuredTokens } from './internals.ts';
import type { Patch } from './seam.ts';
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
  /** cached account look-ups: a disabled or deleted person's tokens stand no more */
  accounts: AccountDirectory;
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

acceptStructuredTokens();

/** Opaque tokens are nanoids (no dots): a compact JWS never is one. */
export function looksLikeJwt(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_JWT_LENGTH && JWS_COMPACT.test(value);
}

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
      // opaque tokens too: a disabled or deleted person's tokens are inactive
      const accountId = (token as { accountId?: unknown }).accountId;
      if (typeof accountId === 'string' && !(await personStands(deps, accountId))) return false;
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
export interface GrantBinding extends AdapterPayload {
  clientId: string;
  grantId: string;
  /** minted by token exchange from a token of that grant (clientId is the actor) */
  delegated?: boolean;
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

/**
 * JWT access tokens become introspectable and revocable, and grant-bound ones
 * are recorded so that revoking their grant revokes them (installed by
 * seam.ts on every provider built; `deps.publicJwks` is what the provider
 * publishes at /jwks).
 */
export function jwtAccessTokenPatches(provider: Provider, deps: TokenPolicyDeps & { publicJwks: JSONWebKeySet }): Patch[] {
  const Adapter = createAdapterFactory({ prisma: deps.db, pool: deps.pool });
  const state: JwtState = {
    provider,
    deps,
    keys: createLocalJWKSet(deps.publicJwks),
    rows: new Adapter(JWT_ACCESS_TOKEN_MODEL),
  };
  states.set(provider, state);

  return [
    {
      method: 'AccessToken#generateTokenId',
      why: 'grant-bound JWT access tokens (and those exchanged from them) get a marked jti',
      wrap: (generateTokenId) =>
        function (this: IssuingAccessToken) {
          const id = generateTokenId.call(this) as string;
          return this.format === 'jwt' && (this.grantId || delegations.has(this)) ? `${GRANT_JTI_PREFIX}${id}` : id;
        },
    },
    {
      method: 'AccessToken#save',
      why: 'a grant-bound JWT access token gets a row tying it to its grant',
      wrap: (save) =>
        async function (this: IssuingAccessToken) {
          const value = (await save.call(this)) as string;
          const delegated = delegations.get(this);
          if (this.format === 'jwt' && this.jti && this.clientId && (this.grantId || delegated)) {
            const binding: GrantBinding = delegated
              ? { clientId: this.clientId, grantId: delegated.grantId, accountId: delegated.accountId, delegated: true }
              : {
                  clientId: this.clientId,
                  grantId: this.grantId!,
                  accountId: this.accountId,
                  gty: this.gty,
                  sessionUid: this.sessionUid,
                  expiresWithSession: this.expiresWithSession,
                  sid: this.sid,
                };
            await state.rows.upsert(this.jti, binding, Math.max(1, this.remainingTTL));
          }
          return value;
        },
    },
    // Finding: each JWT is materialised by exactly one finder (grant-bound →
    // AccessToken, the rest → ClientCredentials), so it is verified once.
    {
      method: 'AccessToken.find',
      why: 'JWT access tokens are found by verifying them (oidc-provider stores none)',
      wrap: (find) => async (value: string, opts?: FindOptions) => {
        if (!looksLikeJwt(value)) return find(value, opts) as Promise<AccessToken | undefined>;
        if (!isGrantBound(value)) return undefined;
        return materialise(state, value, opts);
      },
    },
    {
      method: 'ClientCredentials.find',
      why: 'JWT access tokens are found by verifying them (oidc-provider stores none)',
      wrap: (find) => async (value: string, opts?: FindOptions) => {
        if (!looksLikeJwt(value)) return find(value, opts) as Promise<ClientCredentials | undefined>;
        if (isGrantBound(value)) return undefined;
        return materialise(state, value, opts);
      },
    },
    {
      method: 'RefreshToken.find',
      why: 'refresh tokens are opaque: a JWT is never one (and costs no query)',
      wrap: (find) => async (value: string, opts?: FindOptions) => (looksLikeJwt(value) ? undefined : find(value, opts)),
    },
  ];
}

/** Tokens being minted by token exchange on behalf of a grant's person (delegateGrant). */
const delegations = new WeakMap<object, { grantId: string; accountId: string | undefined }>();

/**
 * Ties an access token that token exchange is about to save to the grant
 * behind its subject token: the new token gets a grant-bound jti and a row
 * naming that grant, so that whatever ends the grant (logout, revoke-sessions,
 * disable, reuse, client deletion) ends the delegated token too.
 */
export function delegateGrant(token: object, grantId: string, accountId: string | undefined): void {
  delegations.set(token, { grantId, accountId });
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

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const v = payload[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

async function verifyOrThrow(state: JwtState, value: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(value, state.keys, {
    issuer: state.provider.issuer,
    typ: 'at+jwt',
    algorithms: [...SIGNING_ALGS],
    requiredClaims: ['exp', 'iat', 'jti', 'aud', 'client_id'],
  });
  return payload;
}

async function verify(state: JwtState, value: string): Promise<JWTPayload | undefined> {
  try {
    return await verifyOrThrow(state, value);
  } catch {
    return undefined; // bad signature, unknown key, wrong issuer or typ, expired, malformed
  }
}

/** A JWT access token of ours that still stands, with what its row says. */
export interface StandingToken {
  payload: JWTPayload & { jti: string; client_id: string; exp: number; iat: number };
  /** grant-bound tokens: the row tying it to its grant */
  binding?: GrantBinding;
  /** the person behind it, if any (a grant's account, or a person's `sub`) */
  accountId?: string;
}

/** Whether the person exists and is enabled (the cached account directory). */
async function personStands(deps: Pick<TokenPolicyDeps, 'accounts'>, accountId: string): Promise<boolean> {
  if (!isAccountId(accountId)) return true; // a machine's sub (a client id)
  const account = await deps.accounts.get(accountId);
  return account !== undefined && !account.disabled;
}

/**
 * The client exists and is enabled, and (given the token's `iat`) was
 * registered before the token was issued: a client re-created under a
 * deleted one's id starts with nothing.
 */
async function clientStands(deps: Pick<TokenPolicyDeps, 'clients'>, clientId: string, iat?: number): Promise<boolean> {
  const client = await deps.clients.get(clientId);
  if (!client || client.disabled) return false;
  return iat === undefined || Math.floor(client.createdAt.getTime() / 1000) <= iat;
}

interface BindingRow {
  payload: GrantBinding;
  grant_client: string | null;
}

/** One statement: the token's row, only while its grant lives, with the grant's client. */
async function liveBinding(pool: pg.Pool, jti: string): Promise<BindingRow | undefined> {
  const { rows } = await pool.query<BindingRow>(
    `SELECT b.payload, g.payload->>'clientId' AS grant_client
       FROM oidc_payloads b
       JOIN oidc_payloads g ON g.model = 'Grant' AND g.id = b.grant_id AND (g.expires_at IS NULL OR g.expires_at > now())
      WHERE b.model = $1 AND b.id = $2 AND (b.expires_at IS NULL OR b.expires_at > now())`,
    [JWT_ACCESS_TOKEN_MODEL, jti],
  );
  return rows[0];
}

/** Why a token does not stand, after "the token …" (token exchange's error_description). */
export interface Refusal {
  refused: string;
}

const refuse = (refused: string): Refusal => ({ refused });
export const isRefusal = (r: StandingToken | Refusal): r is Refusal => 'refused' in r;

/**
 * Whether a verified JWT access token still stands: the one rule behind
 * introspection, token exchange and the admin API. In-memory checks first;
 * a grant-bound token costs one query.
 */
async function tokenStanding(state: JwtState, payload: JWTPayload): Promise<StandingToken | Refusal> {
  const { deps } = state;
  const jti = stringClaim(payload, 'jti');
  const clientId = stringClaim(payload, 'client_id');
  const { exp, iat, aud } = payload;
  if (!jti || !clientId || typeof exp !== 'number' || typeof iat !== 'number' || aud === undefined) return refuse('is not a valid access token issued by this server');
  if (payload.scope !== undefined && typeof payload.scope !== 'string') return refuse('is not a valid access token issued by this server');
  if (deps.revocations.has(jti)) return refuse('has been revoked');
  if (!(await clientStands(deps, clientId, iat))) return refuse('was issued to a client that is unknown or disabled');

  let binding: GrantBinding | undefined;
  if (jti.startsWith(GRANT_JTI_PREFIX)) {
    const row = await liveBinding(deps.pool, jti);
    if (!row || row.payload.clientId !== clientId || typeof row.payload.grantId !== 'string') return refuse('has been revoked');
    // a delegated token lives only while the client its grant was given to does
    if (row.grant_client !== clientId && !(row.grant_client && (await clientStands(deps, row.grant_client)))) {
      return refuse('was issued to a client that is unknown or disabled');
    }
    binding = row.payload;
  }
  // A person's token is always grant-bound (sign-in, or exchanged from one:
  // delegateGrant), so the person is the one its row names.
  const accountId = binding?.accountId;
  if (accountId !== undefined && !(await personStands(deps, accountId))) return refuse('was issued for a person who is disabled or deleted');
  return {
    payload: payload as StandingToken['payload'],
    ...(binding ? { binding } : {}),
    ...(accountId !== undefined ? { accountId } : {}),
  };
}

/**
 * A JWT access token this provider issued that still stands (tokenStanding),
 * or why not: for token exchange and the admin API, which must give the same
 * answer as introspection.
 */
export async function checkAccessToken(provider: Provider, value: string): Promise<StandingToken | Refusal> {
  const state = states.get(provider);
  if (!state) throw new Error('checkAccessToken: jwtAccessTokenPatches() was not installed on this provider');
  if (!looksLikeJwt(value)) return refuse('is not a valid access token issued by this server');
  let payload: JWTPayload;
  try {
    payload = await verifyOrThrow(state, value);
  } catch (err) {
    return refuse(err instanceof joseErrors.JWTExpired ? 'has expired' : 'is not a valid access token issued by this server');
  }
  return tokenStanding(state, payload);
}

/**
 * Verifies a JWT access token this provider issued and returns it as an
 * oidc-provider model instance (AccessToken if issued within a grant,
 * ClientCredentials otherwise), or undefined if it is not one of ours or no
 * longer stands.
 */
export async function findJwtAccessToken(provider: Provider, value: string): Promise<AccessToken | ClientCredentials | undefined> {
  const state = states.get(provider);
  if (!state || !looksLikeJwt(value)) return undefined;
  return materialise(state, value);
}

async function materialise(state: JwtState, value: string, opts: FindOptions = {}): Promise<AccessToken | ClientCredentials | undefined> {
  const { provider, deps } = state;
  const payload = await verify(state, value);
  if (!payload) return undefined;
  const standing = await tokenStanding(state, payload);
  if (isRefusal(standing)) return undefined;
  const { jti, client_id: clientId, exp, iat, aud, scope } = standing.payload;
  const binding = standing.binding;

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
  if (binding?.delegated) {
    // minted by token exchange: the actor's token, on the grant's person's
    // behalf, not a token of that grant (oidc-provider would compare the
    // grant's client with the actor)
    token = instantiate(provider.AccessToken, { ...fields, accountId: binding.accountId, gty: 'urn:ietf:params:oauth:grant-type:token-exchange' });
  } else if (binding) {
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
      if (binding) await state.rows.destroy(jti);
      token.emit('destroyed');
    },
  });
  return token;
}

function instantiate<T>(model: abstract new (...args: never[]) => T, fields: Record<string, unknown>): T {
  // BaseModel.instantiate(payload) = new Model(payload), keeping only the model's payload fields
  return (model as unknown as { instantiate(payload: Record<string, unknown>): T }).instantiate(fields);
}
