// Roles grant scopes on one API resource to the accounts that hold them. For
// a resource with requireRoles, a person's access token carries only the
// scopes their roles on it grant (see allowance.ts).
//
// Accounts belong to src/accounts; this file touches only the roles table and
// the account_roles join table. Writes announce ('role', name); a change of
// an account's roles also announces ('account', accountId).
import { z } from 'zod';
import { publishChange } from '../db/changes.ts';
import { ConflictError, NotFoundError, ValidationError } from '../kernel/errors.ts';
import { inTransaction, isForeignKeyViolation, isUniqueViolation, type DbOrTx } from '../kernel/tx.ts';
import { pageLimit, toPage, type Page, type PageRequest } from '../kernel/pagination.ts';
import { ScopeToken, assertPlainInput, checkResourceIdentifier, checked, parseWith, unique } from '../kernel/validation.ts';

export const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/**
 * The built-in role: scope gatehouse:admin on the admin API, present from the
 * first start (store.ts ensureBuiltInResources). It cannot be created,
 * changed or deleted through the stores; export and apply --prune leave it alone.
 */
export const ADMIN_ROLE = 'gatehouse-admin';

const builtIn = (name: string) => name === ADMIN_ROLE;
const builtInConflict = (name: string) => new ConflictError(`role '${name}' is built in and cannot be changed or deleted`);

const field = {
  name: checked((v) => (ROLE_NAME.test(v) ? undefined : `'${v}' is not a valid role name (1-64 letters, digits, . _ : -)`), 64),
  resource: checked(checkResourceIdentifier),
  scopes: z.array(ScopeToken).min(1, 'needs at least one scope').max(500, 'at most 500 scopes'),
};

export const RoleInput = z.strictObject({ name: field.name, resource: field.resource, scopes: field.scopes });
export type RoleInput = z.input<typeof RoleInput>;

export const RolePatch = z.strictObject({ name: field.name.optional(), resource: field.resource.optional(), scopes: field.scopes.optional() });
export type RolePatch = z.input<typeof RolePatch>;

/** What a role grants: used by the token path and allowance.ts. */
export interface RoleGrant {
  name: string;
  resource: string;
  scopes: string[];
}

export interface RoleView extends RoleGrant {
  /** how many accounts hold the role */
  accountCount: number;
  /** the built-in gatehouse-admin role */
  builtIn: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface RoleRow {
  name: string;
  resource: string;
  scopes: string[];
  createdAt: Date;
  updatedAt: Date;
  _count: { accounts: number };
}

const withCount = { _count: { select: { accounts: true } } } as const;

function toView(row: RoleRow): RoleView {
  return {
    name: row.name,
    resource: row.resource,
    scopes: row.scopes,
    accountCount: row._count.accounts,
    builtIn: builtIn(row.name),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The resource must exist and offer every scope. */
async function assertGrantable(db: DbOrTx, resource: string, scopes: readonly string[]): Promise<void> {
  const r = await db.resource.findUnique({ where: { identifier: resource }, select: { scopes: true } });
  if (!r) throw new ValidationError('resource', `unknown resource '${resource}'`);
  const offered = new Set(r.scopes);
  const missing = scopes.find((s) => !offered.has(s));
  if (missing) throw new ValidationError('scopes', `'${missing}' is not a scope of ${resource} (it offers: ${r.scopes.join(' ')})`);
}

export async function createRole(db: DbOrTx, input: RoleInput): Promise<RoleView> {
  assertPlainInput(input);
  const r = parseWith(RoleInput, input);
  if (builtIn(r.name)) throw new ValidationError('name', `'${r.name}' is the name of the built-in role`);
  const scopes = unique(r.scopes);
  return inTransaction(db, async (tx) => {
    if (await tx.role.findUnique({ where: { name: r.name }, select: { id: true } })) throw new ConflictError(`role '${r.name}' already exists`);
    await assertGrantable(tx, r.resource, scopes);
    try {
      const row = await tx.role.create({ data: { name: r.name, resource: r.resource, scopes }, include: withCount });
      await publishChange(tx, 'role', r.name);
      return toView(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`role '${r.name}' already exists`);
      throw err;
    }
  });
}

/** Changes a role's resource and/or scopes (a list replaces the stored list). */
export async function updateRole(db: DbOrTx, name: string, patch: RolePatch): Promise<RoleView> {
  assertPlainInput(patch);
  const p = parseWith(RolePatch, patch);
  if (p.name !== undefined && p.name !== name) throw new ValidationError('name', 'cannot be changed');
  return inTransaction(db, async (tx) => {
    const row = await tx.role.findUnique({ where: { name } });
    if (!row) throw new NotFoundError('role', name);
    if (builtIn(name)) throw builtInConflict(name);
    const resource = p.resource ?? row.resource;
    const scopes = p.scopes ? unique(p.scopes) : row.scopes;
    await assertGrantable(tx, resource, scopes);
    const updated = await tx.role.update({ where: { name }, data: { resource, scopes }, include: withCount });
    await publishChange(tx, 'role', name);
    return toView(updated);
  });
}

/** Deletes a role; the accounts that held it lose it. The built-in role cannot be deleted. */
export async function deleteRole(db: DbOrTx, name: string): Promise<void> {
  if (builtIn(name)) throw builtInConflict(name);
  await inTransaction(db, async (tx) => {
    const holders = await tx.accountRole.findMany({ where: { role: { name } }, select: { accountId: true } });
    const res = await tx.role.deleteMany({ where: { name } });
    if (res.count === 0) throw new NotFoundError('role', name);
    await publishChange(tx, 'role', name);
    for (const h of holders) await publishChange(tx, 'account', h.accountId);
  });
}

export async function getRole(db: DbOrTx, name: string): Promise<RoleView> {
  const row = await db.role.findUnique({ where: { name }, include: withCount });
  if (!row) throw new NotFoundError('role', name);
  return toView(row);
}

/** How many roles there are (the console's overview). */
export async function countRoles(db: DbOrTx): Promise<number> {
  return db.role.count();
}

/** Every role (optionally those of one resource), by name. */
export async function listRoles(db: DbOrTx, opts: { resource?: string } = {}): Promise<RoleView[]> {
  const rows = await db.role.findMany({
    where: opts.resource !== undefined ? { resource: opts.resource } : undefined,
    orderBy: { name: 'asc' },
    include: withCount,
  });
  return rows.map(toView);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Gives the account the role. Returns false if it already had it. NotFoundError for an unknown account or role. */
export async function addRoleToAccount(db: DbOrTx, accountId: string, roleName: string): Promise<boolean> {
  if (!UUID.test(accountId)) throw new NotFoundError('account', accountId);
  return inTransaction(db, async (tx) => {
    const role = await tx.role.findUnique({ where: { name: roleName }, select: { id: true } });
    if (!role) throw new NotFoundError('role', roleName);
    try {
      const res = await tx.accountRole.createMany({ data: [{ accountId, roleId: role.id }], skipDuplicates: true });
      if (res.count === 0) return false;
    } catch (err) {
      // accounts belong to src/accounts: their existence is checked by the foreign key
      if (isForeignKeyViolation(err)) throw new NotFoundError('account', accountId);
      throw err;
    }
    await publishChange(tx, 'role', roleName);
    await publishChange(tx, 'account', accountId);
    return true;
  });
}

/** Takes the role from the account. Returns false if it did not have it. NotFoundError for an unknown role. */
export async function removeRoleFromAccount(db: DbOrTx, accountId: string, roleName: string): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const role = await tx.role.findUnique({ where: { name: roleName }, select: { id: true } });
    if (!role) throw new NotFoundError('role', roleName);
    if (!UUID.test(accountId)) return false;
    const res = await tx.accountRole.deleteMany({ where: { accountId, roleId: role.id } });
    if (res.count === 0) return false;
    await publishChange(tx, 'role', roleName);
    await publishChange(tx, 'account', accountId);
    return true;
  });
}

/** The ids of the accounts holding a role, one page at a time (by account id). NotFoundError for an unknown role. */
export async function roleMemberIds(db: DbOrTx, roleName: string, opts: PageRequest = {}): Promise<Page<string>> {
  const limit = pageLimit(opts.limit);
  const role = await db.role.findUnique({ where: { name: roleName }, select: { id: true } });
  if (!role) throw new NotFoundError('role', roleName);
  const cursor = opts.cursor !== undefined && UUID.test(opts.cursor) ? opts.cursor : undefined;
  if (opts.cursor !== undefined && cursor === undefined) return { items: [], nextCursor: null };
  const rows = await db.accountRole.findMany({
    where: { roleId: role.id, ...(cursor !== undefined && { accountId: { gt: cursor } }) },
    orderBy: { accountId: 'asc' },
    take: limit + 1,
    select: { accountId: true },
  });
  return toPage(rows.map((r) => r.accountId), limit, (id) => id);
}

/** The account's roles (optionally only those on one resource), by name. */
export async function rolesForAccount(db: DbOrTx, accountId: string, resource?: string): Promise<RoleGrant[]> {
  if (!UUID.test(accountId)) return [];
  const rows = await db.accountRole.findMany({
    where: { accountId, ...(resource !== undefined && { role: { resource } }) },
    select: { role: { select: { name: true, resource: true, scopes: true } } },
  });
  return rows.map((r) => r.role).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
