// Write functions of the access policies: what `apply` (and tests) call to
// store, change and delete policies. Each records its audit event and ends
// with the write guard, in one transaction: a policy the current registry
// already breaks is refused (PolicyViolationError) like any other change.
import { auditChange } from '../audit/audit.ts';
import type { Actor, WriteOptions } from '../kernel/actor.ts';
import { guardWrite } from '../kernel/guard.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import type { Policy } from './policies.ts';
import { deletePolicy, getPolicy, putPolicy } from './store.ts';

const via = (opts: WriteOptions) => (opts.via !== undefined ? { via: opts.via } : {});
const target = (name: string) => ({ type: 'policy', id: name });

/** Creates or replaces a policy. */
export async function putPolicyAs(db: DbOrTx, actor: Actor, input: unknown, opts: WriteOptions = {}): Promise<Policy> {
  return inTransaction(db, async (tx) => {
    const before = await tx.accessPolicy.findUnique({ where: { name: String((input as { name?: unknown })?.name ?? '') } });
    const after = await putPolicy(tx, input);
    await auditChange(tx, actor, before ? 'policy.update' : 'policy.create', target(after.name), {
      ...via(opts),
      ...(before && { before: before.spec }),
      after,
    });
    await guardWrite(tx);
    return after;
  });
}

/** Deletes a policy (taking a rule away never breaks one: no guard needed). */
export async function deletePolicyAs(db: DbOrTx, actor: Actor, name: string, opts: WriteOptions = {}): Promise<void> {
  await inTransaction(db, async (tx) => {
    const before = await getPolicy(tx, name);
    await deletePolicy(tx, name);
    await auditChange(tx, actor, 'policy.delete', target(name), { ...via(opts), before });
  });
}
