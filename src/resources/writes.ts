// Write functions of the resource catalog and the roles: what the CLI, the
// admin API and `apply` call to change API resources, roles and role
// assignments, and nothing else does. Each takes the transaction (or opens
// one) and the actor, and does the change (store.ts / roles.ts, which also
// announce it with publishChange), its audit event and the actor's authority
// check together, in that one transaction.
//
// Authority (authority.ts): only an actor holding gatehouse:admin changes the
// built-in admin API resource; a role, a role change or a role assignment
// that gives an admin-API permission needs an actor holding it.
//
// Access policies (src/access): the last step of a create or update is
// guardWrite(tx) (src/kernel/guard.ts), which evaluates the stored policies on
// the transaction's state; a violation rolls the whole change back.
import { auditChange, changedFields } from '../audit/audit.ts';
import { FULL_ADMIN_SCOPE, assertHolds, type Actor, type WriteOptions } from '../kernel/actor.ts';
import { guardWrite } from '../kernel/guard.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import { adminScopesOfRoles } from './authority.ts';
import {
  addRoleToAccount,
  createRole,
  deleteRole,
  getRole,
  removeRoleFromAccount,
  updateRole,
  type RoleInput,
  type RolePatch,
  type RoleView,
} from './roles.ts';
import {
  createResource,
  deleteResource,
  getResource,
  updateResource,
  type ResourceInput,
  type ResourcePatch,
  type ResourceView,
  type ResourceWriteOptions,
} from './store.ts';

const via = (opts: WriteOptions) => (opts.via !== undefined ? { via: opts.via } : {});
const asRecord = (v: ResourceView | RoleView) => v as unknown as Record<string, unknown>;

type Versioned = WriteOptions & { expectedVersion?: number };

// ------------------------------------------------------------------ resources

export async function createResourceAs(db: DbOrTx, actor: Actor, input: ResourceInput, opts: WriteOptions & ResourceWriteOptions = {}): Promise<ResourceView> {
  return inTransaction(db, async (tx) => {
    // New resources cannot be built in (the urn:gatehouse: namespace is reserved): they carry no admin-API permission.
    const created = await createResource(tx, input, opts);
    await auditChange(tx, actor, 'resource.create', { type: 'resource', id: created.identifier }, { ...via(opts), after: created });
    await guardWrite(tx);
    return created;
  });
}

/** Changes a resource; the built-in admin API resource only for an actor holding gatehouse:admin. */
export async function updateResourceAs(
  db: DbOrTx,
  actor: Actor,
  identifier: string,
  patch: ResourcePatch,
  opts: Versioned & ResourceWriteOptions = {},
): Promise<ResourceView> {
  return inTransaction(db, async (tx) => {
    const before = await getResource(tx, identifier);
    if (before.builtIn) assertHolds(actor, [FULL_ADMIN_SCOPE]);
    const after = await updateResource(tx, identifier, patch, { ...opts, expectedVersion: opts.expectedVersion ?? before.version });
    const changes = changedFields(asRecord(before), asRecord(after));
    await auditChange(tx, actor, 'resource.update', { type: 'resource', id: identifier }, { ...via(opts), before, after, changes });
    await guardWrite(tx);
    return after;
  });
}

/** Deletes a resource (never the built-in one: store.ts refuses it for everyone). */
export async function deleteResourceAs(db: DbOrTx, actor: Actor, identifier: string, opts: Versioned = {}): Promise<void> {
  await inTransaction(db, async (tx) => {
    const before = await getResource(tx, identifier);
    await deleteResource(tx, identifier, { expectedVersion: opts.expectedVersion ?? before.version });
    await auditChange(tx, actor, 'resource.delete', { type: 'resource', id: identifier }, { ...via(opts), before });
  });
}

// ---------------------------------------------------------------------- roles

/** Creates a role; one on the admin API needs an actor holding every scope it carries. */
export async function createRoleAs(db: DbOrTx, actor: Actor, input: RoleInput, opts: WriteOptions = {}): Promise<RoleView> {
  return inTransaction(db, async (tx) => {
    const created = await createRole(tx, input);
    assertHolds(actor, adminScopesOfRoles([created]));
    await auditChange(tx, actor, 'role.create', { type: 'role', id: created.name }, { ...via(opts), after: created });
    await guardWrite(tx);
    return created;
  });
}

/** Changes a role; the admin-API permissions it gains need an actor holding them. */
export async function updateRoleAs(db: DbOrTx, actor: Actor, name: string, patch: RolePatch, opts: WriteOptions = {}): Promise<RoleView> {
  return inTransaction(db, async (tx) => {
    const before = await getRole(tx, name);
    const after = await updateRole(tx, name, patch);
    const had = new Set(adminScopesOfRoles([before]));
    assertHolds(actor, adminScopesOfRoles([after]).filter((s) => !had.has(s)));
    const changes = changedFields(asRecord(before), asRecord(after));
    await auditChange(tx, actor, 'role.update', { type: 'role', id: name }, { ...via(opts), before, after, changes });
    await guardWrite(tx);
    return after;
  });
}

/** Deletes a role (never the built-in one): its holders lose it. */
export async function deleteRoleAs(db: DbOrTx, actor: Actor, name: string, opts: WriteOptions = {}): Promise<void> {
  await inTransaction(db, async (tx) => {
    const before = await getRole(tx, name);
    await deleteRole(tx, name);
    await auditChange(tx, actor, 'role.delete', { type: 'role', id: name }, { ...via(opts), before });
  });
}

/**
 * Gives a person a role; a role carrying admin-API permissions needs an actor
 * holding them. Returns false (and records nothing) if they held it already.
 */
export async function addRoleToAccountAs(db: DbOrTx, actor: Actor, accountId: string, roleName: string): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const role = await getRole(tx, roleName);
    assertHolds(actor, adminScopesOfRoles([role]));
    const added = await addRoleToAccount(tx, accountId, roleName);
    if (added) await auditChange(tx, actor, 'user.role_add', { type: 'user', id: accountId }, { role: roleName });
    return added;
  });
}

/** Takes a role from a person. Returns false (and records nothing) if they did not hold it. */
export async function removeRoleFromAccountAs(db: DbOrTx, actor: Actor, accountId: string, roleName: string): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const removed = await removeRoleFromAccount(tx, accountId, roleName);
    if (removed) await auditChange(tx, actor, 'user.role_remove', { type: 'user', id: accountId }, { role: roleName });
    return removed;
  });
}
