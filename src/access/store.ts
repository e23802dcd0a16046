// The access_policies table: policies as written in apply files (src/access/policies.ts).
// Owned by src/access; written only through writes.ts.
import type { Prisma } from '../generated/prisma/client.ts';
import { NotFoundError } from '../kernel/errors.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { parsePolicy, type Policy } from './policies.ts';

export interface PolicyView {
  policy: Policy;
  createdAt: Date;
  updatedAt: Date;
}

function toPolicy(spec: unknown): Policy {
  return parsePolicy(spec);
}

/** Every stored policy, by name. */
export async function listPolicies(db: DbOrTx): Promise<Policy[]> {
  const rows = await db.accessPolicy.findMany({ orderBy: { name: 'asc' } });
  return rows.map((r) => toPolicy(r.spec));
}

export async function getPolicy(db: DbOrTx, name: string): Promise<Policy> {
  const row = await db.accessPolicy.findUnique({ where: { name } });
  if (!row) throw new NotFoundError('policy', name);
  return toPolicy(row.spec);
}

/** Creates or replaces a policy (validated first). */
export async function putPolicy(db: DbOrTx, input: unknown): Promise<Policy> {
  const policy = parsePolicy(input);
  const spec = policy as unknown as Prisma.InputJsonValue;
  await db.accessPolicy.upsert({
    where: { name: policy.name },
    create: { name: policy.name, kind: policy.kind, spec },
    update: { kind: policy.kind, spec },
  });
  return policy;
}

export async function deletePolicy(db: DbOrTx, name: string): Promise<void> {
  const res = await db.accessPolicy.deleteMany({ where: { name } });
  if (res.count === 0) throw new NotFoundError('policy', name);
}

/** Whether any policy is stored (the guard's cheap first question). */
export async function hasPolicies(db: DbOrTx): Promise<boolean> {
  return (await db.accessPolicy.findFirst({ select: { name: true } })) !== null;
}
