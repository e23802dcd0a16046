// Passkeys (WebAuthn credentials) of people, in the `passkeys` table, and the
// ceremonies around them, done with @simplewebauthn/server.
//
// The relying party is the issuer: RP ID = the issuer's host name, expected
// origin = the issuer's origin. A passkey is registered from the account page
// (resident key and user verification required, so it can sign in without a
// password); it is used
//   - passwordless, on the login page (discoverable credential, browser
//     autofill): user verification required, so it is two factors at once
//     (possession + the PIN or biometric that unlocks it);
//   - as the second factor after a password (user verification preferred).
//
// Challenges are single-use: each is stored as a sha-256 digest with what it
// was issued for (purpose, the interaction or account-page session it is
// bound to, and the account for a second factor or a registration), and an
// answer is only checked after a DELETE … RETURNING took its challenge away,
// so two answers racing for one challenge cannot both pass. They expire after
// CHALLENGE_TTL_SECONDS.
//
// Counters: an authenticator that keeps a signature counter must present a
// larger one each time. A counter that does not grow (while either side is
// non-zero) means two copies of the key exist: the sign-in is refused and
// `passkey.clone_suspected` is audited. The counter is advanced with a
// conditional UPDATE, so two uses of one assertion cannot both pass either.
import { createHash, randomBytes } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { recordAudit } from '../audit/audit.ts';
import { publishChange } from '../db/changes.ts';
import type { Db } from '../db/client.ts';
import type { Passkey } from '../generated/prisma/client.ts';
import { NotFoundError, ValidationError } from '../kernel/errors.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { isAccountId, recordLogin, type LoginEvent } from './store.ts';
import { accountThrottleKey, resetThrottle } from './throttle.ts';

export const CHALLENGE_TTL_SECONDS = 300;
export const PASSKEY_NAME_MAX_LENGTH = 60;
export const MAX_PASSKEYS_PER_ACCOUNT = 20;
/** an answer larger than this is refused before parsing */
export const MAX_RESPONSE_BYTES = 16 * 1024;

export type ChallengePurpose = 'login' | 'mfa' | 'register';

export interface RelyingParty {
  rpID: string;
  rpName: string;
  origin: string;
}

export function relyingPartyOf(issuer: string): RelyingParty {
  const u = new URL(issuer);
  return { rpID: u.hostname, rpName: 'Gatehouse', origin: u.origin };
}

export interface PasskeyView {
  id: string;
  accountId: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  backedUp: boolean;
  deviceType: string;
  transports: string[];
}

export function toPasskeyView(p: Passkey): PasskeyView {
  return {
    id: p.id,
    accountId: p.accountId,
    name: p.name,
    createdAt: p.createdAt,
    lastUsedAt: p.lastUsedAt,
    backedUp: p.backedUp,
    deviceType: p.deviceType,
    transports: p.transports,
  };
}

const digestOf = (challenge: string) => createHash('sha256').update(challenge, 'utf8').digest('base64url');

/** The WebAuthn user handle of an account: its id's bytes (no personal data). */
export const userHandleOf = (accountId: string) => Buffer.from(accountId, 'utf8').toString('base64url');

// ------------------------------------------------------------- storage

export async function listPasskeys(db: DbOrTx, accountId: string): Promise<PasskeyView[]> {
  if (!isAccountId(accountId)) return [];
  const rows = await db.passkey.findMany({ where: { accountId }, orderBy: { createdAt: 'asc' } });
  return rows.map(toPasskeyView);
}

export async function countPasskeys(db: DbOrTx, accountId: string): Promise<number> {
  return isAccountId(accountId) ? db.passkey.count({ where: { accountId } }) : 0;
}

const passkeyNotFound = (id: string) => new NotFoundError('passkey', id, 'no such passkey on this account');

export async function getPasskey(db: DbOrTx, accountId: string, id: string): Promise<PasskeyView> {
  const row = isAccountId(id) && isAccountId(accountId) ? await db.passkey.findFirst({ where: { id, accountId } }) : null;
  if (!row) throw passkeyNotFound(id);
  return toPasskeyView(row);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function validatePasskeyName(name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '') throw new ValidationError('name', 'is required');
  const n = name.trim();
  if ([...n].length > PASSKEY_NAME_MAX_LENGTH) throw new ValidationError('name', `must be at most ${PASSKEY_NAME_MAX_LENGTH} characters`);
  if (CONTROL.test(n)) throw new ValidationError('name', 'must not contain control characters');
  return n;
}

export async function renamePasskey(db: DbOrTx, accountId: string, id: string, name: string): Promise<PasskeyView> {
  const n = validatePasskeyName(name);
  await getPasskey(db, accountId, id);
  const row = await db.passkey.update({ where: { id }, data: { name: n } });
  await publishChange(db, 'account', accountId);
  return toPasskeyView(row);
}

export async function deletePasskey(db: DbOrTx, accountId: string, id: string): Promise<PasskeyView> {
  const before = await getPasskey(db, accountId, id);
  await db.passkey.deleteMany({ where: { id, accountId } });
  await publishChange(db, 'account', accountId);
  return before;
}

/** A verified registration, ready to be stored (writes.ts addPasskeyAs). */
export interface NewPasskey {
  accountId: string;
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  name: string;
  backedUp: boolean;
  deviceType: string;
}

export async function insertPasskey(db: DbOrTx, p: NewPasskey): Promise<PasskeyView> {
  const row = await db.passkey.create({
    data: { ...p, name: validatePasskeyName(p.name), counter: BigInt(p.counter) },
  });
  await publishChange(db, 'account', p.accountId);
  return toPasskeyView(row);
}

// ----------------------------------------------------------- challenges

interface Binding {
  purpose: ChallengePurpose;
  /** the interaction uid, or the account-page session */
  binding: string;
  /** mfa and register: the account it is for */
  accountId?: string;
}

async function storeChallenge(db: DbOrTx, challenge: string, b: Binding): Promise<void> {
  await db.webauthnChallenge.create({
    data: {
      digest: digestOf(challenge),
      purpose: b.purpose,
      binding: b.binding,
      accountId: b.accountId ?? null,
      expiresAt: new Date(Date.now() + CHALLENGE_TTL_SECONDS * 1000),
    },
  });
}

/** Takes the challenge away if it was issued for exactly this; true once, false ever after. */
export async function consumeChallenge(db: DbOrTx, challenge: string, b: Binding): Promise<boolean> {
  const rows = await db.$queryRaw<{ digest: string }[]>`
    DELETE FROM webauthn_challenges
    WHERE digest = ${digestOf(challenge)} AND purpose = ${b.purpose} AND binding = ${b.binding}
      AND account_id IS NOT DISTINCT FROM ${b.accountId ?? null}::uuid AND expires_at > now()
    RETURNING digest`;
  return rows.length === 1;
}

/** Cleanup step: expired challenges. */
export async function pruneWebauthnChallenges(db: Db, batchSize: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM webauthn_challenges WHERE digest IN (
      SELECT digest FROM webauthn_challenges WHERE expires_at < now() LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)`;
}

// ------------------------------------------------------------- options

/** Options for a passwordless sign-in (any discoverable credential; user verification required). */
export async function loginOptions(db: DbOrTx, rp: RelyingParty, binding: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const options = await generateAuthenticationOptions({ rpID: rp.rpID, userVerification: 'required', timeout: CHALLENGE_TTL_SECONDS * 1000 });
  await storeChallenge(db, options.challenge, { purpose: 'login', binding });
  return options;
}

/** Options for a passkey as the second factor: the account's own credentials. */
export async function secondFactorOptions(db: DbOrTx, rp: RelyingParty, binding: string, accountId: string): Promise<PublicKeyCredentialRequestOptionsJSON | undefined> {
  const rows = await db.passkey.findMany({ where: { accountId }, select: { credentialId: true, transports: true } });
  if (rows.length === 0) return undefined;
  const options = await generateAuthenticationOptions({
    rpID: rp.rpID,
    userVerification: 'preferred',
    timeout: CHALLENGE_TTL_SECONDS * 1000,
    allowCredentials: rows.map((r) => ({ id: r.credentialId, transports: r.transports as AuthenticatorTransportFuture[] })),
  });
  await storeChallenge(db, options.challenge, { purpose: 'mfa', binding, accountId });
  return options;
}

/** Options to register a new passkey for the account (discoverable, user-verifying). */
export async function registrationOptions(
  db: DbOrTx,
  rp: RelyingParty,
  binding: string,
  account: { id: string; email: string; name: string | null },
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await db.passkey.findMany({ where: { accountId: account.id }, select: { credentialId: true, transports: true } });
  if (existing.length >= MAX_PASSKEYS_PER_ACCOUNT) throw new ValidationError('passkey', `an account may have at most ${MAX_PASSKEYS_PER_ACCOUNT} passkeys`);
  const options = await generateRegistrationOptions({
    rpName: rp.rpName,
    rpID: rp.rpID,
    userName: account.email,
    userDisplayName: account.name ?? account.email,
    userID: Buffer.from(account.id, 'utf8'),
    attestationType: 'none',
    timeout: CHALLENGE_TTL_SECONDS * 1000,
    excludeCredentials: existing.map((r) => ({ id: r.credentialId, transports: r.transports as AuthenticatorTransportFuture[] })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    supportedAlgorithmIDs: [-7, -257, -8],
  });
  await storeChallenge(db, options.challenge, { purpose: 'register', binding, accountId: account.id });
  return options;
}

// --------------------------------------------------------------- answers

/** The browser's JSON answer (a form field), parsed; undefined when it is not one. */
function parseResponse(raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RESPONSE_BYTES) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const r = v as Record<string, unknown>;
    if (typeof r.id !== 'string' || typeof r.rawId !== 'string' || r.type !== 'public-key') return undefined;
    if (!r.response || typeof r.response !== 'object') return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/** The challenge the browser signed (from clientDataJSON), or undefined. */
function challengeOf(r: Record<string, unknown>): string | undefined {
  const clientDataJSON = (r.response as Record<string, unknown>).clientDataJSON;
  if (typeof clientDataJSON !== 'string' || clientDataJSON.length > MAX_RESPONSE_BYTES) return undefined;
  try {
    const c = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof c.challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(c.challenge) ? c.challenge : undefined;
  } catch {
    return undefined;
  }
}

export type RegistrationResult = { ok: true; passkey: NewPasskey } | { ok: false; reason: 'malformed' | 'challenge' | 'invalid' | 'duplicate' };

/** Checks a registration answer (its challenge consumed first); the caller stores the passkey. */
export async function verifyRegistration(
  db: DbOrTx,
  rp: RelyingParty,
  input: { binding: string; accountId: string; response: unknown; name: string },
): Promise<RegistrationResult> {
  const r = parseResponse(input.response);
  const challenge = r && challengeOf(r);
  if (!r || !challenge) return { ok: false, reason: 'malformed' };
  if (!(await consumeChallenge(db, challenge, { purpose: 'register', binding: input.binding, accountId: input.accountId }))) return { ok: false, reason: 'challenge' };
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response: r as unknown as RegistrationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpID,
      requireUserVerification: true,
      supportedAlgorithmIDs: [-7, -257, -8],
    });
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  if (!verified.verified) return { ok: false, reason: 'invalid' };
  const info = verified.registrationInfo;
  if (await db.passkey.findUnique({ where: { credentialId: info.credential.id }, select: { id: true } })) return { ok: false, reason: 'duplicate' };
  return {
    ok: true,
    passkey: {
      accountId: input.accountId,
      credentialId: info.credential.id,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports: (info.credential.transports ?? []).filter((t) => typeof t === 'string').slice(0, 8),
      name: input.name,
      backedUp: info.credentialBackedUp,
      deviceType: info.credentialDeviceType,
    },
  };
}

export type AssertionResult =
  | { ok: true; accountId: string; passkey: PasskeyView; userVerified: boolean }
  | { ok: false; reason: 'malformed' | 'challenge' | 'unknown' | 'invalid' | 'cloned' | 'disabled'; accountId?: string };

export interface AssertionInput {
  purpose: 'login' | 'mfa';
  binding: string;
  /** mfa: the account whose password was accepted; the passkey must be theirs */
  accountId?: string;
  response: unknown;
  /** for the audit event of a suspected clone */
  ip?: string;
  requestId?: string | null;
}

/**
 * Checks a sign-in answer: its challenge consumed first, then the credential
 * (known; the account's own for a second factor; the user handle matching),
 * the signature (user verification required for a passwordless sign-in), and
 * the counter (a clone is refused and audited).
 */
export async function verifyAssertion(db: Db, rp: RelyingParty, input: AssertionInput): Promise<AssertionResult> {
  const r = parseResponse(input.response);
  const challenge = r && challengeOf(r);
  if (!r || !challenge) return { ok: false, reason: 'malformed' };
  const binding = { purpose: input.purpose, binding: input.binding, ...(input.accountId ? { accountId: input.accountId } : {}) };
  if (!(await consumeChallenge(db, challenge, binding))) return { ok: false, reason: 'challenge' };
  const row = await db.passkey.findUnique({ where: { credentialId: r.id as string }, include: { account: { select: { disabled: true } } } });
  if (!row || (input.accountId && row.accountId !== input.accountId)) return { ok: false, reason: 'unknown' };
  const handle = (r.response as Record<string, unknown>).userHandle;
  if (handle !== undefined && handle !== null && handle !== userHandleOf(row.accountId)) return { ok: false, reason: 'unknown' };
  const requireUv = input.purpose === 'login';
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response: r as unknown as AuthenticationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.rpID,
      requireUserVerification: requireUv,
      // The counter is checked below, where a clone is told apart and audited.
      credential: { id: row.credentialId, publicKey: Buffer.from(row.publicKey, 'base64url'), counter: 0, transports: row.transports as AuthenticatorTransportFuture[] },
    });
  } catch {
    return { ok: false, reason: 'invalid', accountId: row.accountId };
  }
  if (!verified.verified) return { ok: false, reason: 'invalid', accountId: row.accountId };
  const info = verified.authenticationInfo;
  const next = BigInt(info.newCounter);
  const stored = row.counter;
  // Advance the counter only if it grew (or both sides keep none): two uses of one answer cannot both pass.
  const updated =
    (next > 0n || stored > 0n) && next <= stored
      ? 0
      : await db.$executeRaw`
          UPDATE passkeys SET counter = ${next}, last_used_at = now(), backed_up = ${info.credentialBackedUp}
          WHERE id = ${row.id}::uuid AND (counter < ${next} OR (counter = 0 AND ${next} = 0))`;
  if (updated !== 1) {
    await recordAudit(db, {
      action: 'passkey.clone_suspected',
      actor: { type: 'user', id: row.accountId },
      target: { type: 'user', id: row.accountId },
      ip: input.ip ?? null,
      requestId: input.requestId ?? null,
      details: { passkeyId: row.id, name: row.name, storedCounter: stored.toString(), presentedCounter: next.toString() },
    });
    return { ok: false, reason: 'cloned', accountId: row.accountId };
  }
  if (row.account.disabled) return { ok: false, reason: 'disabled', accountId: row.accountId };
  return {
    ok: true,
    accountId: row.accountId,
    passkey: toPasskeyView({ ...row, counter: next, lastUsedAt: new Date(), backedUp: info.credentialBackedUp }),
    userVerified: info.userVerified,
  };
}

/** A random name suggestion for a new passkey ("Passkey 3F9A"). */
export function defaultPasskeyName(): string {
  return `Passkey ${randomBytes(2).toString('hex').toUpperCase()}`;
}

/** A sign-in with a passkey is complete: the account's failures are forgotten, last_login_at set, login.success emitted. */
export async function completePasskeyLogin(db: Db, accountId: string, opts: { ip?: string; onEvent?: (e: LoginEvent) => void }): Promise<void> {
  await resetThrottle(db, accountThrottleKey(accountId));
  await recordLogin(db, accountId);
  const a = await db.account.findUnique({ where: { id: accountId }, select: { email: true } });
  opts.onEvent?.({ type: 'login.success', accountId, email: (a?.email ?? '').slice(0, 320), ...(opts.ip ? { ip: opts.ip } : {}), factor: 'passkey' });
}

// -------------------------------------------------------------- factors

export interface FactorView {
  /** 'totp' for the authenticator app, the passkey's id for a passkey */
  id: string;
  type: 'totp' | 'passkey';
  name: string;
  createdAt: Date | null;
  lastUsedAt: Date | null;
  backedUp?: boolean;
  deviceType?: string;
}

export interface AccountFactors {
  emailVerified: boolean;
  items: FactorView[];
  recoveryCodesLeft: number;
}

/** A person's second factors (what an administrator sees; no secrets). */
export async function listFactors(db: DbOrTx, accountId: string): Promise<AccountFactors> {
  const a = isAccountId(accountId) ? await db.account.findUnique({ where: { id: accountId }, select: { emailVerified: true, totpEnabledAt: true } }) : null;
  if (!a) throw new NotFoundError('account', accountId, `no account matches '${accountId}'`);
  const [passkeys, recoveryCodesLeft] = await Promise.all([listPasskeys(db, accountId), db.recoveryCode.count({ where: { accountId, usedAt: null } })]);
  const items: FactorView[] = [];
  if (a.totpEnabledAt) items.push({ id: 'totp', type: 'totp', name: 'Authenticator app', createdAt: a.totpEnabledAt, lastUsedAt: null });
  for (const p of passkeys) items.push({ id: p.id, type: 'passkey', name: p.name, createdAt: p.createdAt, lastUsedAt: p.lastUsedAt, backedUp: p.backedUp, deviceType: p.deviceType });
  return { emailVerified: a.emailVerified, items, recoveryCodesLeft };
}
