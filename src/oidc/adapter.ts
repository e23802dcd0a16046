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
// - A refresh token's rotation is one statement (issue 18): within a
//   refresh_token grant request, single-use.ts asks for the rotated token's
//   consume() to be deferred (deferNextConsume); the successor refresh token
//   and the new access token are then held back too, and all three are
//   written by ONE statement (a data-modifying CTE: the conditional UPDATE
//   that marks the old token used, and an INSERT of the new rows that runs
//   only if that UPDATE won). Either both happen or neither: no crash leaves a
//   token used without its successor stored. The loser of a race affects no
//   row and gets SecondUseError, as from consume() (single-use.ts turns it into
//   the reuse answer). Nothing is written if the request fails before the
//   access token is saved: the presented token then simply stays unused.
// - `find` of a RefreshToken or AccessToken inside a request also reads the
//   token's Grant (and, for access tokens, its Session) in the same
//   statement; oidc-provider's own look-ups of that grant and session later in
//   the same request are answered from that read, once each.
// - `delivered_at` / `retried_at` (refresh tokens) are not the adapter's: it
//   never writes them, so an upsert keeps them. src/oidc/refresh-rotation.ts
//   sets them, on the database adapterDatabase() names.
//
// oidc-provider ships no type declarations, so the adapter interface is
// declared here (structurally what oidc-provider calls).
import pg from 'pg';
import type { DbHandle } from '../db/client.ts';
import { currentRequest } from './internals.ts';

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

/** A token row held back until the deferred consume of its request is written. */
interface HeldRow {
  model: string;
  id: string;
  json: string;
  grantId: string | null;
  userCode: string | null;
  uid: string | null;
  ttl: number | null;
  consumed: number | null;
}

/** A consume() deferred within one request, with the rows held back for the same statement. */
interface DeferredConsume {
  model: string;
  id: string;
  instanceId: string | null;
  sql: Sql;
  rows: HeldRow[];
}

/** requests (oidc-provider's ctx) whose next consume() is deferred */
const deferRequested = new WeakSet<object>();
/** the deferred consume of each request */
const deferred = new WeakMap<object, DeferredConsume>();
/** rows read along with a token (the same value as another token model, its Grant, its Session), answered once to the same request's find */
const prefetched = new WeakMap<object, Map<string, Promise<AdapterPayload | undefined>>>();

function heldFor(ctx: object): Map<string, Promise<AdapterPayload | undefined>> {
  let held = prefetched.get(ctx);
  if (!held) prefetched.set(ctx, (held = new Map()));
  return held;
}

/** the models a presented token value is looked up as */
const TOKEN_MODELS: readonly string[] = ['AccessToken', 'ClientCredentials', 'RefreshToken'];

/** Only models whose rows are the product of a rotation are held back. */
const HELD_MODELS = new Set(['RefreshToken', 'AccessToken']);

/**
 * Asks that the next consume() within this request (a refresh_token grant) be
 * written together with the tokens it issues (see the header). The caller
 * must make sure flushDeferredConsume() runs once the tokens are saved.
 */
export function deferNextConsume(ctx: object): void {
  deferRequested.add(ctx);
}

/** Whether this request has a consume waiting to be written. */
export function hasDeferredConsume(ctx: object): boolean {
  return deferred.has(ctx);
}

/**
 * Writes the deferred consume of this request (if any) and the rows held back
 * with it, in one statement. Throws SecondUseError (model of the consumed
 * value) when another request consumed it first: nothing is written then.
 */
export async function flushDeferredConsume(ctx: object): Promise<void> {
  const d = deferred.get(ctx);
  if (!d) return;
  deferred.delete(ctx);
  if (d.rows.length === 0) {
    const won = await d.sql.count(
      'UPDATE oidc_payloads SET consumed_at = now(), consumed_by = $3 WHERE model = $1 AND id = $2 AND consumed_at IS NULL',
      [d.model, d.id, d.instanceId],
    );
    if (won === 0) throw new SecondUseError(d.model);
    return;
  }
  const values: unknown[] = [d.model, d.id, d.instanceId];
  const tuples = d.rows.map((r) => {
    const at = values.length;
    values.push(r.model, r.id, r.json, r.grantId, r.userCode, r.uid, r.ttl, r.consumed);
    const p = (i: number) => `$${at + i}`;
    return `(${p(1)}::text, ${p(2)}::text, ${p(3)}::text, ${p(4)}::text, ${p(5)}::text, ${p(6)}::text, ${p(7)}::float8, ${p(8)}::float8)`;
  });
  const rows = await d.sql.rows<{ won: number }>(
    `WITH consumed AS (
      UPDATE oidc_payloads SET consumed_at = now(), consumed_by = $3
      WHERE model = $1 AND id = $2 AND consumed_at IS NULL
      RETURNING 1
    ), stored AS (
      INSERT INTO oidc_payloads AS o (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
      SELECT v.model, v.id, v.payload::jsonb, v.grant_id, v.user_code, v.uid, now() + make_interval(secs => v.ttl), to_timestamp(v.consumed)
      FROM (VALUES ${tuples.join(', ')}) AS v(model, id, payload, grant_id, user_code, uid, ttl, consumed)
      WHERE EXISTS (SELECT 1 FROM consumed)
      ON CONFLICT (model, id) DO UPDATE SET
        payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, user_code = EXCLUDED.user_code,
        uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at,
        consumed_at = CASE WHEN o.expires_at IS NOT NULL AND o.expires_at <= now() THEN EXCLUDED.consumed_at
                           ELSE COALESCE(o.consumed_at, EXCLUDED.consumed_at) END
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM consumed)::int AS won, (SELECT count(*) FROM stored)::int AS stored`,
    values,
  );
  if (!rows[0] || rows[0].won === 0) throw new SecondUseError(d.model);
}

interface TokenWithRelatedRow extends PayloadRow {
  grant_payload: unknown;
  grant_consumed_at: Date | null;
  grant_id: string | null;
  session_payload?: unknown;
  session_consumed_at?: Date | null;
  session_uid?: string | null;
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

    const ctx = HELD_MODELS.has(this.name) ? currentRequest() : undefined;
    const pending = ctx ? deferred.get(ctx) : undefined;
    if (ctx && pending) {
      // written with the deferred consume of this request; the access token is saved last
      pending.rows.push({ model: this.name, id, json, grantId, userCode, uid, ttl, consumed });
      if (this.name === 'AccessToken') await flushDeferredConsume(ctx);
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
    const ctx = currentRequest();
    if (ctx) {
      const held = prefetched.get(ctx);
      const key = `${this.name}\0${id}`;
      if (held?.has(key)) {
        const payload = held.get(key);
        held.delete(key);
        return payload;
      }
      if (TOKEN_MODELS.includes(this.name)) return this.#findWithRelated(ctx, id);
    }
    const rows = await this.#sql.rows<PayloadRow>(
      'SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > now())',
      [this.name, id],
    );
    return toPayload(rows[0]);
  }

  /**
   * A token and, in the same statement, the rows of the same value under the
   * other token models (oidc-provider looks a presented value up as an access
   * token, client credentials and refresh token, often in parallel), and
   * each one's Grant and Session (by uid): all kept for this request's own
   * look-ups of them, answered once each.
   */
  #findWithRelated(ctx: object, id: string): Promise<AdapterPayload | undefined> {
    const query = this.#sql.rows<TokenWithRelatedRow & { model: string }>(
      `SELECT t.model, t.payload, t.consumed_at, t.grant_id, g.payload AS grant_payload, g.consumed_at AS grant_consumed_at,
        t.payload->>'sessionUid' AS session_uid, s.payload AS session_payload, s.consumed_at AS session_consumed_at
      FROM oidc_payloads t
      LEFT JOIN oidc_payloads g ON g.model = 'Grant' AND g.id = t.grant_id AND (g.expires_at IS NULL OR g.expires_at > now())
      LEFT JOIN LATERAL (
        SELECT s.payload, s.consumed_at FROM oidc_payloads s
        WHERE s.model = 'Session' AND s.uid = t.payload->>'sessionUid' AND (s.expires_at IS NULL OR s.expires_at > now())
        ORDER BY s.expires_at DESC NULLS FIRST LIMIT 1
      ) s ON t.payload ? 'sessionUid'
      WHERE t.model = ANY($1::text[]) AND t.id = $2 AND (t.expires_at IS NULL OR t.expires_at > now())`,
      [TOKEN_MODELS, id],
    );
    const held = heldFor(ctx);
    const rowOf = (model: string) => query.then((rows) => rows.find((r) => r.model === model));
    // the other token models' look-ups of this value wait for this statement instead of running their own
    for (const model of TOKEN_MODELS) {
      if (model === this.name) continue;
      const other = rowOf(model).then(toPayload);
      other.catch(() => {}); // a failure reaches whoever asks; nobody may
      held.set(`${model}\0${id}`, other);
    }
    return rowOf(this.name).then((row) => {
      if (row?.grant_id) held.set(`Grant\0${row.grant_id}`, Promise.resolve(toPayload({ payload: row.grant_payload, consumed_at: row.grant_consumed_at })));
      if (row?.session_uid) held.set(`Session\0uid\0${row.session_uid}`, Promise.resolve(toPayload({ payload: row.session_payload, consumed_at: row.session_consumed_at ?? null })));
      return toPayload(row);
    });
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
    const ctx = currentRequest();
    const held = ctx ? prefetched.get(ctx) : undefined;
    const key = `${this.name}\0uid\0${uid}`;
    if (held?.has(key)) {
      const payload = held.get(key);
      held.delete(key);
      return payload;
    }
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
    const ctx = currentRequest();
    if (ctx && deferRequested.has(ctx) && !deferred.has(ctx)) {
      deferRequested.delete(ctx);
      deferred.set(ctx, { model: this.name, id, instanceId: this.#shared.instanceId, sql: this.#sql, rows: [] });
      return;
    }
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
