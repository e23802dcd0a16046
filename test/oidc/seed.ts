// Rows of the oidc domain's tables for the cleanup tests (its own steps in
// test/oidc/cleanup.test.ts, the whole job in test/db/cleanup.test.ts).
import type { Db } from '../../src/db/client.ts';

/**
 * `expired` payloads of several models ('expired-1' …) and as many expired
 * revocations; `live` unexpired ones of each ('live-1' …); one payload that
 * never expires ('Grant/forever').
 */
export async function seedOidcRows(db: Db, expired: number, live: number): Promise<void> {
  await db.$executeRaw`
    INSERT INTO oidc_payloads (model, id, payload, expires_at)
    SELECT (ARRAY['AccessToken','Session','Interaction'])[1 + i % 3], 'expired-' || i, '{}'::jsonb, now() - interval '1 second' * i
    FROM generate_series(1, ${expired}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO oidc_payloads (model, id, payload, expires_at)
    SELECT 'AccessToken', 'live-' || i, '{}'::jsonb, now() + interval '1 hour' FROM generate_series(1, ${live}::int) AS i`;
  await db.$executeRaw`INSERT INTO oidc_payloads (model, id, payload) VALUES ('Grant', 'forever', '{}'::jsonb)`;
  await db.$executeRaw`
    INSERT INTO revoked_tokens (jti, expires_at)
    SELECT 'expired-' || i, now() - interval '1 minute' FROM generate_series(1, ${expired}::int) AS i`;
  await db.$executeRaw`
    INSERT INTO revoked_tokens (jti, expires_at)
    SELECT 'live-' || i, now() + interval '1 minute' FROM generate_series(1, ${live}::int) AS i`;
}
