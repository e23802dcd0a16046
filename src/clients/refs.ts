// The two questions the resource store asks about clients, kept apart from
// store.ts so that the two stores do not import each other.
import { publishChange } from '../db/changes.ts';
import type { DbOrTx } from './tx.ts';

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
