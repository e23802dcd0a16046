// The declarative config file of `gatehouse apply` / `gatehouse export`
// (PRODUCT.md): top-level `resources`, `clients`, `roles` and `idps` lists
// whose fields mirror the CLI flags.
//
// An `idps` entry (upstream identity provider) never holds its client secret:
// `clientSecretEnv: NAME` names the environment variable `gatehouse apply`
// reads it from (required when the entry creates a provider; when absent on
// an existing one, its stored secret stays).
//
//   resources:                       clients:                          roles:
//     - identifier: https://api…       - id: orders-service               - name: nurse
//       scopes: [a, b]                   name: Orders service               resource: https://api…
//       ttl: 300                         grants: [client_credentials]       scopes: [a]
//       servedBy: [orders-service]       resources: [https://api…]
//
// Each entry is checked with the domain's own zod schema (ClientInput,
// ResourceInput, RoleInput; a resource's `accessTokenTtl` is spelled `ttl`
// like its flag, and a client's `id` is required: it is the entry's identity),
// so the rules are those of the CLI and the admin API. An omitted optional
// field means its default, so the normalised entries here are complete.
//
// This file checks entries on their own; references between entries and to
// the database (resources, servedBy, a role's scopes) are checked by plan.ts.
import { z } from 'zod';
import { GatehouseError, ValidationError } from '../kernel/errors.ts';
import { ClientInput, checkClientSettings, withClientDefaults, type ClientSettings } from '../clients/store.ts';
import { ClientId, parseWith, unique } from '../kernel/validation.ts';
import { RoleInput } from '../resources/roles.ts';
import { parsePolicy, type Policy } from '../access/policies.ts';
import { ResourceInput, type ResourceSigningAlg } from '../resources/store.ts';
import { IdpInput, normalizeScopes } from '../federation/store.ts';

export type Kind = 'resource' | 'client' | 'role' | 'idp' | 'policy';

/** The top-level list of each kind, and the field that identifies its entries. */
export const SECTION = { resource: 'resources', client: 'clients', role: 'roles', idp: 'idps', policy: 'policies' } as const satisfies Record<Kind, string>;
export const ID_FIELD = { resource: 'identifier', client: 'id', role: 'name', idp: 'name', policy: 'name' } as const satisfies Record<Kind, string>;

// ------------------------------------------------------------------ schemas

/** A resource entry: ResourceInput with `accessTokenTtl` spelled `ttl` (its CLI flag). */
export const FileResource = ResourceInput.omit({ accessTokenTtl: true, sensitiveScopes: true }).extend({
  ttl: ResourceInput.shape.accessTokenTtl,
  sensitive: ResourceInput.shape.sensitiveScopes,
});
/** A client entry: ClientInput with `id` required (its identity across applies). */
export const FileClient = ClientInput.extend({ id: ClientId });
/** A role entry: RoleInput. */
export const FileRole = RoleInput;

/** Names an environment variable (the secret is read from it at apply time). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** An upstream provider entry: IdpInput without the secret, with `clientSecretEnv`. */
export const FileIdp = IdpInput.omit({ clientSecret: true }).extend({
  clientSecretEnv: z
    .string()
    .regex(ENV_NAME, 'must name an environment variable (letters, digits and _, not starting with a digit)')
    .optional(),
});

/** The whole file. Every list is optional; other top-level fields are refused. */
export const FileDocument = z.strictObject({
  resources: z.array(FileResource).optional(),
  clients: z.array(FileClient).optional(),
  roles: z.array(FileRole).optional(),
  idps: z.array(FileIdp).optional(),
  /** access policies (src/access/policies.ts), checked by parsePolicy */
  policies: z.array(z.record(z.string(), z.unknown())).optional(),
});
export type FileDocument = z.input<typeof FileDocument>;
export type FileResource = z.input<typeof FileResource>;
export type FileClient = z.input<typeof FileClient>;
export type FileRole = z.input<typeof FileRole>;
export type FileIdp = z.input<typeof FileIdp>;

// ------------------------------------------------------- normalised entries

/** A resource as the file wants it, every default applied. */
export interface DesiredResource {
  identifier: string;
  name: string | null;
  scopes: string[];
  ttl: number;
  signingAlg: ResourceSigningAlg;
  servedBy: string[];
  requireRoles: boolean;
  /** the scopes marked sensitive (`sensitive` in the file) */
  sensitive: string[];
}

/** A client as the file wants it, every default applied. */
export interface DesiredClient extends ClientSettings {
  id: string;
}

export interface DesiredRole {
  name: string;
  resource: string;
  scopes: string[];
}

/** An upstream provider as the file wants it (scopes normalised as the store does). */
export interface DesiredIdp {
  name: string;
  issuer: string;
  clientId: string;
  scopes: string[];
  domains: string[];
  disabled: boolean;
  /** the environment variable holding the client secret */
  clientSecretEnv?: string;
}

/** Where an entry is in the file: for error messages. */
export interface EntryRef {
  kind: Kind;
  index: number;
  /** the entry's identifier, when it has a readable one */
  id?: string;
}

export interface Entry<T> {
  ref: EntryRef;
  value: T;
}

/** A parsed, entry-by-entry valid file. */
export interface Desired {
  /** the file name as given (`stdin` for -f -), for error messages */
  source: string;
  resources: Entry<DesiredResource>[];
  clients: Entry<DesiredClient>[];
  roles: Entry<DesiredRole>[];
  idps: Entry<DesiredIdp>[];
  /** access policies: every write must keep them (src/access) */
  policies: Entry<Policy>[];
}

// ------------------------------------------------------------------- errors

/** A one-line error naming the file, the entry and the field. */
export class DeclarativeError extends GatehouseError {
  override name = 'DeclarativeError';
  readonly code = 'validation_failed';
}

/** `clients[2] (id "orders-service")` */
export function entryLabel(ref: EntryRef): string {
  const at = `${SECTION[ref.kind]}[${ref.index}]`;
  return ref.id !== undefined ? `${at} (${ID_FIELD[ref.kind]} ${JSON.stringify(ref.id)})` : at;
}

export function entryError(source: string, ref: EntryRef, field: string | undefined, reason: string): DeclarativeError {
  return new DeclarativeError(`${source}: ${entryLabel(ref)}: ${field !== undefined ? `${field}: ` : ''}${reason}`);
}

/** A store's field name → the file's (only a resource's TTL differs). */
export function fileField(kind: Kind, field: string): string {
  if (kind === 'resource' && field === 'accessTokenTtl') return 'ttl';
  if (kind === 'resource' && field === 'sensitiveScopes') return 'sensitive';
  return field;
}

/** `redirectUris[0]`, `jwks.keys[1].kty` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out;
}

/** Keys that would carry a secret (the stores' rule); an idp's clientSecretEnv only names where one is. */
const SECRET_KEY = /secret/i;
const SECRET_REFERENCE = 'clientSecretEnv';
const SECRET_REASON =
  'secrets never appear in config files: Gatehouse generates the secret of a new confidential client and apply prints it once (an idp names the environment variable holding its secret with clientSecretEnv)';

/** The path of the first key anywhere in `v` that names a secret. */
function findSecretKey(v: unknown, path: PropertyKey[] = []): PropertyKey[] | undefined {
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) {
      const found = findSecretKey(x, [...path, i]);
      if (found) return found;
    }
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      const reference = k === SECRET_REFERENCE && path[0] === SECTION.idp && path.length === 2;
      if (SECRET_KEY.test(k) && !reference) return [...path, k];
      const found = findSecretKey(x, [...path, k]);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Parses with a domain schema. The reason is the one parseWith gives (so it
 * reads as on the CLI and the admin API); the path is the full one
 * (`redirectUris[0]`, not just `redirectUris`).
 */
function parseEntry<S extends z.ZodType>(schema: S, raw: Record<string, unknown>, fail: (field: string, reason: string) => Error): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  // parseWith's order: unknown fields first, otherwise the first issue.
  const issues = [...r.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
  const issue = issues[0]!;
  const path = issue.code === 'unrecognized_keys' ? [String(issue.keys[0])] : issue.path;
  let reason = issue.message;
  try {
    parseWith(schema, raw);
  } catch (err) {
    if (err instanceof ValidationError) reason = err.reason;
  }
  throw fail(formatPath(path) || 'input', reason);
}

// ------------------------------------------------------------------ parsing

/** A client entry's settings with the defaults createClient applies. */
function clientSettings(c: z.output<typeof FileClient>): DesiredClient {
  const s = withClientDefaults(c);
  return {
    id: c.id,
    ...s,
    grants: unique(s.grants),
    redirectUris: unique(s.redirectUris),
    postLogoutRedirectUris: unique(s.postLogoutRedirectUris),
    scopes: unique(s.scopes),
    resources: unique(s.resources),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a parsed document (the result of JSON or YAML parsing) entry by
 * entry and returns the complete desired state. Throws a DeclarativeError
 * naming the file, the entry and the field.
 */
export function parseDocument(doc: unknown, source: string): Desired {
  const fileError = (msg: string) => new DeclarativeError(`${source}: ${msg}`);
  if (doc === null || doc === undefined) throw fileError('the file is empty (give resources, clients, roles and/or idps lists)');
  if (!isObject(doc)) throw fileError('must be a mapping with resources, clients, roles and/or idps lists');
  const secretAt = findSecretKey(doc);
  if (secretAt) {
    const [section, index, ...rest] = secretAt;
    const kind = (Object.keys(SECTION) as Kind[]).find((k) => SECTION[k] === section);
    if (kind && typeof index === 'number' && rest.length > 0) {
      const list = doc[section as string] as unknown[];
      throw entryError(source, refOf(kind, index, list[index]), formatPath(rest), SECRET_REASON);
    }
    throw fileError(`${formatPath(secretAt)}: ${SECRET_REASON}`);
  }
  for (const key of Object.keys(doc)) {
    if (!(Object.values(SECTION) as string[]).includes(key)) throw fileError(`${key}: unknown field (a config file has resources, clients, roles, idps and policies lists)`);
  }
  for (const section of Object.values(SECTION)) {
    const v = doc[section];
    if (v !== undefined && v !== null && !Array.isArray(v)) throw fileError(`${section}: must be a list`);
  }
  const list = (kind: Kind): unknown[] => (doc[SECTION[kind]] as unknown[] | null | undefined) ?? [];

  const desired: Desired = { source, resources: [], clients: [], roles: [], idps: [], policies: [] };
  const each = <T>(kind: Kind, parse: (raw: Record<string, unknown>, fail: (field: string | undefined, reason: string) => Error) => T, out: Entry<T>[]) => {
    const seen = new Map<string, number>();
    for (const [index, raw] of list(kind).entries()) {
      const ref = refOf(kind, index, raw);
      const fail = (field: string | undefined, reason: string) => entryError(source, ref, field, reason);
      if (!isObject(raw)) throw fail(undefined, 'must be a mapping of fields');
      const value = parse(raw, fail);
      const id = String((value as Record<string, unknown>)[ID_FIELD[kind]]);
      const before = seen.get(id);
      if (before !== undefined) throw fail(ID_FIELD[kind], `${JSON.stringify(id)} is also declared by ${SECTION[kind]}[${before}]`);
      seen.set(id, index);
      out.push({ ref, value });
    }
  };

  each<DesiredResource>(
    'resource',
    (raw, fail) => {
      const r = parseEntry(FileResource, raw, fail);
      return {
        identifier: r.identifier,
        name: r.name ?? null,
        scopes: unique(r.scopes),
        ttl: r.ttl,
        signingAlg: r.signingAlg,
        servedBy: unique(r.servedBy),
        requireRoles: r.requireRoles,
        sensitive: unique(r.sensitive),
      };
    },
    desired.resources,
  );
  each<DesiredClient>(
    'client',
    (raw, fail) => {
      const c = clientSettings(parseEntry(FileClient, raw, fail));
      try {
        checkClientSettings(c);
      } catch (err) {
        if (err instanceof ValidationError) throw fail(err.field, err.reason);
        throw err;
      }
      return c;
    },
    desired.clients,
  );
  each<DesiredRole>(
    'role',
    (raw, fail) => {
      const r = parseEntry(FileRole, raw, fail);
      return { name: r.name, resource: r.resource, scopes: unique(r.scopes) };
    },
    desired.roles,
  );
  each<DesiredIdp>(
    'idp',
    (raw, fail) => {
      const r = parseEntry(FileIdp, raw, fail);
      return {
        name: r.name,
        issuer: r.issuer,
        clientId: r.clientId,
        scopes: normalizeScopes(r.scopes),
        domains: unique(r.domains ?? []),
        disabled: r.disabled ?? false,
        ...(r.clientSecretEnv !== undefined && { clientSecretEnv: r.clientSecretEnv }),
      };
    },
    desired.idps,
  );
  each<Policy>(
    'policy',
    (raw, fail) => {
      try {
        return parsePolicy(raw);
      } catch (err) {
        if (err instanceof ValidationError) throw fail(err.field, err.reason);
        throw err;
      }
    },
    desired.policies,
  );
  return desired;
}

function refOf(kind: Kind, index: number, raw: unknown): EntryRef {
  const id = isObject(raw) ? raw[ID_FIELD[kind]] : undefined;
  return { kind, index, ...(typeof id === 'string' && id.length <= 200 && { id }) };
}
