// Login throttling: brute-force protection shared by every instance through
// the `login_throttles` table.
//
// Each key counts consecutive failed logins:
//   account:<id>                  a known account
//   account-email:<email>         an email no account has (so unknown emails behave like known ones)
//   ip:<address>                  a client address (IPv6: its /64)
// When a key reaches its maximum (maxFailures for accounts, ipMaxFailures for
// addresses) it is locked for lockSeconds × 2^lockCount, capped at
// maxLockSeconds; lockCount then grows by one and the failures start again
// from 0. A successful login resets its account key (failures, lockCount,
// lock) but not the address key.
//
// Race-freedom: the counter is taken *before* the password is checked.
// checkAndReserve locks the attempt's rows (SELECT … FOR UPDATE, in key order
// so two attempts never deadlock), refuses if any key is locked or already has
// `max` attempts counted, and otherwise counts this attempt as a failure in
// advance on every key, all in one transaction. So N parallel wrong guesses
// against a key with room for k more can run at most k password checks; the
// others are refused before argon2 runs. recordFailure then only decides
// whether the key locks (its count, including attempts still in flight, has
// reached the maximum); recordSuccess resets the account key and gives the
// address key its reserved count back.
//
// Same work for everyone: a login attempt must not answer faster for an
// account that has recent attempts than for one that has none, or for a
// known email than for an unknown one (the answer time would tell which
// emails have accounts, or are being tried). So every attempt that is let
// through is counted by the same one statement, which writes (and commits,
// a WAL flush that costs more than a round trip) exactly once whether it
// inserts a key's first row or updates an existing one, forgetting keys
// quiet for a day on the way. Only refusals (a locked or full key) take the
// longer transaction below, and they skip the password check anyway.
//
// All instants come from the database clock (now()), so instances with skewed
// clocks agree.
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Config } from '../config/config.ts';
import { Prisma, type Db } from '../db/client.ts';

export type LoginPolicy = Config['login'] & {
  /**
   * A key with no activity (and no lock) for this long starts afresh:
   * failures and lockCount go back to 0, and pruneThrottles may delete it.
   * Default one day.
   */
  forgetAfterSeconds?: number;
};

export const DEFAULT_FORGET_AFTER_SECONDS = 86_400;

/**
 * An attempt that reserved a key's last slot and never reported back (its
 * process died) would hold the key at its maximum without a lock; after this
 * long with no activity such a key is locked as if the attempt had failed.
 */
const STALE_RESERVATION_SECONDS = 60;

/** Lock duration doubles at most this many times (the cap applies long before). */
const MAX_DOUBLINGS = 30;

const TX_OPTIONS = { maxWait: 10_000, timeout: 15_000 };

export type ThrottleKind = 'account' | 'ip';

export interface ThrottleKey {
  key: string;
  kind: ThrottleKind;
  /** failures that lock the key */
  max: number;
}

export function accountThrottleKey(accountId: string): string {
  return `account:${accountId}`;
}

/** Key for a login name that matches no account (normalised email; long input is hashed). */
export function unknownEmailThrottleKey(normalizedEmail: string): string {
  const e = normalizedEmail.length <= 254 ? normalizedEmail : `sha256:${createHash('sha256').update(normalizedEmail).digest('hex')}`;
  return `account-email:${e}`;
}

/**
 * Key for a client address. IPv4 (and IPv4-mapped IPv6) addresses count
 * individually; IPv6 addresses count per /64, the block one subscriber
 * usually gets, so rotating through it does not evade the limit.
 */
export function ipThrottleKey(ip: string): string {
  let a = ip.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (isIPv4(a)) return `ip:${a}`;
  if (isIPv6(a)) {
    const groups = expandIPv6(a);
    if (groups) {
      const isMapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
      if (isMapped) {
        const [hi, lo] = [groups[6]!, groups[7]!];
        return `ip:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
      }
      return `ip:${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
    }
  }
  // Not an address we understand (proxies may send anything): count it as given.
  return `ip:${a.slice(0, 100)}`;
}

/** The 8 16-bit groups of a valid IPv6 address (net.isIPv6 already said it is valid). */
function expandIPv6(addr: string): number[] | undefined {
  let s = addr.toLowerCase();
  // a trailing dotted IPv4 part becomes two groups
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + `${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(fill, 0)).fill(0), ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** The keys one login attempt counts against. */
export function loginThrottleKeys(
  policy: LoginPolicy,
  who: { accountId?: string; normalizedEmail: string; ip?: string },
): ThrottleKey[] {
  const keys: ThrottleKey[] = [
    {
      key: who.accountId ? accountThrottleKey(who.accountId) : unknownEmailThrottleKey(who.normalizedEmail),
      kind: 'account',
      max: policy.maxFailures,
    },
  ];
  if (who.ip) keys.push({ key: ipThrottleKey(who.ip), kind: 'ip', max: policy.ipMaxFailures });
  return keys;
}

interface Row {
  key: string;
  failures: number;
  lockCount: number;
  lockedUntil: Date | null;
  updatedAt: Date;
  now: Date;
}

type Tx = Prisma.TransactionClient;

async function ensureRows(db: Db, keys: string[]): Promise<void> {
  // Committed on its own so the locking transaction below always finds the rows.
  await db.$executeRaw`INSERT INTO login_throttles (key) VALUES ${Prisma.join(keys.map((k) => Prisma.sql`(${k})`))} ON CONFLICT (key) DO NOTHING`;
}

async function lockRows(tx: Tx, keys: string[]): Promise<Map<string, Row>> {
  const rows = await tx.$queryRaw<Row[]>`
    SELECT key, failures, lock_count AS "lockCount", locked_until AS "lockedUntil", updated_at AS "updatedAt", now() AS "now"
    FROM login_throttles WHERE key IN (${Prisma.join(keys)})
    ORDER BY key FOR UPDATE`;
  return new Map(rows.map((r) => [r.key, r]));
}

function sortedUnique(keys: ThrottleKey[]): ThrottleKey[] {
  const byKey = new Map<string, ThrottleKey>();
  for (const k of keys) byKey.set(k.key, k);
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const isLocked = (r: { lockedUntil: Date | null }, now: Date) => r.lockedUntil !== null && r.lockedUntil.getTime() > now.getTime();

const secondsUntil = (until: Date, now: Date) => Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));

function lockDurationSeconds(policy: LoginPolicy, lockCount: number): number {
  return Math.min(policy.lockSeconds * 2 ** Math.min(lockCount, MAX_DOUBLINGS), policy.maxLockSeconds);
}

/** Applies "forget after a quiet day" to a row's state (in memory). */
function forget(r: Row, policy: LoginPolicy): boolean {
  const quietSince = Math.max(r.updatedAt.getTime(), r.lockedUntil?.getTime() ?? 0);
  const window = (policy.forgetAfterSeconds ?? DEFAULT_FORGET_AFTER_SECONDS) * 1000;
  if ((r.failures > 0 || r.lockCount > 0) && !isLocked(r, r.now) && r.now.getTime() - quietSince > window) {
    r.failures = 0;
    r.lockCount = 0;
    return true;
  }
  return false;
}

/** Locks a row (in memory): lockedUntil, lockCount + 1, failures back to 0. */
function applyLock(r: Row, policy: LoginPolicy): Date {
  const until = new Date(r.now.getTime() + lockDurationSeconds(policy, r.lockCount) * 1000);
  r.lockedUntil = until;
  r.lockCount += 1;
  r.failures = 0;
  return until;
}

async function writeRow(tx: Tx, r: Row): Promise<void> {
  await tx.loginThrottle.update({
    where: { key: r.key },
    data: { failures: r.failures, lockCount: r.lockCount, lockedUntil: r.lockedUntil, updatedAt: r.now },
  });
}

/** Proof of a reservation, handed back to recordFailure / recordSuccess. */
export interface Reservation {
  keys: ThrottleKey[];
  /** each key's lockedUntil when reserved: tells a later release whether a lock came in between */
  epochs: Map<string, Date | null>;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation }
  | { ok: false; locked: ThrottleKey; retryAfterSeconds: number };

/** SQL: the row `t` has been quiet for longer than the forget window: it starts afresh (see forget()). */
function quietTooLong(t: string, forgetSeconds: number): Prisma.Sql {
  const r = Prisma.raw(t);
  return Prisma.sql`((${r}.failures > 0 OR ${r}.lock_count > 0) AND (${r}.locked_until IS NULL OR ${r}.locked_until <= now())
    AND now() - GREATEST(${r}.updated_at, coalesce(${r}.locked_until, ${r}.updated_at)) > make_interval(secs => ${forgetSeconds}::double precision))`;
}

/** SQL: the row `t` can take one more attempt (not locked, fewer than `max` counted once forgotten ones start afresh). */
function openRow(t: string, max: Prisma.Sql, forgetSeconds: number): Prisma.Sql {
  const r = Prisma.raw(t);
  return Prisma.sql`((${r}.locked_until IS NULL OR ${r}.locked_until <= now())
    AND (CASE WHEN ${quietTooLong(t, forgetSeconds)} THEN 0 ELSE ${r}.failures END) < ${max})`;
}

/**
 * Every attempt that is let through, in one statement (one write, one
 * commit, whether the rows exist or not). When the keys' rows, as the
 * statement's snapshot sees them, are none locked out or full (rows quiet
 * for longer than the forget window start afresh, as forget() does), the
 * attempt is counted on every key: a missing row is inserted with failures
 * 1, an existing one incremented. The rows are locked by the insert itself,
 * one pass in key order (as the full path locks them: no deadlock), and each
 * is judged again once locked; if one turned locked or full meanwhile, the
 * others give their count back. Returns undefined, having counted nothing,
 * when a key is locked or full: the full path decides those.
 */
async function reserveOpenKeys(db: Db, sorted: ThrottleKey[], policy: LoginPolicy): Promise<Reservation | undefined> {
  const names = sorted.map((k) => k.key);
  const maxes = sorted.map((k) => k.max);
  const forget = policy.forgetAfterSeconds ?? DEFAULT_FORGET_AFTER_SECONDS;
  const rows = await db.$queryRaw<{ key: string; lockedUntil: Date | null }[]>`
    WITH want AS (SELECT * FROM unnest(${names}::text[], ${maxes}::int[]) AS w(key, max)),
    held AS (
      SELECT t.key, t.failures, t.lock_count, t.locked_until, t.updated_at, want.max
      FROM login_throttles t JOIN want ON want.key = t.key),
    verdict AS (SELECT coalesce(bool_and(${openRow('held', Prisma.sql`held.max`, forget)}), true) AS open FROM held)
    INSERT INTO login_throttles AS t (key, failures, lock_count, updated_at)
    SELECT want.key, 1, 0, now() FROM want, verdict WHERE verdict.open ORDER BY want.key
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN ${quietTooLong('t', forget)} THEN 1 ELSE t.failures + 1 END,
      lock_count = CASE WHEN ${quietTooLong('t', forget)} THEN 0 ELSE t.lock_count END,
      updated_at = now()
    -- judged again on the row as locked (another attempt may have counted on it since the snapshot)
    WHERE ${openRow('t', Prisma.sql`(SELECT want.max FROM want WHERE want.key = t.key)`, forget)}
    RETURNING t.key, t.locked_until AS "lockedUntil"`;
  const counted: Reservation = { keys: sorted.filter((k) => rows.some((r) => r.key === k.key)), epochs: new Map(rows.map((r) => [r.key, r.lockedUntil] as const)) };
  if (counted.keys.length === sorted.length) return counted;
  // Only some keys took it (one turned locked or full meanwhile): give their count back.
  await giveBack(db, counted, false);
  return undefined;
}

/**
 * Atomically: refuses when any key is locked (or already has `max` attempts
 * counted, some still in flight); otherwise counts this attempt as a failure
 * on every key in advance. Call before checking the password, then report the
 * outcome with recordFailure or recordSuccess.
 */
export async function checkAndReserve(db: Db, keys: ThrottleKey[], policy: LoginPolicy): Promise<ReserveResult> {
  const sorted = sortedUnique(keys);
  if (sorted.length === 0) return { ok: true, reservation: { keys: [], epochs: new Map() } };
  const open = await reserveOpenKeys(db, sorted, policy);
  if (open) return { ok: true, reservation: open };
  const names = sorted.map((k) => k.key);
  await ensureRows(db, names);
  return db.$transaction(async (tx) => {
    const rows = await lockRows(tx, names);
    let refusal: { locked: ThrottleKey; retryAfterSeconds: number } | undefined;
    const changed = new Set<Row>();
    for (const k of sorted) {
      const r = rows.get(k.key);
      if (!r) throw new Error(`login throttle row ${k.key} vanished`);
      if (forget(r, policy)) changed.add(r);
      if (isLocked(r, r.now)) {
        refusal ??= { locked: k, retryAfterSeconds: secondsUntil(r.lockedUntil!, r.now) };
      } else if (r.failures >= k.max) {
        // Every remaining try is taken by attempts still in flight. If none
        // reported back for a long time their process died: lock as failed.
        if (r.now.getTime() - r.updatedAt.getTime() > STALE_RESERVATION_SECONDS * 1000) {
          const until = applyLock(r, policy);
          changed.add(r);
          refusal ??= { locked: k, retryAfterSeconds: secondsUntil(until, r.now) };
        } else {
          refusal ??= { locked: k, retryAfterSeconds: 1 };
        }
      }
    }
    if (!refusal) {
      for (const k of sorted) {
        const r = rows.get(k.key)!;
        r.failures += 1;
        changed.add(r);
      }
    }
    for (const r of changed) await writeRow(tx, r);
    if (refusal) return { ok: false as const, ...refusal };
    const epochs = new Map(sorted.map((k) => [k.key, rows.get(k.key)!.lockedUntil] as const));
    return { ok: true as const, reservation: { keys: sorted, epochs } };
  }, TX_OPTIONS);
}

export interface Lockout {
  key: string;
  kind: ThrottleKind;
  lockedUntil: Date;
  /** locks so far, this one included */
  lockCount: number;
  retryAfterSeconds: number;
}

/**
 * The reserved attempt failed. Its failure was already counted; a key whose
 * count has reached its maximum is locked now. Returns the lockouts this
 * failure started (empty if none).
 */
export async function recordFailure(db: Db, reservation: Reservation, policy: LoginPolicy): Promise<Lockout[]> {
  if (reservation.keys.length === 0) return [];
  return db.$transaction(async (tx) => {
    const rows = await lockRows(
      tx,
      reservation.keys.map((k) => k.key),
    );
    const lockouts: Lockout[] = [];
    for (const k of reservation.keys) {
      const r = rows.get(k.key);
      if (!r) continue; // reset by an administrator meanwhile
      if (!isLocked(r, r.now) && r.failures >= k.max) {
        const until = applyLock(r, policy);
        lockouts.push({ key: k.key, kind: k.kind, lockedUntil: until, lockCount: r.lockCount, retryAfterSeconds: secondsUntil(until, r.now) });
      }
      await writeRow(tx, r);
    }
    return lockouts;
  }, TX_OPTIONS);
}

/**
 * The reserved attempt succeeded: account keys start afresh (failures,
 * lockCount and any lock cleared); address keys get this attempt's reserved
 * count back, unless the key locked in between (then its count was already
 * reset and there is nothing to give back).
 */
export async function recordSuccess(db: Db, reservation: Reservation): Promise<void> {
  await giveBack(db, reservation, true);
}

/**
 * One UPDATE for every key of a reservation. Account keys start afresh when
 * `resetAccounts`; other keys get their reserved count back unless they
 * locked since the reservation (their lockedUntil then differs from the epoch).
 */
async function giveBack(db: Db, reservation: Reservation, resetAccounts: boolean): Promise<void> {
  if (reservation.keys.length === 0) return;
  const names = reservation.keys.map((k) => k.key);
  const resets = reservation.keys.map((k) => resetAccounts && k.kind === 'account');
  // ISO text, cast in SQL: locked_until values are written from JS Dates (ms precision)
  const epochs = reservation.keys.map((k) => reservation.epochs.get(k.key)?.toISOString() ?? null);
  await db.$executeRaw`
    UPDATE login_throttles t SET
      failures = CASE WHEN w.reset THEN 0 ELSE GREATEST(t.failures - 1, 0) END,
      lock_count = CASE WHEN w.reset THEN 0 ELSE t.lock_count END,
      locked_until = CASE WHEN w.reset THEN NULL ELSE t.locked_until END,
      updated_at = now()
    FROM unnest(${names}::text[], ${resets}::boolean[], ${epochs}::text[]) AS w(key, reset, epoch)
    WHERE t.key = w.key AND (w.reset OR t.locked_until IS NOT DISTINCT FROM w.epoch::timestamptz)`;
}

/**
 * The reserved attempt neither failed nor completed a login: a right password
 * when the login still needs a second factor (mfa.ts). Every key gets its
 * reserved count back (unless it locked in between) and nothing is reset, so
 * wrong second factors keep counting across password attempts until a login
 * completes (recordSuccess) or the account locks.
 */
export async function releaseReservation(db: Db, reservation: Reservation): Promise<void> {
  await giveBack(db, reservation, false);
}

export interface LockStatus {
  key: string;
  /** failed attempts counted since the last reset or lock (including attempts in flight) */
  failures: number;
  lockCount: number;
  lockedUntil: Date | null;
  locked: boolean;
  /** seconds until the lock ends; 0 when not locked */
  retryAfterSeconds: number;
  updatedAt: Date | null;
}

/** Current state of one key (for tests and administrators). */
export async function lockStatus(db: Db, key: string): Promise<LockStatus> {
  const rows = await db.$queryRaw<Row[]>`
    SELECT key, failures, lock_count AS "lockCount", locked_until AS "lockedUntil", updated_at AS "updatedAt", now() AS "now"
    FROM login_throttles WHERE key = ${key}`;
  const r = rows[0];
  if (!r) return { key, failures: 0, lockCount: 0, lockedUntil: null, locked: false, retryAfterSeconds: 0, updatedAt: null };
  const locked = isLocked(r, r.now);
  return {
    key,
    failures: r.failures,
    lockCount: r.lockCount,
    lockedUntil: r.lockedUntil,
    locked,
    retryAfterSeconds: locked ? secondsUntil(r.lockedUntil!, r.now) : 0,
    updatedAt: r.updatedAt,
  };
}

/** Clears a key entirely (administrator unlock, password reset, account deletion). */
export async function resetThrottle(db: Pick<Db, 'loginThrottle'>, key: string): Promise<void> {
  await db.loginThrottle.deleteMany({ where: { key } });
}

/**
 * One batch of the cleanup job (src/db/cleanup.ts): deletes at most
 * `batchSize` keys that have been quiet, and unlocked, for longer than the
 * forget window (updated and lock ended more than forgetAfterSeconds ago) —
 * exactly the rows forget() would start afresh anyway, so deleting one loses
 * nothing, not even the lockCount that lengthens the next lock.
 * `FOR UPDATE SKIP LOCKED`: a row a login attempt holds is left for the next
 * run, and instances running at once delete disjoint rows. Returns how many
 * rows went.
 */
export async function pruneThrottles(db: Db, batchSize: number, policy?: LoginPolicy): Promise<number> {
  const seconds = policy?.forgetAfterSeconds ?? DEFAULT_FORGET_AFTER_SECONDS;
  return db.$executeRaw`
    DELETE FROM login_throttles WHERE key IN (
      SELECT key FROM login_throttles
      WHERE updated_at < now() - make_interval(secs => ${seconds}::double precision)
        AND (locked_until IS NULL OR locked_until < now() - make_interval(secs => ${seconds}::double precision))
      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}
