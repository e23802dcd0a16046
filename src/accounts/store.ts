// Accounts (people) in the `accounts` table, and the login check.
//
// Emails are stored trimmed and lower-cased, so the unique index makes them
// unique case-insensitively. Views returned from here never carry the
// password hash or the TOTP secret.
import { publishChange } from '../db/changes.ts';
import { Prisma, type Db } from '../db/client.ts';
import type { Account } from '../generated/prisma/client.ts';
import { ConflictError, NotFoundError, ValidationError, VersionMismatchError } from '../kernel/errors.ts';
import { pageLimit, toPage, type Page, type PageRequest } from '../kernel/pagination.ts';
import { inTransaction, isUniqueViolation, type DbOrTx } from '../kernel/tx.ts';
import { PASSWORD_MAX_BYTES, hashPassword, rehashPassword, validatePassword, verifyAgainstDummy, verifyPassword } from './passwords.ts';
import {
  accountThrottleKey,
  checkAndReserve,
  loginThrottleKeys,
  recordFailure,
  recordSuccess,
  releaseReservation,
  resetThrottle,
  type LoginPolicy,
  type Lockout,
} from './throttle.ts';

export interface AccountView {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  disabled: boolean;
  hasPassword: boolean;
  mfaEnabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  lastLoginAt: Date | null;
  /** optimistic-concurrency counter (the admin API's ETag) */
  version: number;
}

export function toView(a: Account): AccountView {
  return {
    id: a.id,
    email: a.email,
    name: a.name,
    emailVerified: a.emailVerified,
    disabled: a.disabled,
    hasPassword: a.passwordHash !== null,
    mfaEnabled: a.totpEnabledAt !== null,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
    lastLoginAt: a.lastLoginAt,
    version: a.version,
  };
}

// ------------------------------------------------------------ validation

export const EMAIL_MAX_LENGTH = 254;
export const NAME_MAX_LENGTH = 200;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Trim + lower-case: the form emails are stored and looked up in. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Loose format check of a normalised email: one @, something each side, no spaces, ≤ 254 chars. */
export function isValidEmail(normalized: string): boolean {
  return normalized.length <= EMAIL_MAX_LENGTH && /^[^\s@]+@[^\s@]+$/.test(normalized) && !CONTROL.test(normalized);
}

/** Normalises and validates; throws ValidationError('email', …). */
export function validateEmail(email: unknown): string {
  if (typeof email !== 'string' || email.trim() === '') throw new ValidationError('email', 'is required');
  const e = normalizeEmail(email);
  if (e.length > EMAIL_MAX_LENGTH) throw new ValidationError('email', `must be at most ${EMAIL_MAX_LENGTH} characters`);
  if (!isValidEmail(e)) throw new ValidationError('email', 'is not a valid address (expected name@domain, no spaces)');
  return e;
}

function validateName(name: unknown): string | null {
  if (name === null) return null;
  if (typeof name !== 'string') throw new ValidationError('name', 'must be a string');
  const n = name.trim();
  if (n === '') throw new ValidationError('name', 'must not be empty');
  if ([...n].length > NAME_MAX_LENGTH) throw new ValidationError('name', `must be at most ${NAME_MAX_LENGTH} characters`);
  if (CONTROL.test(n)) throw new ValidationError('name', 'must not contain control characters');
  return n;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isAccountId(s: string): boolean {
  return UUID.test(s);
}

const duplicateEmail = () => new ConflictError('an account with this email already exists');

/** Shortened, single-line rendering of user input for error messages. */
function quote(s: string): string {
  const flat = s.replace(/[\u0000-\u001f\u007f]/g, '?'); // eslint-disable-line no-control-regex
  return `'${flat.length > 80 ? `${flat.slice(0, 77)}...` : flat}'`;
}

// ---------------------------------------------------------------- writes

export interface NewAccount {
  email: string;
  name?: string | null;
  /** omitted: the account has no password until one is set */
  password?: string;
  emailVerified?: boolean;
}

export async function createAccount(db: DbOrTx, input: NewAccount): Promise<AccountView> {
  const email = validateEmail(input.email);
  const name = input.name === undefined ? null : validateName(input.name);
  if (input.password !== undefined) validatePassword(input.password);
  // Refuse a duplicate before spending argon2 time; the unique index decides races.
  if (await db.account.findUnique({ where: { email }, select: { id: true } })) throw duplicateEmail();
  const passwordHash = input.password === undefined ? null : await hashPassword(input.password);
  try {
    const a = await db.account.create({ data: { email, name, passwordHash, emailVerified: input.emailVerified ?? false } });
    return toView(a);
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateEmail();
    throw err;
  }
}

export interface AccountPatch {
  email?: string;
  /** null clears the name */
  name?: string | null;
  emailVerified?: boolean;
  disabled?: boolean;
}

/**
 * Changes profile fields. With `expectedVersion`, refuses (VersionMismatchError)
 * if the account changed since that version. A new email is unverified unless
 * the patch says otherwise.
 */
export async function updateAccount(
  db: DbOrTx,
  id: string,
  patch: AccountPatch,
  opts: { expectedVersion?: number } = {},
): Promise<AccountView> {
  const data: Prisma.AccountUpdateManyMutationInput = {};
  if (patch.email !== undefined) {
    data.email = validateEmail(patch.email);
    data.emailVerified = false;
  }
  if (patch.name !== undefined) data.name = validateName(patch.name);
  if (patch.emailVerified !== undefined) data.emailVerified = patch.emailVerified;
  if (patch.disabled !== undefined) data.disabled = patch.disabled;
  return writeAccount(db, id, data, opts.expectedVersion);
}

export async function setDisabled(db: DbOrTx, id: string, disabled: boolean): Promise<AccountView> {
  return writeAccount(db, id, { disabled });
}

/** Sets (or replaces) the password and clears the account's login lock. */
export async function setPassword(db: DbOrTx, id: string, pw: string): Promise<AccountView> {
  validatePassword(pw);
  if (!isAccountId(id) || !(await db.account.findUnique({ where: { id }, select: { id: true } }))) throw notFound(id);
  const passwordHash = await hashPassword(pw);
  return inTransaction(db, async (tx) => {
    const view = await writeAccount(tx, id, { passwordHash });
    await resetThrottle(tx, accountThrottleKey(id));
    return view;
  });
}

export async function deleteAccount(db: DbOrTx, id: string): Promise<void> {
  if (!isAccountId(id)) throw notFound(id);
  await inTransaction(db, async (tx) => {
    const { count } = await tx.account.deleteMany({ where: { id } });
    if (count === 0) throw notFound(id);
    await publishChange(tx, 'account', id);
    await resetThrottle(tx, accountThrottleKey(id));
  });
}

/**
 * A successful login: sets lastLoginAt (unless `lastLogin: false`) and, with `rehash`, replaces the
 * password hash (only if it is still `previousHash`, when given, so a
 * password changed meanwhile is never overwritten). Does not bump `version`:
 * logins are not edits.
 */
/** Returns the account's last_login_at after the update (undefined when no account has that id). */
export async function recordLogin(
  db: Db,
  id: string,
  opts: { rehash?: string; previousHash?: string; lastLogin?: boolean } = {},
): Promise<Date | null | undefined> {
  const rehash = opts.rehash ?? null;
  const previous = opts.previousHash ?? null;
  const touch = opts.lastLogin ?? true;
  const rows = await db.$queryRaw<{ last_login_at: Date | null }[]>`
    UPDATE accounts SET last_login_at = CASE WHEN ${touch}::boolean THEN now() ELSE last_login_at END,
      password_hash = CASE WHEN ${rehash}::text IS NOT NULL AND (${previous}::text IS NULL OR password_hash = ${previous}::text)
                           THEN ${rehash}::text ELSE password_hash END
    WHERE id = ${id}::uuid
    RETURNING last_login_at`;
  return rows[0]?.last_login_at;
}

const notFound = (ref: string) => new NotFoundError('account', ref, `no account matches ${quote(ref)}`);

async function writeAccount(
  db: DbOrTx,
  id: string,
  data: Prisma.AccountUpdateManyMutationInput,
  expectedVersion?: number,
): Promise<AccountView> {
  if (!isAccountId(id)) throw notFound(id);
  try {
    return await inTransaction(db, async (tx) => {
      const { count } = await tx.account.updateMany({
        where: expectedVersion === undefined ? { id } : { id, version: expectedVersion },
        data: { ...data, version: { increment: 1 } },
      });
      if (count === 0) {
        const current = await tx.account.findUnique({ where: { id }, select: { version: true } });
        if (!current) throw notFound(id);
        throw new VersionMismatchError(current.version, `the account was changed meanwhile (now at version ${current.version}); reload and retry`);
      }
      await publishChange(tx, 'account', id);
      return toView(await tx.account.findUniqueOrThrow({ where: { id } }));
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateEmail();
    throw err;
  }
}

// ----------------------------------------------------------------- reads

/** How many people there are (the console's overview). */
export async function countAccounts(db: DbOrTx): Promise<number> {
  return db.account.count();
}

export async function getAccount(db: DbOrTx, id: string): Promise<AccountView> {
  const a = isAccountId(id) ? await db.account.findUnique({ where: { id } }) : null;
  if (!a) throw notFound(id);
  return toView(a);
}

export async function findAccountByEmail(db: DbOrTx, email: string): Promise<AccountView | undefined> {
  const e = normalizeEmail(email);
  if (!isValidEmail(e)) return undefined;
  const a = await db.account.findUnique({ where: { email: e } });
  return a ? toView(a) : undefined;
}

/** An account by email (anything with an @) or id; NotFoundError if none. */
export async function resolveAccount(db: DbOrTx, emailOrId: string): Promise<AccountView> {
  const ref = emailOrId.trim();
  const a = ref.includes('@') ? await findAccountByEmail(db, ref) : isAccountId(ref) ? await db.account.findUnique({ where: { id: ref } }).then((r) => (r ? toView(r) : undefined)) : undefined;
  if (!a) throw notFound(ref);
  return a;
}

export interface ListOptions extends PageRequest {
  /** only emails containing this text (case-insensitive) */
  email?: string;
}

/** Accounts ordered by email, one page at a time (src/kernel/pagination.ts). */
export async function listAccounts(db: DbOrTx, opts: ListOptions = {}): Promise<Page<AccountView>> {
  const limit = pageLimit(opts.limit);
  let after: string | undefined;
  if (opts.cursor !== undefined) {
    after = Buffer.from(opts.cursor, 'base64url').toString('utf8');
    if (opts.cursor === '' || Buffer.from(after, 'utf8').toString('base64url') !== opts.cursor) {
      throw new ValidationError('cursor', 'is not valid');
    }
  }
  const where: Prisma.AccountWhereInput = {};
  if (after !== undefined) where.email = { gt: after };
  if (opts.email !== undefined && opts.email.trim() !== '') {
    where.AND = [{ email: { contains: normalizeEmail(opts.email) } }];
  }
  const rows = await db.account.findMany({ where, orderBy: { email: 'asc' }, take: limit + 1 });
  return toPage(rows.map(toView), limit, (a) => Buffer.from(a.email, 'utf8').toString('base64url'));
}

// ----------------------------------------------------------------- login

export type LoginEventType = 'login.failure' | 'login.locked' | 'login.success';

export interface LoginEvent {
  /**
   * login.failure: the password was checked and refused (or the account is
   * disabled); login.locked: refused without checking, the account or the
   * address is locked; login.success: logged in.
   */
  type: LoginEventType;
  accountId?: string;
  /** the login name as given, normalised (and cut to 320 characters) */
  email: string;
  ip?: string;
  /** for failures and refusals: why (never shown to the person logging in) */
  reason?: 'invalid' | 'disabled' | 'locked';
  /**
   * Which step the event is about: absent for the password, 'otp' or
   * 'recovery' for the second factor (mfa.ts; a failed second factor is
   * 'second-factor', since the kind of a wrong code is not known).
   */
  factor?: 'otp' | 'recovery' | 'second-factor' | 'passkey';
  /** login.failure: the lockouts this failure started */
  lockouts?: Lockout[];
  /** login.locked: when to try again */
  retryAfterSeconds?: number;
  /** the upstream identity provider (its name) the person signed in through, if any */
  idp?: string;
}

export interface AuthenticateOptions {
  ip?: string;
  policy: LoginPolicy;
  /** called for every outcome (audit, metrics); errors it throws are ignored */
  onEvent?: (e: LoginEvent) => void | Promise<void>;
  /**
   * Asked once the password is right: does this login go on to a second
   * factor (mfa.ts)? Then it is not complete yet: the attempt's reservation
   * is given back without clearing the account's failures (so wrong second
   * factors keep counting across password attempts), and lastLoginAt and
   * login.success wait for the second factor (completeLogin in mfa.ts).
   */
  secondFactor?: (account: AccountView) => boolean | Promise<boolean>;
}

export type AuthenticateResult =
  | { ok: true; account: AccountView; /** the password was right; the login needs a second factor */ secondFactor?: true }
  | { ok: false; reason: 'invalid' | 'locked' | 'disabled'; retryAfterSeconds?: number };

function emit(fn: AuthenticateOptions['onEvent'], e: LoginEvent): void {
  if (!fn) return;
  try {
    const r = fn(e);
    if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {});
  } catch {
    // auditing must not break logins
  }
}

/**
 * The login check. Every path does the same work (one lookup, one
 * reservation, one argon2 verification, one outcome write), so the response
 * time does not tell whether an email exists. The caller shows one generic
 * message for every non-ok reason.
 */
export async function authenticate(db: Db, email: string, password: string, opts: AuthenticateOptions): Promise<AuthenticateResult> {
  const normalized = typeof email === 'string' ? normalizeEmail(email) : '';
  const pw = typeof password === 'string' ? password : '';
  const base = { email: normalized.slice(0, 320), ...(opts.ip ? { ip: opts.ip } : {}) };
  const record = isValidEmail(normalized) ? await db.account.findUnique({ where: { email: normalized } }) : null;
  const accountId = record?.id;
  const who = accountId ? { accountId } : {};

  const keys = loginThrottleKeys(opts.policy, { accountId, normalizedEmail: normalized, ip: opts.ip });
  const reserved = await checkAndReserve(db, keys, opts.policy);
  if (!reserved.ok) {
    emit(opts.onEvent, { type: 'login.locked', ...who, ...base, reason: 'locked', retryAfterSeconds: reserved.retryAfterSeconds });
    return { ok: false, reason: 'locked', retryAfterSeconds: reserved.retryAfterSeconds };
  }

  // Longer than any password the policy allows: wrong, but spend the same time.
  const tooLong = Buffer.byteLength(pw, 'utf8') > PASSWORD_MAX_BYTES;
  let ok = false;
  let needsRehash = false;
  if (record && !record.disabled && record.passwordHash && !tooLong) {
    ({ ok, needsRehash } = await verifyPassword(record.passwordHash, pw));
  } else {
    await verifyAgainstDummy(tooLong ? pw.slice(0, PASSWORD_MAX_BYTES) : pw);
  }

  if (!ok) {
    const reason = record?.disabled ? 'disabled' : 'invalid';
    const lockouts = await recordFailure(db, reserved.reservation, opts.policy);
    emit(opts.onEvent, { type: 'login.failure', ...who, ...base, reason, ...(lockouts.length > 0 ? { lockouts } : {}) });
    return { ok: false, reason };
  }

  const account = record!;
  const pending = (await opts.secondFactor?.(toView(account))) === true;
  if (pending) await releaseReservation(db, reserved.reservation);
  else await recordSuccess(db, reserved.reservation);
  let rehash: string | undefined;
  if (needsRehash) rehash = await rehashPassword(pw).catch(() => undefined);
  let lastLoginAt = account.lastLoginAt;
  if (!pending || rehash) {
    const at = await recordLogin(db, account.id, { ...(rehash ? { rehash, previousHash: account.passwordHash! } : {}), lastLogin: !pending });
    if (at !== undefined) lastLoginAt = at;
  }
  if (pending) return { ok: true, account: toView(account), secondFactor: true };
  emit(opts.onEvent, { type: 'login.success', accountId: account.id, ...base });
  return { ok: true, account: { ...toView(account), lastLoginAt } };
}
