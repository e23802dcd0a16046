// Two-step verification: TOTP (RFC 6238) as an optional second factor, with
// single-use recovery codes.
//
// Storage:
//   accounts.totp_secret      the base32 secret, AES-256-GCM under KEY_ENCRYPTION_KEY
//                             (sealString below; the account id is the additional
//                             authenticated data, so a blob copied onto another
//                             account does not open). Set only once enrolment is
//                             confirmed with a current code.
//   accounts.totp_enabled_at  when enrolment was confirmed (AccountView.mfaEnabled)
//   accounts.totp_last_step   the last TOTP time step accepted (replay guard)
//   accounts.mfa_enrolment_until
//                             until when a first authenticator may be enrolled with
//                             only the password (the enrolment window, below)
//   recovery_codes            10 per enrolment, sha-256 digests only; used_at once used
//
// Single use, under races and across instances: a code is accepted for the
// current 30-second step ±1 (clock drift), and only if its step is later than
// the last step accepted for the account: a code cannot be used twice, and
// once a code is used, earlier ones are refused too. Claiming the step is one
// conditional UPDATE of the account row (… WHERE totp_last_step < step
// RETURNING), and using a recovery code one conditional UPDATE of its row
// (… WHERE used_at IS NULL RETURNING): PostgreSQL lets exactly one of any
// number of parallel statements win, whichever instance sends them.
//
// The enrolment window: when a sign-in needs a second factor and the account
// has none, whoever knows the password could set up their own authenticator
// and lock the owner out. So a first enrolment with only the password is
// allowed only until accounts.mfa_enrolment_until: opened for
// MFA_ENROLMENT_WINDOW_DAYS when the account is created (a column default)
// and by resetMfa (an administrator), closed by the enrolment itself.
// Outside it the person has to ask an administrator. (Invitations, issue 14,
// are meant to replace this window for invited accounts.)
//
// Second-factor attempts go through the login throttle (throttle.ts) exactly
// like passwords: reserved before the check on the account and address keys,
// a wrong code is a failure, a locked account is refused without checking, a
// right code completes the login and resets the account key. authenticate()
// (store.ts) does not reset the account key when a second factor follows, so
// knowing the password does not buy fresh guesses at the code.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import { publishChange } from '../db/changes.ts';
import type { Db, Prisma } from '../db/client.ts';
import { NotFoundError } from '../kernel/errors.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import { isAccountId, recordLogin, toView, type AccountView, type LoginEvent } from './store.ts';
import {
  accountThrottleKey,
  checkAndReserve,
  loginThrottleKeys,
  recordFailure,
  recordSuccess,
  releaseReservation,
  resetThrottle,
  type LoginPolicy,
} from './throttle.ts';

export const TOTP_PERIOD_SECONDS = 30;
/** steps accepted either side of the current one */
export const TOTP_WINDOW_STEPS = 1;
export const TOTP_DIGITS = 6;
export const RECOVERY_CODE_COUNT = 10;

// ------------------------------------------------------- sealed strings

const SEAL_VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

function checkKek(kek: Buffer): void {
  if (kek.length !== 32) throw new Error(`KEY_ENCRYPTION_KEY must be 32 bytes, got ${kek.length}`);
}

/**
 * AES-256-GCM: `v1.<iv>.<tag>.<ciphertext>` (base64url parts). `aad` binds
 * the blob to where it is stored: it opens only with the same `aad`.
 */
export function sealString(plaintext: string, kek: Buffer, aad: string): string {
  checkKek(kek);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [SEAL_VERSION, ...[iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64url'))].join('.');
}

/** The plaintext, or undefined when the key, the `aad` or the bytes are wrong. */
export function openString(blob: string, kek: Buffer, aad: string): string | undefined {
  checkKek(kek);
  const [version, ...rest] = blob.split('.');
  const [iv, tag, ciphertext] = rest.map((p) => Buffer.from(p, 'base64url'));
  if (version !== SEAL_VERSION || rest.length !== 3 || iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || !ciphertext) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

const totpAad = (accountId: string) => `gatehouse/totp/v1:${accountId}`;

/** The stored secret could not be decrypted: a wrong KEY_ENCRYPTION_KEY or an altered row. */
export class TotpSecretError extends Error {
  override readonly name = 'TotpSecretError';
  constructor(accountId: string) {
    super(`cannot decrypt the TOTP secret of account ${accountId}: KEY_ENCRYPTION_KEY is wrong or the row was altered`);
  }
}

// ---------------------------------------------------------------- TOTP

/** A new random secret (160 bits, base32), for an enrolment. */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** The otpauth:// URI authenticator apps read from the QR code. */
export function totpUri(secret: string, label: string, issuer = 'Gatehouse'): string {
  return generateURI({ issuer, label, secret, period: TOTP_PERIOD_SECONDS, digits: TOTP_DIGITS, algorithm: 'sha1' });
}

/** "123 456", " 123456 " → "123456"; undefined unless it is 6 digits. */
export function normalizeTotpCode(input: unknown): string | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined;
  const code = input.replace(/[\s-]/g, '');
  return /^[0-9]{6}$/.test(code) ? code : undefined;
}

/** The time step `code` belongs to (the current one ±1), or undefined. */
export async function matchTotp(secret: string, code: string, epoch = Math.floor(Date.now() / 1000)): Promise<number | undefined> {
  const token = normalizeTotpCode(code);
  if (!token) return undefined;
  const r = await verify({
    secret,
    token,
    epoch,
    period: TOTP_PERIOD_SECONDS,
    digits: TOTP_DIGITS,
    algorithm: 'sha1',
    epochTolerance: TOTP_PERIOD_SECONDS * TOTP_WINDOW_STEPS,
  });
  return r.valid && 'timeStep' in r ? r.timeStep : undefined;
}

/**
 * Records `step` as the account's last accepted TOTP step, if it is later
 * than the one recorded and the account still has the authenticator whose
 * sealed secret is `sealed` (not reset or replaced meanwhile) and is enabled.
 * One statement: of parallel claims of one step, exactly one returns true.
 */
export async function claimTotpStep(db: Db, accountId: string, sealed: string, step: number): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    UPDATE accounts SET totp_last_step = ${step}::int
    WHERE id = ${accountId}::uuid AND NOT disabled AND totp_enabled_at IS NOT NULL AND totp_secret = ${sealed}
      AND (totp_last_step IS NULL OR totp_last_step < ${step}::int)
    RETURNING id`;
  return rows.length === 1;
}

// ------------------------------------------------------- recovery codes

/** Crockford's base32 (no i, l, o, u): 5 bits a character. */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const RECOVERY_CHARS = 12;

/** `count` new codes, `xxxx-xxxx-xxxx` (60 random bits each). */
export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(RECOVERY_CHARS);
    const chars = [...bytes].map((b) => RECOVERY_ALPHABET[b & 31]!).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8)}`;
  });
}

/** Case, spaces and dashes do not matter; i/l read as 1 and o as 0. Undefined when it cannot be a code. */
export function normalizeRecoveryCode(input: unknown): string | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined;
  const code = input
    .toLowerCase()
    .replace(/[\s-]/g, '')
    .replace(/[il]/g, '1')
    .replace(/o/g, '0');
  return code.length === RECOVERY_CHARS && [...code].every((c) => RECOVERY_ALPHABET.includes(c)) ? code : undefined;
}

/** What recovery_codes.digest holds: sha-256 (hex) of the normalised code, with the account id. */
export function recoveryCodeDigest(accountId: string, code: string): string {
  const normalized = normalizeRecoveryCode(code) ?? code;
  return createHash('sha256').update(`gatehouse/recovery/v1:${accountId}:${normalized}`).digest('hex');
}

/**
 * Marks the code used if it is one of the account's unused codes. One
 * statement: of parallel uses of one code, exactly one returns true.
 */
async function consumeRecoveryCode(db: Db, accountId: string, normalized: string): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    UPDATE recovery_codes SET used_at = now()
    WHERE account_id = ${accountId}::uuid AND digest = ${recoveryCodeDigest(accountId, normalized)} AND used_at IS NULL
    RETURNING id`;
  return rows.length === 1;
}

// ------------------------------------------------------------ events

function emit(fn: ((e: LoginEvent) => void | Promise<void>) | undefined, e: LoginEvent): void {
  if (!fn) return;
  try {
    const r = fn(e);
    if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {});
  } catch {
    // auditing must not break logins
  }
}

export interface SecondFactorOptions {
  ip?: string;
  policy: LoginPolicy;
  /** KEY_ENCRYPTION_KEY */
  kek: Buffer;
  /** called for every outcome, as authenticate() does; errors it throws are ignored */
  onEvent?: (e: LoginEvent) => void | Promise<void>;
}

// ---------------------------------------------------------- enrolment

/** How long an enrolment window stays open (also the column default in prisma/schema.prisma). */
export const MFA_ENROLMENT_WINDOW_DAYS = 7;

/**
 * Is the account's enrolment window open: may a first authenticator be set
 * up with only the password? (Closed for unknown accounts.)
 */
export async function mfaEnrolmentOpen(db: Db, accountId: string): Promise<boolean> {
  if (!isAccountId(accountId)) return false;
  const rows = await db.$queryRaw<{ open: boolean }[]>`
    SELECT coalesce(mfa_enrolment_until > now(), false) AS open FROM accounts WHERE id = ${accountId}::uuid`;
  return rows[0]?.open === true;
}

export type EnrolmentResult =
  | { ok: true; account: AccountView; recoveryCodes: string[] }
  /**
   * invalid: the code does not match the secret; enrolled: the account has MFA already;
   * no-window: its enrolment window is closed (an administrator must reset MFA);
   * unavailable: no such (enabled) account
   */
  | { ok: false; reason: 'invalid' | 'enrolled' | 'no-window' | 'unavailable' };

export interface EnrolmentOptions extends Omit<SecondFactorOptions, 'policy'> {
  /** Runs inside the enrolment's transaction once it is written (for its audit event): both or neither. */
  inTransaction?: (tx: Prisma.TransactionClient, account: AccountView) => Promise<void>;
  /**
   * false: the caller has checked that the person signed in with a second
   * factor they already have (the account page), so the enrolment window
   * does not apply. Default true: only inside the window.
   */
  requireWindow?: boolean;
}

/**
 * Confirms an enrolment: `code` must be a current code of `secret` (the one
 * the person scanned), and the account's enrolment window must be open
 * (unless opts.requireWindow is false: see EnrolmentOptions). Only
 * then, in one transaction, is the secret stored (encrypted), MFA enabled,
 * the window closed, the confirming code's step claimed (so it cannot be
 * replayed to log in) and 10 recovery codes made (replacing any old ones);
 * the codes are returned here once and stored only as digests. This
 * completes a login: the account's throttle key is reset, lastLoginAt set
 * and login.success (factor 'otp') reported.
 */
export async function confirmTotpEnrolment(
  db: Db,
  input: { accountId: string; secret: string; code: string },
  opts: EnrolmentOptions,
): Promise<EnrolmentResult> {
  const { accountId, secret } = input;
  if (!isAccountId(accountId)) return { ok: false, reason: 'unavailable' };
  const step = await matchTotp(secret, input.code);
  if (step === undefined) return { ok: false, reason: 'invalid' };
  const codes = generateRecoveryCodes();
  const sealed = sealString(secret, opts.kek, totpAad(accountId));
  const windowNeeded = opts.requireWindow !== false;
  const account = await db.$transaction(async (tx) => {
    // The window is checked by the same statement that enrols (database clock).
    const rows = await tx.$queryRaw<{ id: string }[]>`
      UPDATE accounts SET totp_secret = ${sealed}, totp_enabled_at = now(), totp_last_step = ${step}::int,
        mfa_enrolment_until = NULL, version = version + 1, updated_at = now()
      WHERE id = ${accountId}::uuid AND totp_enabled_at IS NULL AND NOT disabled
        AND (NOT ${windowNeeded}::boolean OR mfa_enrolment_until > now())
      RETURNING id`;
    if (rows.length === 0) return undefined;
    await tx.recoveryCode.deleteMany({ where: { accountId } });
    await tx.recoveryCode.createMany({ data: codes.map((c) => ({ accountId, digest: recoveryCodeDigest(accountId, c) })) });
    await publishChange(tx, 'account', accountId);
    const view = toView(await tx.account.findUniqueOrThrow({ where: { id: accountId } }));
    await opts.inTransaction?.(tx, view);
    return view;
  });
  if (!account) return { ok: false, reason: await whyNotEnrolled(db, accountId) };
  await completeLogin(db, account.id, account.email, 'otp', opts);
  return { ok: true, account, recoveryCodes: codes };
}

async function whyNotEnrolled(db: Db, accountId: string): Promise<'enrolled' | 'no-window' | 'unavailable'> {
  const [row] = await db.$queryRaw<{ disabled: boolean; enrolled: boolean; open: boolean }[]>`
    SELECT disabled, totp_enabled_at IS NOT NULL AS enrolled, coalesce(mfa_enrolment_until > now(), false) AS open
    FROM accounts WHERE id = ${accountId}::uuid`;
  if (!row || row.disabled) return 'unavailable';
  return row.enrolled ? 'enrolled' : row.open ? 'unavailable' : 'no-window';
}

async function completeLogin(
  db: Db,
  accountId: string,
  email: string,
  factor: 'otp' | 'recovery',
  opts: Pick<SecondFactorOptions, 'ip' | 'onEvent'>,
): Promise<void> {
  await resetThrottle(db, accountThrottleKey(accountId));
  await recordLogin(db, accountId);
  emit(opts.onEvent, { type: 'login.success', accountId, email: email.slice(0, 320), ...(opts.ip ? { ip: opts.ip } : {}), factor });
}

// -------------------------------------------------------- verification

export type SecondFactorResult =
  | { ok: true; method: 'otp' | 'recovery'; account: AccountView }
  | { ok: false; reason: 'invalid' | 'locked' | 'disabled'; retryAfterSeconds?: number };

/**
 * The second factor of a login whose password was right: a current TOTP
 * code (not used before) or an unused recovery code (used up now). Counts
 * against the login throttle like a password; the caller shows one generic
 * message for every non-ok reason.
 */
export async function verifySecondFactor(db: Db, accountId: string, code: string, opts: SecondFactorOptions): Promise<SecondFactorResult> {
  const record = isAccountId(accountId) ? await db.account.findUnique({ where: { id: accountId } }) : null;
  if (!record) return { ok: false, reason: 'invalid' };
  const base = { accountId, email: record.email.slice(0, 320), ...(opts.ip ? { ip: opts.ip } : {}) };

  const keys = loginThrottleKeys(opts.policy, { accountId, normalizedEmail: record.email, ...(opts.ip ? { ip: opts.ip } : {}) });
  const reserved = await checkAndReserve(db, keys, opts.policy);
  if (!reserved.ok) {
    emit(opts.onEvent, { type: 'login.locked', ...base, reason: 'locked', factor: 'second-factor', retryAfterSeconds: reserved.retryAfterSeconds });
    return { ok: false, reason: 'locked', retryAfterSeconds: reserved.retryAfterSeconds };
  }

  let method: 'otp' | 'recovery' | undefined;
  if (!record.disabled && record.totpEnabledAt && record.totpSecret) {
    const totp = normalizeTotpCode(code);
    if (totp) {
      const secret = openString(record.totpSecret, opts.kek, totpAad(accountId));
      if (secret === undefined) {
        await releaseReservation(db, reserved.reservation);
        throw new TotpSecretError(accountId);
      }
      const step = await matchTotp(secret, totp);
      if (step !== undefined && (await claimTotpStep(db, accountId, record.totpSecret, step))) method = 'otp';
    } else {
      const recovery = normalizeRecoveryCode(code);
      if (recovery && (await consumeRecoveryCode(db, accountId, recovery))) method = 'recovery';
    }
  }

  if (!method) {
    const reason = record.disabled ? 'disabled' : 'invalid';
    const lockouts = await recordFailure(db, reserved.reservation, opts.policy);
    emit(opts.onEvent, { type: 'login.failure', ...base, reason, factor: 'second-factor', ...(lockouts.length > 0 ? { lockouts } : {}) });
    return { ok: false, reason };
  }

  await recordSuccess(db, reserved.reservation);
  await recordLogin(db, accountId);
  emit(opts.onEvent, { type: 'login.success', ...base, factor: method });
  const fresh = await db.account.findUnique({ where: { id: accountId } });
  return { ok: true, method, account: toView(fresh ?? record) };
}

// ------------------------------------------------------- administration

/**
 * Turns MFA off for an account (administrator action, e.g. a lost phone):
 * clears the TOTP secret, the replay record and every recovery code, and
 * opens a new enrolment window of MFA_ENROLMENT_WINDOW_DAYS: the person
 * enrols again, with their password, at their next sign-in that requires
 * MFA within that time. Returns the account and the window's end.
 */
export async function resetMfa(db: DbOrTx, accountId: string): Promise<AccountView & { mfaEnrolmentUntil: Date }> {
  const notFound = () => new NotFoundError('account', accountId, `no account matches '${accountId}'`);
  if (!isAccountId(accountId)) throw notFound();
  return inTransaction(db, async (tx) => {
    const rows = await tx.$queryRaw<{ until: Date }[]>`
      UPDATE accounts SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL,
        mfa_enrolment_until = now() + make_interval(days => ${MFA_ENROLMENT_WINDOW_DAYS}::int),
        version = version + 1, updated_at = now()
      WHERE id = ${accountId}::uuid
      RETURNING mfa_enrolment_until AS until`;
    if (!rows[0]) throw notFound();
    await tx.recoveryCode.deleteMany({ where: { accountId } });
    await publishChange(tx, 'account', accountId);
    return { ...toView(await tx.account.findUniqueOrThrow({ where: { id: accountId } })), mfaEnrolmentUntil: rows[0].until };
  });
}

/** New recovery codes replace all the old ones (used or not); returned once, stored as digests. */
export async function replaceRecoveryCodes(db: DbOrTx, accountId: string): Promise<string[]> {
  if (!isAccountId(accountId)) throw new NotFoundError('account', accountId, `no account matches '${accountId}'`);
  const codes = generateRecoveryCodes();
  await inTransaction(db, async (tx) => {
    await tx.recoveryCode.deleteMany({ where: { accountId } });
    await tx.recoveryCode.createMany({ data: codes.map((c) => ({ accountId, digest: recoveryCodeDigest(accountId, c) })) });
  });
  return codes;
}

/** How many unused recovery codes the person has. */
export async function unusedRecoveryCodes(db: DbOrTx, accountId: string): Promise<number> {
  return isAccountId(accountId) ? db.recoveryCode.count({ where: { accountId, usedAt: null } }) : 0;
}

/** Removes the authenticator app (not the recovery codes, nor the passkeys); no enrolment window is opened. */
export async function removeTotp(db: DbOrTx, accountId: string): Promise<AccountView> {
  if (!isAccountId(accountId)) throw new NotFoundError('account', accountId, `no account matches '${accountId}'`);
  return inTransaction(db, async (tx) => {
    const { count } = await tx.account.updateMany({
      where: { id: accountId },
      data: { totpSecret: null, totpEnabledAt: null, totpLastStep: null, version: { increment: 1 } },
    });
    if (count === 0) throw new NotFoundError('account', accountId, `no account matches '${accountId}'`);
    await publishChange(tx, 'account', accountId);
    return toView(await tx.account.findUniqueOrThrow({ where: { id: accountId } }));
  });
}
