// The links between clients and API resources: a client's `resources` (what
// it may get tokens for) and a resource's `servedBy` (the clients that are its
// services). Both sides are kept consistent here, in one place: existence
// checks when a link is written, and the cascade when either end is deleted
// (like an ON DELETE CASCADE, which PostgreSQL arrays cannot declare). The
// client store imports this file; nothing here imports the client domain, so
// the dependency runs one way (clients → resources).
import { publishChange } from '../db/changes.ts';
import type { DbOrTx } from '../kernel/tx.ts';

/** Those of `identifiers` that name no resource. */
export async function missingResources(db: DbOrTx, identifiers: readonly string[]): Promise<string[]> {
  if (identifiers.length === 0) return [];
  const found = await db.resource.findMany({ where: { identifier: { in: [...identifiers] } }, select: { identifier: true } });
  const have = new Set(found.map((r) => r.identifier));
  return identifiers.filter((id) => !have.has(id));
}

/**
 * Removes a deleted client from every resource's servedBy list and announces
 * each changed resource. Returns their identifiers. Run inside the deleting
 * transaction.
 */
export async function detachServerFromResources(db: DbOrTx, clientId: string): Promise<string[]> {
  const rows = await db.$queryRaw<{ identifier: string }[]>`
    UPDATE resources
       SET served_by = array_remove(served_by, ${clientId}), version = version + 1, updated_at = now()
     WHERE ${clientId} = ANY(served_by)
    RETURNING identifier`;
  for (const { identifier } of rows) await publishChange(db, 'resource', identifier);
  return rows.map((r) => r.identifier);
}

/** Those of `ids` that name no client. */
export async function missingClients(db: DbOrTx, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const found = await db.client.findMany({ where: { id: { in: [...ids] } }, select: { id: true } });
  const have = new Set(found.map((r) => r.id));
  return ids.filter((id) => !have.has(id));
}

/**
 * Removes a deleted resource from every client's resource list (the client
 * may no longer get tokens for it) and announces each changed client.
 * Returns their ids. Run inside the deleting transaction.
 */
export async function detachResourceFromClients(db: DbOrTx, identifier: string): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    UPDATE clients
       SET resources = array_remove(resources, ${identifier}), version = version + 1, updated_at = now()
     WHERE ${identifier} = ANY(resources)
    RETURNING id`;
  for (const { id } of rows) await publishChange(db, 'client', id);
  return rows.map((r) => r.id);
}
