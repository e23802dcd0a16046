// oidc-provider storage adapter on PostgreSQL (parameterised SQL on the pg pool).
//
// Every model oidc-provider persists (Session, Grant, AccessToken, Interaction,
// …) lives in the one table `oidc_payloads`, keyed by (model, id). Each
// operation is a single SQL statement, i.e. one database round trip.
//
// - `expires_at` is set from the database clock (now() + expiresIn) so that
//   every instance and the cleanup job agree on it; `find*` never return an
//   expired row, even before the cleanup job (src/oidc/cleanup.ts) removes it.
// - `consumed_at` is kept in its own column; `find` adds it to the payload as
//   `consumed` (epoch seconds), as oidc-provider expects. Once set, a later
//   upsert of the same live row never clears it (consumption is one-way).
// - `ReplayDetection` rows are inserted only if no live row with that id
//   exists: two concurrent uses of one DPoP proof / client assertion cannot
//   both pass oidc-provider's find-then-save check.
// - Statements run on the pg pool under the Prisma client (DbHandle.pool): a
//   statement costs about half the CPU it does through Prisma's raw-query
//   path, and these are the hottest statements of the sign-in, refresh and
//   userinfo paths.
// - `Client` is not stored here: clients come from the client registry through
//   `opts.clientFinder`; writes to it are no-ops (dynamic registration is off).
// - `delivered_at` / `retried_at` (refresh tokens) are not the adapter's: it
//   never writes them, so an upsert keeps them. src/oidc/refresh-rotation.ts
//   sets them, on the database adapterDatabase() names.
//
// oidc-provider ships no type declarations, so the adapter interface is
// declared here (structurally what oidc-provider calls).
import pg from 'pg';
import type { DbHandle } from '../db/client.ts';

/** What oidc-provider stores and reads back for one model instance. */
export interface AdapterPayload {
  [key: string]: unknown;
  /** epoch seconds; set by `find` when the row was consumed */
  consumed?: number;
  grantId?: string;
  userCode?: string;
  uid?: string;
}

/** The interface oidc-provider calls on `new Adapter(modelName)`. */
export interface OidcAdapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
  findByUid(uid: string): Promise<AdapterPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

/** What the `adapter` option of the oidc-provider configuration accepts. */
export type AdapterConstructor = new (name: string) => OidcAdapter;

export type ClientFinder = (id: string) => Promise<Record<string, unknown> | undefined>;

export interface AdapterFactoryOptions {
  /** Source of client metadata for the model `Client` (the client registry). */
  clientFinder?: ClientFinder;
  /**
   * This instance's id (src/db/instance.ts), recorded as `consumed_by`: a
   * refresh token's one retry is granted only once the instance that rotated
   * it can no longer answer (src/oidc/refresh-rotation.ts).
   */
  instanceId?: string;
}

/**
 * consume() of a row that is already consumed (or gone): the caller lost a
 * race for a single-use value. Not an OAuth error by itself: the model's
 * consume (src/oidc/single-use.ts) turns it into what oidc-provider does on a
 * second use (revoke the grant, invalid_grant).
 */
export class SecondUseError extends Error {
  override readonly name = 'SecondUseError';
  constructor(readonly model: string) {
    super(`${model} already consumed`);
  }
}

/** Runs one parameterised statement ($1, $2, … placeholders). */
interface Sql {
  rows<R>(text: string, values: unknown[]): Promise<R[]>;
  /** rows affected */
  count(text: string, values: unknown[]): Promise<number>;
}

function sqlOn(pool: pg.Pool): Sql {
  return {
    rows: async <R>(text: string, values: unknown[]) => (await pool.query({ text, values })).rows as R[],
    count: async (text, values) => (await pool.query({ text, values })).rowCount ?? 0,
  };
}

/**
 * Thrown (as an OAuth `invalid_request`, HTTP 400) when a request would make
 * oidc-provider store something PostgreSQL cannot hold (NUL characters, lone
 * UTF-16 surrogates) or replay a one-time value. oidc-provider and Koa render
 * errors with `expose`, `statusCode` and `error_description` as client errors.
 */
export class AdapterInputError extends Error {
  readonly status = 400;
  readonly statusCode = 400;
  readonly expose = true;
  readonly error_description: string;

  constructor(description: string) {
    super('invalid_request');
    this.name = 'AdapterInputError';
    this.error_description = description;
  }
}

interface Shared {
  sql: Sql;
  clientFinder: ClientFinder | undefined;
  /** revokeByGrantId calls in flight, by grant id (see revokeByGrantId) */
  revoking: Map<string, Promise<void>>;
  instanceId: string | null;
}

/** Models whose rows outlive their payload's exp (see upsert). */
export const EXPIRY_GRACE_SECONDS: Readonly<Record<string, number>> = { DeviceCode: 600 };

interface PayloadRow {
  payload: unknown;
  consumed_at: Date | null;
}

// A lone surrogate cannot be encoded as UTF-8 (jsonb rejects "\ud800").
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function storable(s: string): boolean {
  return !s.includes('\0') && !LONE_SURROGATE.test(s);
}

/** JSON text for the jsonb column; refuses what PostgreSQL would reject. */
function toJson(payload: AdapterPayload): string {
  return JSON.stringify(payload, (key: string, value: unknown) => {
    if (!storable(key) || (typeof value === 'string' && !storable(value))) {
      throw new AdapterInputError('request contains characters that are not allowed');
    }
    return value;
  });
}

function column(payload: AdapterPayload, key: 'grantId' | 'userCode' | 'uid'): string | null {
  const v = payload[key];
  if (typeof v !== 'string') return null;
  if (!storable(v)) throw new AdapterInputError('request contains characters that are not allowed');
  return v;
}

/** A lookup key that cannot match any stored row (and that pg would reject) */
function unmatchable(key: unknown): boolean {
  return typeof key !== 'string' || key.includes('\0');
}

function toPayload(row: PayloadRow | undefined): AdapterPayload | undefined {
  if (!row || typeof row.payload !== 'object' || row.payload === null || Array.isArray(row.payload)) {
    return undefined;
  }
  const payload = row.payload as AdapterPayload;
  if (row.consumed_at) payload.consumed = Math.floor(row.consumed_at.getTime() / 1000);
  return payload;
}

export class PostgresAdapter implements OidcAdapter {
  readonly name: string;
  readonly #shared: Shared;

  /** Not called by oidc-provider directly: use createAdapterFactory(). */
  constructor(name: string, shared: Shared) {
    this.name = name;
    this.#shared = shared;
  }

  get #sql(): Sql {
    return this.#shared.sql;
  }

  get #isClient(): boolean {
    return this.name === 'Client';
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    if (this.#isClient) return;
    if (unmatchable(id) || !storable(id)) throw new AdapterInputError('request contains characters that are not allowed');
    const json = toJson(payload);
    const grantId = column(payload, 'grantId');
    const userCode = column(payload, 'userCode');
    const uid = column(payload, 'uid');
    let ttl = typeof expiresIn === 'number' && Number.isFinite(expiresIn) ? expiresIn : null;
    // An expired device code must still be found, so that polling answers
    // expired_token (RFC 8628 §3.5) and /device says "expired" rather than
    // "not found": its row outlives its payload's exp by a grace period
    // (oidc-provider checks exp itself; it looks device codes up with
    // ignoreExpiration).
    if (ttl !== null && EXPIRY_GRACE_SECONDS[this.name]) ttl += EXPIRY_GRACE_SECONDS[this.name]!;
    const consumed = typeof payload.consumed === 'number' && Number.isFinite(payload.consumed) ? payload.consumed : null;

    if (this.name === 'ReplayDetection') {
      // Insert unless a live row exists: the second of two concurrent uses of
      // one proof / assertion affects no row and is refused.
      const n = await this.#sql.count(
        `INSERT INTO oidc_payloads AS o (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
        VALUES ($1, $2, $3::jsonb, $4, $5, $6, now() + make_interval(secs => $7::float8), to_timestamp($8::float8))
        ON CONFLICT (model, id) DO UPDATE SET
          payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code,
          uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at, consumed_at = EXCLUDED.consumed_at
        WHERE o.expires_at IS NOT NULL AND o.expires_at <= now()`,
        [this.name, id, json, grantId, userCode, uid, ttl, consumed],
      );
      if (n === 0) throw new AdapterInputError('replay detected');
      return;
    }

    // make_interval(secs => NULL) is NULL, so no expiresIn stores no expiry.
    await this.#sql.count(
      `INSERT INTO oidc_payloads AS o (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
      VALUES ($1, $2, $3::jsonb, $4, $5, $6, now() + make_interval(secs => $7::float8), to_timestamp($8::float8))
      ON CONFLICT (model, id) DO UPDATE SET
        payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code,
        uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at,
        consumed_at = CASE WHEN o.expires_at IS NOT NULL AND o.expires_at <= now() THEN EXCLUDED.consumed_at
                           ELSE COALESCE(o.consumed_at, EXCLUDED.consumed_at) END`,
      [this.name, id, json, grantId, userCode, uid, ttl, consumed],
    );
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.#isClient) {
      if (typeof id !== 'string' || !this.#shared.clientFinder) return undefined;
      return this.#shared.clientFinder(id);
    }
    if (unmatchable(id)) return undefined;
    const rows = await this.#sql.rows<PayloadRow>(
      'SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > now())',
      [this.name, id],
    );
    return toPayload(rows[0]);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    if (this.#isClient || unmatchable(userCode)) return undefined;
    const rows = await this.#sql.rows<PayloadRow>(
      `SELECT payload, consumed_at FROM oidc_payloads
      WHERE model = $1 AND user_code = $2 AND (expires_at IS NULL OR expires_at > now())
      ORDER BY expires_at DESC NULLS FIRST LIMIT 1`,
      [this.name, userCode],
    );
    return toPayload(rows[0]);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    if (this.#isClient || unmatchable(uid)) return undefined;
    const rows = await this.#sql.rows<PayloadRow>(
      `SELECT payload, consumed_at FROM oidc_payloads
      WHERE model = $1 AND uid = $2 AND (expires_at IS NULL OR expires_at > now())
      ORDER BY expires_at DESC NULLS FIRST LIMIT 1`,
      [this.name, uid],
    );
    return toPayload(rows[0]);
  }

  /**
   * Marks the row used, in one conditional statement: of any number of
   * concurrent calls (on any instance) exactly one changes the row; every
   * other one, and a call for a row already used or gone, throws
   * SecondUseError. oidc-provider checks `consumed` before it consumes, so
   * without the condition racing requests would all pass that check.
   */
  async consume(id: string): Promise<void> {
    if (this.#isClient) return;
    if (unmatchable(id)) throw new SecondUseError(this.name);
    const won = await this.#sql.count(
      'UPDATE oidc_payloads SET consumed_at = now(), consumed_by = $3 WHERE model = $1 AND id = $2 AND consumed_at IS NULL',
      [this.name, id, this.#shared.instanceId],
    );
    if (won === 0) throw new SecondUseError(this.name);
  }

  async destroy(id: string): Promise<void> {
    if (this.#isClient || unmatchable(id)) return;
    await this.#sql.count('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [this.name, id]);
  }

  /**
   * Deletes every row of that grant, whatever its model. oidc-provider calls
   * this once per token model in parallel when it revokes a grant; calls for
   * the same grant that overlap share one DELETE.
   */
  async revokeByGrantId(grantId: string): Promise<void> {
    if (this.#isClient || unmatchable(grantId)) return;
    const { revoking } = this.#shared;
    const inFlight = revoking.get(grantId);
    if (inFlight) return inFlight;
    const run = this.#sql
      .count('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId])
      .then(() => undefined)
      .finally(() => revoking.delete(grantId));
    revoking.set(grantId, run);
    return run;
  }
}

const factoryDatabases = new WeakMap<object, AdapterDatabase>();

/** Prisma for transactions, the pg pool for the single statements of hot paths. */
export type AdapterDatabase = Pick<DbHandle, 'prisma' | 'pool'>;

/**
 * The `adapter` option for oidc-provider: it calls `new Adapter(modelName)`
 * once per model. All instances share the database handle.
 */
export function createAdapterFactory(db: Pick<DbHandle, 'prisma' | 'pool'>, opts: AdapterFactoryOptions = {}): AdapterConstructor {
  const shared: Shared = { sql: sqlOn(db.pool), clientFinder: opts.clientFinder, revoking: new Map(), instanceId: opts.instanceId ?? null };
  const factory = class GatehouseAdapter extends PostgresAdapter {
    constructor(name: string) {
      super(name, shared);
    }
  };
  factoryDatabases.set(factory, { prisma: db.prisma, pool: db.pool });
  return factory;
}

/**
 * The database a factory from createAdapterFactory() stores in (undefined for
 * any other adapter), for the oidc modules that keep their own columns of
 * oidc_payloads (src/oidc/refresh-rotation.ts).
 */
export function adapterDatabase(factory: unknown): AdapterDatabase | undefined {
  return typeof factory === 'function' ? factoryDatabases.get(factory) : undefined;
}
