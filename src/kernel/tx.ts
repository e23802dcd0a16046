// Transactions: store and write functions run in the caller's transaction
// when handed one (so a change, its audit event and its change notice commit
// together, and `gatehouse apply` composes many writes into one), or open
// their own.
import type { Db } from '../db/client.ts';
import type { Prisma } from '../generated/prisma/client.ts';

export type Tx = Prisma.TransactionClient;
/** A Prisma client or an open interactive transaction. */
export type DbOrTx = Db | Tx;

/** Options for a transaction this opens (ignored when `db` is already one). */
export interface TxOptions {
  maxWait?: number;
  timeout?: number;
}

export async function inTransaction<T>(db: DbOrTx, fn: (tx: Tx) => Promise<T>, options?: TxOptions): Promise<T> {
  if ('$transaction' in db && typeof db.$transaction === 'function') return db.$transaction(fn, options);
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
