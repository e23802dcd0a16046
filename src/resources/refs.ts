// The two questions the client store asks about resources, kept apart from
// store.ts so that the two stores do not import each other.
import { publishChange } from '../db/changes.ts';
import type { DbOrTx } from '../clients/tx.ts';

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
