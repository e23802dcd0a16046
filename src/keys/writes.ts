// The write function of the signing keys: what the CLI and the admin API call
// to rotate a key. The rotation and its audit event commit together (the key
// pair is generated before the transaction: RSA generation is slow).
import { auditChange } from '../audit/audit.ts';
import type { Actor } from '../kernel/actor.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { rotateSigningKey, type RotationResult, type SigningAlg } from './store.ts';

export async function rotateSigningKeyAs(
  db: DbOrTx,
  actor: Actor,
  kek: Buffer,
  opts: { alg?: SigningAlg; leadSeconds: number; maxTokenTtlSeconds: number },
): Promise<RotationResult> {
  return rotateSigningKey(db, kek, {
    ...opts,
    record: (tx, r) => auditChange(tx, actor, 'key.rotate', { type: 'key', id: r.kid }, { alg: r.alg, activatesAt: r.activatesAt, leadSeconds: opts.leadSeconds }),
  });
}
