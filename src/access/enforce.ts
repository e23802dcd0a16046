// The policy guard: at the end of every write transaction of the registry
// (src/kernel/guard.ts), the stored policies are evaluated on the state the
// transaction is about to commit; any violation throws PolicyViolationError
// and the transaction rolls back. Installed once by the composition
// (src/app.ts, src/cli/main.ts) and by apply (src/declarative/apply.ts).
//
// Cost: one query when no policy is stored; otherwise the registry is read in
// the transaction and the model built in memory (bench/access-map.ts).
import { PolicyViolationError } from '../kernel/errors.ts';
import { setWriteGuard } from '../kernel/guard.ts';
import type { DbOrTx, Tx } from '../kernel/tx.ts';
import { loadRegistry } from './load.ts';
import { buildModel } from './model.ts';
import { evaluatePolicies, type Policy, type Violation } from './policies.ts';
import { hasPolicies, listPolicies } from './store.ts';

/** The violations of `policies` (default: the stored ones) in the state `db` sees. */
export async function violationsIn(db: DbOrTx, policies?: readonly Policy[]): Promise<Violation[]> {
  const list = policies ?? (await listPolicies(db));
  if (list.length === 0) return [];
  return evaluatePolicies(buildModel(await loadRegistry(db)), list);
}

/** Throws PolicyViolationError if the transaction's state breaks a stored policy. */
export async function checkPolicies(tx: Tx): Promise<void> {
  if (!(await hasPolicies(tx))) return;
  const violations = await violationsIn(tx);
  if (violations.length > 0) throw new PolicyViolationError(violations);
}

/** Installs the policy guard on every registry write (idempotent). */
export function installPolicyGuard(): void {
  setWriteGuard(checkPolicies);
}
