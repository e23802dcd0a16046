// API resources (RFC 8707): the APIs access tokens are minted for. The
// identifier is the tokens' `aud`; `scopes` are what the API offers;
// `servedBy` names the clients that are the API's own services (they may
// introspect its tokens and exchange them for downstream calls).
//
// Every write runs in a transaction (the caller's, when handed one) and
// announces itself with publishChange('resource', identifier), so every
// instance's catalog drops its cached copy on commit.
import { z } from 'zod';
import { publishChange } from '../db/changes.ts';
import type { Resource } from '../generated/prisma/client.ts';
import { FULL_ADMIN_SCOPE } from '../kernel/actor.ts';
import { ConflictError, NotFoundError, ValidationError, VersionMismatchError } from '../kernel/errors.ts';
import { pageLimit, toPage, type Page, type PageRequest } from '../kernel/pagination.ts';
import { inTransaction, isUniqueViolation, type DbOrTx } from '../kernel/tx.ts';
import { SIGNING_ALGS, type SigningAlg } from '../keys/index.ts';
import { detachResourceFromClients, missingClients } from './refs.ts';
import { ADMIN_ROLE } from './roles.ts';
import {
  ClientId,
  ScopeToken,
  assertPlainInput,
  checkResourceIdentifier,
  checked,
  parseWith,
  seconds,
  unique,
} from '../kernel/validation.ts';

export const ADMIN_RESOURCE = 'urn:gatehouse:admin';

/** Scopes of the built-in admin API: `gatehouse:admin` (everything) and narrower ones. */
export const ADMIN_SCOPES: readonly string[] = Object.freeze([
  'gatehouse:admin',
  'gatehouse:clients:read',
  'gatehouse:clients:write',
  'gatehouse:users:read',
  'gatehouse:users:write',
  'gatehouse:resources:read',
  'gatehouse:resources:write',
  'gatehouse:keys:read',
  'gatehouse:keys:write',
  'gatehouse:audit:read',
]);

/** Identifiers in this namespace are reserved for built-in resources. */
const RESERVED_PREFIX = 'urn:gatehouse:';

// A resource's tokens are signed with one of the algorithms Gatehouse has keys for
// (src/keys); re-exported for the modules that ask the catalog.
export { SIGNING_ALGS };
export type ResourceSigningAlg = SigningAlg;

export const RESOURCE_TTL = { min: 30, max: 86_400, default: 300 } as const;

const field = {
  identifier: checked(checkResourceIdentifier),
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').nullable(),
  scopes: z.array(ScopeToken).min(1, 'needs at least one scope').max(500, 'at most 500 scopes'),
  accessTokenTtl: seconds(RESOURCE_TTL.min, RESOURCE_TTL.max),
  signingAlg: z.enum(SIGNING_ALGS),
  servedBy: z.array(ClientId).max(100, 'at most 100 clients'),
  requireRoles: z.boolean({ error: 'must be true or false' }),
  sensitiveScopes: z.array(ScopeToken).max(500, 'at most 500 scopes'),
};

/** A new resource: the fields of the apply file and of `resources create`. */
export const ResourceInput = z.strictObject({
  identifier: field.identifier,
  name: field.name.optional(),
  scopes: field.scopes,
  accessTokenTtl: field.accessTokenTtl.default(RESOURCE_TTL.default),
  signingAlg: field.signingAlg.default('RS256'),
  servedBy: field.servedBy.default([]),
  requireRoles: field.requireRoles.default(false),
  sensitiveScopes: field.sensitiveScopes.default([]),
});
export type ResourceInput = z.input<typeof ResourceInput>;

/** Changes to a resource: any subset of the fields (a list replaces the stored list; name null clears it). */
export const ResourcePatch = z.strictObject({
  identifier: field.identifier.optional(),
  name: field.name.optional(),
  scopes: field.scopes.optional(),
  accessTokenTtl: field.accessTokenTtl.optional(),
  signingAlg: field.signingAlg.optional(),
  servedBy: field.servedBy.optional(),
  requireRoles: field.requireRoles.optional(),
  sensitiveScopes: field.sensitiveScopes.optional(),
});
export type ResourcePatch = z.input<typeof ResourcePatch>;

/** A resource as stored; what the catalog caches and the CLI / admin API show. */
export interface ResourceRecord {
  identifier: string;
  name: string | null;
  scopes: string[];
  accessTokenTtl: number;
  signingAlg: ResourceSigningAlg;
  servedBy: string[];
  requireRoles: boolean;
  /** scopes marked sensitive for the access map (a subset of `scopes`) */
  sensitiveScopes: string[];
  builtIn: boolean;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}
/** Resources hold no secrets: the view is the record. */
export type ResourceView = ResourceRecord;

export function toResourceRecord(row: Resource): ResourceRecord {
  return {
    identifier: row.identifier,
    name: row.name,
    scopes: row.scopes,
    accessTokenTtl: row.accessTokenTtl,
    signingAlg: (SIGNING_ALGS as readonly string[]).includes(row.signingAlg) ? (row.signingAlg as ResourceSigningAlg) : 'RS256',
    servedBy: row.servedBy,
    requireRoles: row.requireRoles,
    sensitiveScopes: row.sensitiveScopes,
    builtIn: row.builtIn,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    version: row.version,
  };
}

/** Options of the resource writes. */
export interface ResourceWriteOptions {
  /**
   * Clients that the same transaction creates later (apply creates resources
   * before the clients that serve them): servedBy may name them already.
   */
  pendingServers?: ReadonlySet<string>;
}

async function assertServersExist(db: DbOrTx, servedBy: readonly string[], opts: ResourceWriteOptions): Promise<void> {
  const missing = await missingClients(db, servedBy.filter((id) => !opts.pendingServers?.has(id)));
  if (missing.length > 0) throw new ValidationError('servedBy', `unknown client '${missing[0]}'`);
}

/** Creates a resource. ValidationError for bad input, ConflictError if the identifier is taken. */
export async function createResource(db: DbOrTx, input: ResourceInput, opts: ResourceWriteOptions = {}): Promise<ResourceView> {
  assertPlainInput(input);
  const r = parseWith(ResourceInput, input);
  if (r.identifier.toLowerCase().startsWith(RESERVED_PREFIX)) {
    throw new ValidationError('identifier', `the ${RESERVED_PREFIX} namespace is reserved for built-in resources`);
  }
  const data = { ...r, name: r.name ?? null, scopes: unique(r.scopes), servedBy: unique(r.servedBy), sensitiveScopes: unique(r.sensitiveScopes) };
  assertSensitiveOffered(data.sensitiveScopes, data.scopes);
  return inTransaction(db, async (tx) => {
    if (await tx.resource.findUnique({ where: { identifier: data.identifier }, select: { identifier: true } })) {
      throw new ConflictError(`resource '${data.identifier}' already exists`);
    }
    await assertServersExist(tx, data.servedBy, opts);
    try {
      const row = await tx.resource.create({ data });
      await publishChange(tx, 'resource', row.identifier);
      return toResourceRecord(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`resource '${data.identifier}' already exists`);
      throw err;
    }
  });
}

/** Only these may change on a built-in resource. */
const BUILT_IN_MUTABLE = new Set(['name', 'accessTokenTtl', 'signingAlg', 'sensitiveScopes']);

/** A sensitive scope must be one the resource offers. */
function assertSensitiveOffered(sensitive: readonly string[], scopes: readonly string[]): void {
  const missing = sensitive.find((s) => !scopes.includes(s));
  if (missing !== undefined) throw new ValidationError('sensitiveScopes', `'${missing}' is not a scope of this resource (it offers: ${scopes.join(' ')})`);
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Changes a resource. A list replaces the stored list. The version goes up by
 * one; with `expectedVersion`, a resource at another version is a ConflictError
 * (optimistic concurrency: the admin API's If-Match).
 */
export async function updateResource(
  db: DbOrTx,
  identifier: string,
  patch: ResourcePatch,
  opts: ResourceWriteOptions & { expectedVersion?: number } = {},
): Promise<ResourceView> {
  assertPlainInput(patch);
  const p = parseWith(ResourcePatch, patch);
  if (p.identifier !== undefined && p.identifier !== identifier) {
    throw new ValidationError('identifier', 'cannot be changed (create a new resource instead)');
  }
  return inTransaction(db, async (tx) => {
    const row = await tx.resource.findUnique({ where: { identifier } });
    if (!row) throw new NotFoundError('resource', identifier);
    if (opts.expectedVersion !== undefined && row.version !== opts.expectedVersion) {
      throw new VersionMismatchError(row.version, `resource '${identifier}' is at version ${row.version}, not ${opts.expectedVersion}`);
    }
    const current = toResourceRecord(row);
    const changes = {
      ...(p.name !== undefined && { name: p.name }),
      ...(p.scopes !== undefined && { scopes: unique(p.scopes) }),
      ...(p.accessTokenTtl !== undefined && { accessTokenTtl: p.accessTokenTtl }),
      ...(p.signingAlg !== undefined && { signingAlg: p.signingAlg }),
      ...(p.servedBy !== undefined && { servedBy: unique(p.servedBy) }),
      ...(p.requireRoles !== undefined && { requireRoles: p.requireRoles }),
      ...(p.sensitiveScopes !== undefined && { sensitiveScopes: unique(p.sensitiveScopes) }),
    };
    assertSensitiveOffered(changes.sensitiveScopes ?? current.sensitiveScopes, changes.scopes ?? current.scopes);
    if (current.builtIn) {
      for (const [key, value] of Object.entries(changes)) {
        if (!BUILT_IN_MUTABLE.has(key) && !sameValue(value, current[key as keyof ResourceRecord])) {
          throw new ValidationError(key, `cannot be changed on the built-in resource ${identifier}`);
        }
      }
    }
    if (changes.servedBy) await assertServersExist(tx, changes.servedBy, opts);
    const res = await tx.resource.updateMany({
      where: { identifier, version: row.version },
      data: { ...changes, version: { increment: 1 } },
    });
    if (res.count === 0) throw new ConflictError(`resource '${identifier}' was changed concurrently; retry`);
    await publishChange(tx, 'resource', identifier);
    return toResourceRecord(await tx.resource.findUniqueOrThrow({ where: { identifier } }));
  });
}

/**
 * Deletes a resource and removes it from every client's resource list.
 * Refused (ConflictError) for built-in resources and while roles on the
 * resource exist (deleting them would silently take people's access away).
 */
export async function deleteResource(db: DbOrTx, identifier: string, opts: { expectedVersion?: number } = {}): Promise<void> {
  await inTransaction(db, async (tx) => {
    const row = await tx.resource.findUnique({ where: { identifier } });
    if (!row) throw new NotFoundError('resource', identifier);
    if (row.builtIn) throw new ConflictError(`resource '${identifier}' is built in and cannot be deleted`);
    if (opts.expectedVersion !== undefined && row.version !== opts.expectedVersion) {
      throw new VersionMismatchError(row.version, `resource '${identifier}' is at version ${row.version}, not ${opts.expectedVersion}`);
    }
    const roles = await tx.role.findMany({ where: { resource: identifier }, select: { name: true }, orderBy: { name: 'asc' } });
    if (roles.length > 0) {
      throw new ConflictError(`resource '${identifier}' still has roles: ${roles.map((r) => r.name).join(', ')} (delete them first)`);
    }
    const res = await tx.resource.deleteMany({ where: { identifier, version: row.version } });
    if (res.count === 0) throw new ConflictError(`resource '${identifier}' was changed concurrently; retry`);
    await detachResourceFromClients(tx, identifier);
    await publishChange(tx, 'resource', identifier);
  });
}

/** The resource, or NotFoundError. */
export async function getResource(db: DbOrTx, identifier: string): Promise<ResourceView> {
  const record = await getResourceRecord(db, identifier);
  if (!record) throw new NotFoundError('resource', identifier);
  return record;
}

/** The resource, or undefined (the catalog's loader). */
export async function getResourceRecord(db: DbOrTx, identifier: string): Promise<ResourceRecord | undefined> {
  const row = await db.resource.findUnique({ where: { identifier } });
  return row ? toResourceRecord(row) : undefined;
}

/** How many API resources there are, the built-in one included (the console's overview). */
export async function countResources(db: DbOrTx): Promise<number> {
  return db.resource.count();
}

/** Resources ordered by identifier, one page at a time (src/kernel/pagination.ts). */
export async function listResources(db: DbOrTx, opts: PageRequest = {}): Promise<Page<ResourceView>> {
  const limit = pageLimit(opts.limit);
  const rows = await db.resource.findMany({
    where: opts.cursor !== undefined ? { identifier: { gt: opts.cursor } } : undefined,
    orderBy: { identifier: 'asc' },
    take: limit + 1,
  });
  return toPage(rows.map(toResourceRecord), limit, (r) => r.identifier);
}

/**
 * Creates the built-in admin API resource and the built-in role on it
 * (gatehouse-admin: scope gatehouse:admin), or brings them up to date.
 * Idempotent, and safe when several instances start at once (INSERT … ON
 * CONFLICT). The resource's TTL, algorithm and name, which a holder of
 * gatehouse:admin may change, are left alone; it requires roles, so a
 * person's token for the admin API carries only what their roles on it give
 * (machine clients are unaffected: roles do not apply to them).
 * A role already named gatehouse-admin that meant something else is brought
 * to what the name means now and loses its holders: nobody reaches the admin
 * API through a role that was given to them for something else.
 * Returns whether anything was written.
 */
export async function ensureBuiltInResources(db: DbOrTx): Promise<boolean> {
  const adminRoleScopes = [FULL_ADMIN_SCOPE];
  return inTransaction(db, async (tx) => {
    const resources = await tx.$queryRaw<{ identifier: string }[]>`
      INSERT INTO resources (identifier, name, scopes, access_token_ttl, signing_alg, served_by, require_roles, built_in, updated_at)
      VALUES (${ADMIN_RESOURCE}, 'Gatehouse admin API', ${[...ADMIN_SCOPES]}::text[], ${RESOURCE_TTL.default}, 'RS256',
              '{}'::text[], true, true, now())
      ON CONFLICT (identifier) DO UPDATE
         SET scopes = EXCLUDED.scopes, built_in = true, served_by = '{}'::text[], require_roles = true,
             version = resources.version + 1, updated_at = now()
       WHERE resources.scopes IS DISTINCT FROM EXCLUDED.scopes OR NOT resources.built_in
          OR resources.served_by <> '{}'::text[] OR NOT resources.require_roles
      RETURNING identifier`;
    const cleared = await tx.$queryRaw<{ account_id: string }[]>`
      DELETE FROM account_roles WHERE role_id IN (
        SELECT id FROM roles
         WHERE name = ${ADMIN_ROLE} AND (resource <> ${ADMIN_RESOURCE} OR scopes <> ${adminRoleScopes}::text[]))
      RETURNING account_id`;
    const roles = await tx.$queryRaw<{ name: string }[]>`
      INSERT INTO roles (id, name, resource, scopes, updated_at)
      VALUES (gen_random_uuid(), ${ADMIN_ROLE}, ${ADMIN_RESOURCE}, ${adminRoleScopes}::text[], now())
      ON CONFLICT (name) DO UPDATE SET resource = EXCLUDED.resource, scopes = EXCLUDED.scopes, updated_at = now()
       WHERE roles.resource <> EXCLUDED.resource OR roles.scopes <> EXCLUDED.scopes
      RETURNING name`;
    for (const { identifier } of resources) await publishChange(tx, 'resource', identifier);
    for (const { name } of roles) await publishChange(tx, 'role', name);
    for (const { account_id } of cleared) await publishChange(tx, 'account', account_id);
    return resources.length + roles.length > 0;
  });
}
