// The oidc domain's cleanup steps, for the batched cleanup job
// (src/db/cleanup.ts): oidc_payloads and revoked_tokens whose expires_at has
// passed. Each call is one batch, `DELETE … WHERE pk IN (SELECT pk … LIMIT n
// FOR UPDATE SKIP LOCKED)`: instances running at once delete disjoint rows and
// never wait on one another, nor on a request that holds a row lock. Kept as
// tagged templates so the only parameter is the (numeric) limit.
import type { Db } from '../db/client.ts';

/** Deletes at most `batchSize` expired oidc-provider records (tokens, codes, sessions, …). */
export function pruneExpiredPayloads(db: Db, batchSize: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM oidc_payloads WHERE (model, id) IN (
      SELECT model, id FROM oidc_payloads WHERE expires_at < now()
      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}

/** Deletes at most `batchSize` revocation records whose token has expired anyway. */
export function pruneExpiredRevocations(db: Db, batchSize: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM revoked_tokens WHERE jti IN (
      SELECT jti FROM revoked_tokens WHERE expires_at < now()
      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}
