// The client registry's storage. Input fields mirror the CLI flags and the
// apply file (PRODUCT.md). Secrets are generated here, returned once, and
// stored only as sha-256 digests; a ClientView never carries them.
//
// Every write runs in a transaction (the caller's, when handed one) and
// announces itself with publishChange('client', id), so every instance's
// registry drops its cached copy on commit.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { publishChange } from '../db/changes.ts';
import { Prisma, type Client } from '../generated/prisma/client.ts';
import { detachServerFromResources, missingResources } from '../resources/refs.ts';
import { ConflictError, NotFoundError, ValidationError, VersionMismatchError } from '../kernel/errors.ts';
import { digestSecret, generateClientSecret } from './secrets.ts';
import { pageLimit, toPage, type Page, type PageRequest } from '../kernel/pagination.ts';
import { inTransaction, isUniqueViolation, type DbOrTx } from '../kernel/tx.ts';
import {
  CLIENT_ID,
  ClientId,
  ScopeToken,
  assertPlainInput,
  checkHttpsUri,
  checkRedirectUri,
  checkResourceIdentifier,
  checkWebUri,
  checked,
  parseWith,
  seconds,
  unique,
} from '../kernel/validation.ts';

/**
 * The grant types Gatehouse serves; any other is refused when a client is
 * written. Discovery's grant_types_supported lists the same ones
 * (test/oidc/discovery-truth.test.ts).
 */
export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:device_code',
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/** The device authorization grant (RFC 8628): TVs and CLIs, usually public clients. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code' satisfies GrantType;

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** Auth methods that need a Gatehouse-generated secret. */
export const SECRET_AUTH_METHODS: readonly AuthMethod[] = ['client_secret_basic', 'client_secret_post'];

/**
 * Security profiles a client may be held to. fapi2: the FAPI 2.0 Security
 * Profile (PAR, PKCE S256, private_key_jwt, DPoP-bound tokens, PS256/ES256,
 * short-lived codes); see checkClientSettings and src/oidc/fapi.ts.
 */
export const CLIENT_PROFILES = ['fapi2'] as const;
export type ClientProfile = (typeof CLIENT_PROFILES)[number];

/** JWS algorithms a fapi2 client may sign with (client assertions, request objects, DPoP proofs). */
export const FAPI2_ALGS = ['PS256', 'ES256'] as const;

/** Grants a fapi2 client may have: the authorization code flow and its refresh tokens. */
const FAPI2_GRANTS: readonly GrantType[] = ['authorization_code', 'refresh_token'];

/** Grants that need the client to authenticate, so no public client may have them. */
const CONFIDENTIAL_GRANTS: readonly GrantType[] = ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'];

export const CLIENT_TTLS = {
  accessTokenTtl: { min: 30, max: 86_400 },
  idTokenTtl: { min: 30, max: 86_400 },
  refreshTokenTtl: { min: 60, max: 365 * 86_400 },
} as const;

/** JWK members that only private or symmetric keys have. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

export interface JwkSet {
  keys: Record<string, unknown>[];
}

const Jwks = z
  .unknown()
  .superRefine((v, ctx) => {
    const reason = checkJwks(v);
    if (reason) ctx.addIssue({ code: 'custom', message: reason });
  })
  .transform((v) => v as JwkSet);

function checkJwks(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be a JWK set: an object with a "keys" array';
  const keys = (v as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) return 'must be a JWK set with a non-empty "keys" array';
  if (keys.length > 20) return 'must hold at most 20 keys';
  for (const [i, k] of keys.entries()) {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) return `key ${i} is not a JSON object`;
    const kty = (k as { kty?: unknown }).kty;
    if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') return `key ${i} must have kty RSA, EC or OKP`;
    const priv = PRIVATE_JWK_MEMBERS.find((m) => m in k);
    if (priv) return `key ${i} holds private key material ("${priv}"); give public keys only`;
  }
  if (JSON.stringify(v).length > 64 * 1024) return 'is larger than 64 KiB';
  return undefined;
}

const GrantTypeField = checked(
  (v) => ((GRANT_TYPES as readonly string[]).includes(v) ? undefined : `'${v}' is not a grant type Gatehouse serves (served: ${GRANT_TYPES.join(', ')})`),
  200,
).transform((v) => v as GrantType);

const bool = z.boolean({ error: 'must be true or false' });
const ttl = (k: keyof typeof CLIENT_TTLS) => seconds(CLIENT_TTLS[k].min, CLIENT_TTLS[k].max).nullable();

const field = {
  name: z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  public: bool,
  grants: z.array(GrantTypeField).min(1, 'needs at least one grant type').max(10),
  redirectUris: z.array(checked(checkRedirectUri)).max(50, 'at most 50 URIs'),
  postLogoutRedirectUris: z.array(checked(checkRedirectUri)).max(50, 'at most 50 URIs'),
  scopes: z.array(ScopeToken).max(500, 'at most 500 scopes'),
  resources: z.array(checked(checkResourceIdentifier)).max(100, 'at most 100 resources'),
  authMethod: z.enum(AUTH_METHODS),
  jwks: Jwks.nullable(),
  jwksUri: checked(checkHttpsUri).nullable(),
  requireDpop: bool,
  requirePar: bool,
  profile: z.enum(CLIENT_PROFILES, { error: `must be one of: ${CLIENT_PROFILES.join(', ')} (or null for none)` }).nullable(),
  firstParty: bool,
  requireMfa: bool,
  backchannelLogoutUri: checked(checkWebUri).nullable(),
  accessTokenTtl: ttl('accessTokenTtl'),
  idTokenTtl: ttl('idTokenTtl'),
  refreshTokenTtl: ttl('refreshTokenTtl'),
  disabled: bool,
};

/**
 * A new client: the apply file's fields and `clients create`'s flags.
 * `id` is generated when absent; `authMethod` defaults to none for public
 * clients and client_secret_basic otherwise. Secrets cannot be given.
 */
export const ClientInput = z.strictObject({
  id: ClientId.optional(),
  name: field.name,
  public: field.public.optional(),
  grants: field.grants,
  redirectUris: field.redirectUris.optional(),
  postLogoutRedirectUris: field.postLogoutRedirectUris.optional(),
  scopes: field.scopes.optional(),
  resources: field.resources.optional(),
  authMethod: field.authMethod.optional(),
  jwks: field.jwks.optional(),
  jwksUri: field.jwksUri.optional(),
  requireDpop: field.requireDpop.optional(),
  requirePar: field.requirePar.optional(),
  profile: field.profile.optional(),
  firstParty: field.firstParty.optional(),
  requireMfa: field.requireMfa.optional(),
  backchannelLogoutUri: field.backchannelLogoutUri.optional(),
  accessTokenTtl: field.accessTokenTtl.optional(),
  idTokenTtl: field.idTokenTtl.optional(),
  refreshTokenTtl: field.refreshTokenTtl.optional(),
  disabled: field.disabled.optional(),
});
export type ClientInput = z.input<typeof ClientInput>;

/**
 * Changes to a client: any subset of the fields. A list replaces the stored
 * list; null clears an optional value. `id` may be given only unchanged.
 */
export const ClientPatch = ClientInput.partial();
export type ClientPatch = z.input<typeof ClientPatch>;

/** Every configurable field of a client, defaults applied. */
export interface ClientSettings {
  name: string;
  public: boolean;
  grants: GrantType[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  scopes: string[];
  resources: string[];
  authMethod: AuthMethod;
  jwks: JwkSet | null;
  jwksUri: string | null;
  requireDpop: boolean;
  /** authorization requests must be pushed first (PAR, RFC 9126) */
  requirePar: boolean;
  profile: ClientProfile | null;
  firstParty: boolean;
  requireMfa: boolean;
  backchannelLogoutUri: string | null;
  accessTokenTtl: number | null;
  idTokenTtl: number | null;
  refreshTokenTtl: number | null;
  disabled: boolean;
}

/** The names of every setting, in the order of the apply file. */
export const CLIENT_SETTINGS: readonly (keyof ClientSettings)[] = [
  'name',
  'public',
  'grants',
  'redirectUris',
  'postLogoutRedirectUris',
  'scopes',
  'resources',
  'authMethod',
  'jwks',
  'jwksUri',
  'requireDpop',
  'requirePar',
  'profile',
  'firstParty',
  'requireMfa',
  'backchannelLogoutUri',
  'accessTokenTtl',
  'idTokenTtl',
  'refreshTokenTtl',
  'disabled',
];

/** A client as shown by the CLI and the admin API: no secret material. */
export interface ClientView extends ClientSettings {
  id: string;
  /** whether a client secret is set (secret-based auth methods) */
  hasSecret: boolean;
  /** until when the secret replaced by the last rotation still works; null if none */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

/** The full stored client, digests included: for the authentication path only. */
export interface ClientRecord extends ClientSettings {
  id: string;
  secretDigest: string | null;
  previousSecretDigest: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

/**
 * 16 random bytes, base64url: 22 characters. Drawn again if it would start
 * with '-' or '_' (such an id reads as a flag on a command line, and
 * CLIENT_ID requires a letter or digit first).
 */
export function generateClientId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (CLIENT_ID.test(id)) return id;
  }
}

export function usesSecret(s: Pick<ClientSettings, 'public' | 'authMethod'>): boolean {
  return !s.public && SECRET_AUTH_METHODS.includes(s.authMethod);
}

const defaultAuthMethod = (isPublic: boolean): AuthMethod => (isPublic ? 'none' : 'client_secret_basic');

/** The rules that span fields; each failure names the field to fix. */
export function checkClientSettings(s: ClientSettings): void {
  if (s.public && s.authMethod !== 'none') {
    throw new ValidationError('authMethod', `a public client cannot use ${s.authMethod}; it must use none`);
  }
  if (!s.public && s.authMethod === 'none') {
    throw new ValidationError('authMethod', 'none is only for public clients');
  }
  if (s.authMethod === 'private_key_jwt' && !s.jwks && !s.jwksUri) {
    throw new ValidationError('jwks', 'private_key_jwt needs the public keys of the client (jwks or jwksUri)');
  }
  if (s.jwks && s.jwksUri) throw new ValidationError('jwksUri', 'give either jwks or jwksUri, not both');
  if (s.public) {
    const g = s.grants.find((x) => CONFIDENTIAL_GRANTS.includes(x));
    if (g) throw new ValidationError('grants', `${g} needs a confidential client (a public client cannot authenticate)`);
  }
  if (s.grants.includes('refresh_token') && !s.grants.includes('authorization_code') && !s.grants.includes(DEVICE_CODE_GRANT)) {
    throw new ValidationError('grants', 'refresh_token needs authorization_code or the device code grant');
  }
  if (s.grants.includes('authorization_code') && s.redirectUris.length === 0) {
    throw new ValidationError('redirectUris', 'at least one redirect URI is required with the authorization_code grant');
  }
  if (s.requirePar && !s.grants.includes('authorization_code')) {
    throw new ValidationError('requirePar', 'pushed authorization requests are for the authorization_code grant; this client has none');
  }
  if (s.profile === 'fapi2') checkFapi2(s);
}

/** The FAPI 2.0 Security Profile's demands on a client's registration; each refusal says what to change. */
function checkFapi2(s: ClientSettings): void {
  const fapi = (field: string, message: string) => new ValidationError(field, `profile fapi2 (FAPI 2.0): ${message}`);
  if (s.public) throw fapi('public', 'needs a confidential client; a public client cannot authenticate');
  if (s.authMethod !== 'private_key_jwt') {
    throw fapi('authMethod', `needs private_key_jwt client authentication (not ${s.authMethod}); mTLS is not offered`);
  }
  if (!s.grants.includes('authorization_code')) throw fapi('grants', 'needs the authorization_code grant');
  const other = s.grants.find((g) => !FAPI2_GRANTS.includes(g));
  if (other) throw fapi('grants', `allows only authorization_code and refresh_token, not ${other}`);
  if (!s.requirePar) throw fapi('requirePar', 'needs pushed authorization requests (requirePar)');
  if (!s.requireDpop) throw fapi('requireDpop', 'needs DPoP-bound tokens (requireDpop)');
  const http = s.redirectUris.find((u) => !u.startsWith('https://'));
  if (http) throw fapi('redirectUris', `needs https redirect URIs, not ${http}`);
  if (s.jwks) {
    const usable = s.jwks.keys.some((k) => k.kty === 'RSA' || (k.kty === 'EC' && k.crv === 'P-256'));
    if (!usable) throw fapi('jwks', `signs with ${FAPI2_ALGS.join(' or ')} only: give an RSA (PS256) or EC P-256 (ES256) key`);
  }
}

function settingsOf(row: Client): ClientSettings {
  return {
    name: row.name,
    public: row.public,
    grants: row.grantTypes as GrantType[],
    redirectUris: row.redirectUris,
    postLogoutRedirectUris: row.postLogoutRedirectUris,
    scopes: row.scopes,
    resources: row.resources,
    authMethod: row.authMethod as AuthMethod,
    jwks: (row.jwks as JwkSet | null) ?? null,
    jwksUri: row.jwksUri,
    requireDpop: row.requireDpop,
    requirePar: row.requirePar,
    profile: (row.profile as ClientProfile | null) ?? null,
    firstParty: row.firstParty,
    requireMfa: row.requireMfa,
    backchannelLogoutUri: row.backchannelLogoutUri,
    accessTokenTtl: row.accessTokenTtl,
    idTokenTtl: row.idTokenTtl,
    refreshTokenTtl: row.refreshTokenTtl,
    disabled: row.disabled,
  };
}

export function toClientRecord(row: Client): ClientRecord {
  return {
    id: row.id,
    ...settingsOf(row),
    secretDigest: row.secretDigest,
    previousSecretDigest: row.previousSecretDigest,
    previousSecretExpiresAt: row.previousSecretExpiresAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    version: row.version,
  };
}

export function toClientView(row: Client): ClientView {
  return {
    id: row.id,
    ...settingsOf(row),
    hasSecret: row.secretDigest !== null,
    previousSecretExpiresAt: row.previousSecretDigest !== null ? row.previousSecretExpiresAt : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    version: row.version,
  };
}

/** Settings → the columns they are stored in. */
function columns(s: ClientSettings) {
  return {
    name: s.name,
    public: s.public,
    authMethod: s.authMethod,
    grantTypes: unique(s.grants),
    redirectUris: unique(s.redirectUris),
    postLogoutRedirectUris: unique(s.postLogoutRedirectUris),
    scopes: unique(s.scopes),
    resources: unique(s.resources),
    jwks: s.jwks === null ? Prisma.DbNull : (s.jwks as unknown as Prisma.InputJsonObject),
    jwksUri: s.jwksUri,
    requireDpop: s.requireDpop,
    requirePar: s.requirePar,
    profile: s.profile,
    firstParty: s.firstParty,
    requireMfa: s.requireMfa,
    backchannelLogoutUri: s.backchannelLogoutUri,
    accessTokenTtl: s.accessTokenTtl,
    idTokenTtl: s.idTokenTtl,
    refreshTokenTtl: s.refreshTokenTtl,
    disabled: s.disabled,
  };
}

async function assertResourcesExist(db: DbOrTx, resources: readonly string[]): Promise<void> {
  const missing = await missingResources(db, resources);
  if (missing.length > 0) throw new ValidationError('resources', `unknown resource '${missing[0]}'`);
}

function versionConflict(id: string, actual: number, expected: number): VersionMismatchError {
  return new VersionMismatchError(actual, `client '${id}' is at version ${actual}, not ${expected}`);
}

/**
 * A client's settings with every default applied (what createClient stores;
 * apply files compare against the same thing).
 */
export function withClientDefaults(c: Omit<z.output<typeof ClientInput>, 'id'>): ClientSettings {
  const isPublic = c.public ?? false;
  return {
    name: c.name,
    public: isPublic,
    grants: c.grants,
    redirectUris: c.redirectUris ?? [],
    postLogoutRedirectUris: c.postLogoutRedirectUris ?? [],
    scopes: c.scopes ?? [],
    resources: c.resources ?? [],
    authMethod: c.authMethod ?? defaultAuthMethod(isPublic),
    jwks: c.jwks ?? null,
    jwksUri: c.jwksUri ?? null,
    // the fapi2 profile turns on what it needs unless told otherwise (then refused)
    requireDpop: c.requireDpop ?? c.profile === 'fapi2',
    requirePar: c.requirePar ?? c.profile === 'fapi2',
    profile: c.profile ?? null,
    firstParty: c.firstParty ?? false,
    requireMfa: c.requireMfa ?? false,
    backchannelLogoutUri: c.backchannelLogoutUri ?? null,
    accessTokenTtl: c.accessTokenTtl ?? null,
    idTokenTtl: c.idTokenTtl ?? null,
    refreshTokenTtl: c.refreshTokenTtl ?? null,
    disabled: c.disabled ?? false,
  };
}

/**
 * Registers a client. Confidential clients with a secret auth method get a
 * generated secret, returned here once and stored only as its digest.
 */
export async function createClient(db: DbOrTx, input: ClientInput): Promise<{ client: ClientView; clientSecret?: string }> {
  assertPlainInput(input);
  const c = parseWith(ClientInput, input);
  const settings = withClientDefaults(c);
  checkClientSettings(settings);
  const id = c.id ?? generateClientId();
  const clientSecret = usesSecret(settings) ? generateClientSecret() : undefined;
  return inTransaction(db, async (tx) => {
    if (await tx.client.findUnique({ where: { id }, select: { id: true } })) throw new ConflictError(`client '${id}' already exists`);
    await assertResourcesExist(tx, settings.resources);
    try {
      const row = await tx.client.create({
        data: { id, ...columns(settings), secretDigest: clientSecret ? digestSecret(clientSecret) : null },
      });
      await publishChange(tx, 'client', id);
      return { client: toClientView(row), ...(clientSecret && { clientSecret }) };
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`client '${id}' already exists`);
      throw err;
    }
  });
}

/**
 * Changes a client; the merged result must satisfy every rule of a new one.
 * Switching to a secret auth method generates a secret (returned once);
 * switching away from one deletes the stored digests. Changing `public`
 * without giving `authMethod` resets the auth method to that type's default.
 * The version goes up by one; with `expectedVersion`, a client at another
 * version is a ConflictError.
 */
export async function updateClient(
  db: DbOrTx,
  id: string,
  patch: ClientPatch,
  opts: { expectedVersion?: number } = {},
): Promise<{ client: ClientView; clientSecret?: string }> {
  assertPlainInput(patch);
  const p = parseWith(ClientPatch, patch);
  if (p.id !== undefined && p.id !== id) throw new ValidationError('id', 'cannot be changed (create a new client instead)');
  return inTransaction(db, async (tx) => {
    const row = await tx.client.findUnique({ where: { id } });
    if (!row) throw new NotFoundError('client', id);
    if (opts.expectedVersion !== undefined && row.version !== opts.expectedVersion) throw versionConflict(id, row.version, opts.expectedVersion);
    const current = settingsOf(row);
    const { id: _id, ...changes } = p;
    const merged: ClientSettings = { ...current };
    for (const [k, v] of Object.entries(changes)) if (v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v;
    if (p.public !== undefined && p.public !== current.public && p.authMethod === undefined) {
      merged.authMethod = defaultAuthMethod(p.public);
    }
    if (p.profile === 'fapi2' && current.profile !== 'fapi2') {
      // as at creation: the profile turns on what it needs unless told otherwise
      if (p.requirePar === undefined) merged.requirePar = true;
      if (p.requireDpop === undefined) merged.requireDpop = true;
    }
    checkClientSettings(merged);
    if (p.resources !== undefined) await assertResourcesExist(tx, merged.resources);

    let clientSecret: string | undefined;
    let secrets: Pick<Client, 'secretDigest' | 'previousSecretDigest' | 'previousSecretExpiresAt'> | undefined;
    if (usesSecret(merged) && row.secretDigest === null) {
      clientSecret = generateClientSecret();
      secrets = { secretDigest: digestSecret(clientSecret), previousSecretDigest: null, previousSecretExpiresAt: null };
    } else if (!usesSecret(merged) && row.secretDigest !== null) {
      secrets = { secretDigest: null, previousSecretDigest: null, previousSecretExpiresAt: null };
    }
    const res = await tx.client.updateMany({
      where: { id, version: row.version },
      data: { ...columns(merged), ...secrets, version: { increment: 1 } },
    });
    if (res.count === 0) throw new ConflictError(`client '${id}' was changed concurrently; retry`);
    await publishChange(tx, 'client', id);
    const updated = await tx.client.findUniqueOrThrow({ where: { id } });
    return { client: toClientView(updated), ...(clientSecret && { clientSecret }) };
  });
}

/** Deletes a client and removes it from every resource's servedBy list. */
export async function deleteClient(db: DbOrTx, id: string, opts: { expectedVersion?: number } = {}): Promise<void> {
  await inTransaction(db, async (tx) => {
    const row = await tx.client.findUnique({ where: { id }, select: { version: true } });
    if (!row) throw new NotFoundError('client', id);
    if (opts.expectedVersion !== undefined && row.version !== opts.expectedVersion) throw versionConflict(id, row.version, opts.expectedVersion);
    const res = await tx.client.deleteMany({ where: { id, version: row.version } });
    if (res.count === 0) throw new ConflictError(`client '${id}' was changed concurrently; retry`);
    await detachServerFromResources(tx, id);
    await publishChange(tx, 'client', id);
  });
}

/** The client without secret material, or NotFoundError. */
export async function getClient(db: DbOrTx, id: string): Promise<ClientView> {
  const row = await db.client.findUnique({ where: { id } });
  if (!row) throw new NotFoundError('client', id);
  return toClientView(row);
}

/** The full stored client, digests included, or undefined (the registry's loader; the auth path). */
export async function getClientRecord(db: DbOrTx, id: string): Promise<ClientRecord | undefined> {
  const row = await db.client.findUnique({ where: { id } });
  return row ? toClientRecord(row) : undefined;
}

export interface ClientFilter {
  /** only clients whose id or name contains this text (case-insensitive) */
  q?: string;
  /** only enabled or only disabled clients */
  status?: 'enabled' | 'disabled';
}

/** How many clients there are (the console's overview). */
export async function countClients(db: DbOrTx): Promise<number> {
  return db.client.count();
}

/** Clients ordered by id, one page at a time (src/kernel/pagination.ts), optionally filtered. */
export async function listClients(db: DbOrTx, opts: PageRequest & ClientFilter = {}): Promise<Page<ClientView>> {
  const limit = pageLimit(opts.limit);
  const where: Prisma.ClientWhereInput = {};
  if (opts.cursor !== undefined) where.id = { gt: opts.cursor };
  if (opts.q) {
    // plain text: LIKE's wildcards and escape character match themselves
    const text = opts.q.replace(/[\\%_]/g, (c) => `\\${c}`);
    where.OR = [{ id: { contains: text, mode: 'insensitive' } }, { name: { contains: text, mode: 'insensitive' } }];
  }
  if (opts.status) where.disabled = opts.status === 'disabled';
  const rows = await db.client.findMany({
    where,
    orderBy: { id: 'asc' },
    take: limit + 1,
  });
  return toPage(rows.map(toClientView), limit, (c) => c.id);
}

/**
 * Replaces a client's secret. The old one keeps working for `graceSeconds`
 * (0: stops at once). Only for clients that authenticate with a secret.
 */
export async function rotateClientSecret(
  db: DbOrTx,
  id: string,
  opts: { graceSeconds: number; now?: Date; expectedVersion?: number },
): Promise<{ clientSecret: string; previousSecretExpiresAt: Date | null; client: ClientView }> {
  const { graceSeconds } = opts;
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 30 * 86_400) {
    throw new ValidationError('graceSeconds', 'must be a whole number of seconds between 0 and 2592000');
  }
  const clientSecret = generateClientSecret();
  return inTransaction(db, async (tx) => {
    const row = await tx.client.findUnique({ where: { id } });
    if (!row) throw new NotFoundError('client', id);
    if (opts.expectedVersion !== undefined && row.version !== opts.expectedVersion) throw versionConflict(id, row.version, opts.expectedVersion);
    if (!usesSecret(settingsOf(row))) {
      throw new ConflictError(`client '${id}' does not use a client secret (auth method ${row.authMethod})`);
    }
    const now = opts.now ?? new Date();
    const keepOld = graceSeconds > 0 && row.secretDigest !== null;
    const previousSecretExpiresAt = keepOld ? new Date(now.getTime() + graceSeconds * 1000) : null;
    const res = await tx.client.updateMany({
      where: { id, version: row.version },
      data: {
        secretDigest: digestSecret(clientSecret),
        previousSecretDigest: keepOld ? row.secretDigest : null,
        previousSecretExpiresAt,
        version: { increment: 1 },
      },
    });
    if (res.count === 0) throw new ConflictError(`client '${id}' was changed concurrently; retry`);
    await publishChange(tx, 'client', id);
    const updated = await tx.client.findUniqueOrThrow({ where: { id } });
    return { clientSecret, previousSecretExpiresAt, client: toClientView(updated) };
  });
}
