// Write guards: checks that must hold at the end of every write transaction
// of the registry (clients, resources, roles), whichever domain wrote.
//
// The check belongs to a domain that imports the writers (src/access reads
// clients and resources to compute the access map), so the writers cannot
// import it back. Instead the writers call `guardWrite(tx)` as the last step
// of their transaction, and the composition (src/app.ts, src/cli/main.ts,
// src/declarative/apply.ts) installs the guard once with `setWriteGuard`.
//
// A caller that makes several writes in one transaction (apply) wraps them in
// `deferGuard(tx, …)`: the writes' own calls do nothing, and the guard runs
// once on the final state, so a file may reach a valid state through invalid
// intermediate ones.
import type { Tx } from './tx.ts';

export type WriteGuard = (tx: Tx) => Promise<void>;

let installed: WriteGuard | undefined;
const deferred = new WeakSet<object>();

/** Installs the guard (idempotent for the same function; the last one installed wins). */
export function setWriteGuard(guard: WriteGuard | undefined): void {
  installed = guard;
}

/** Whether a guard is installed (for tests and startup checks). */
export function writeGuardInstalled(): boolean {
  return installed !== undefined;
}

/** The last step of a write transaction: runs the guard unless a caller deferred it to the end of its own. */
export async function guardWrite(tx: Tx): Promise<void> {
  if (installed && !deferred.has(tx)) await installed(tx);
}

/** Runs `fn` with the writes' guards deferred, then the guard once. */
export async function deferGuard<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
  if (deferred.has(tx)) return fn();
  deferred.add(tx);
  let result: T;
  try {
    result = await fn();
  } finally {
    deferred.delete(tx);
  }
  await guardWrite(tx);
  return result;
}
