// Runs store functions in a transaction: their own, or the caller's when they
// are handed a transaction client (so `gatehouse apply` can compose several
// writes into one transaction).
import type { Db } from '../db/client.ts';
import type { Prisma } from '../generated/prisma/client.ts';

export type Tx = Prisma.TransactionClient;
/** A Prisma client or an open interactive transaction. */
export type DbOrTx = Db | Tx;

export async function inTransaction<T>(db: DbOrTx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if ('$transaction' in db && typeof db.$transaction === 'function') return db.$transaction(fn);
  return fn(db);
}

/** Prisma's "unique constraint failed" (a concurrent insert of the same key). */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'P2002';
}

/** Prisma's "foreign key constraint failed". */
export function isForeignKeyViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'P2003';
}
