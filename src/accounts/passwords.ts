// Human passwords: argon2id at OWASP parameters, through @node-rs/argon2
// (RustCrypto's argon2): the same PHC hashes as the reference implementation
// at half its CPU time on these machines (see STACK-NOTES / the closing note
// of issue 4). Every call is async: it runs on libuv's threadpool and never
// blocks the event loop.
import { randomBytes } from 'node:crypto';
import { hash as argon2Hash, parseOptions, verify as argon2Verify, type Algorithm, type Options, type Version } from '@node-rs/argon2';
import { ValidationError } from '../kernel/errors.ts';

// The package declares its enums `const`, which isolatedModules cannot read:
// these are their values (Algorithm.Argon2id, Version.V0x13).
const ARGON2ID = 2 as Algorithm;
const V0x13 = 1 as Version;

/** OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1. */
export const ARGON2_PARAMS = {
  algorithm: ARGON2ID,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const satisfies Options;

export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_BYTES = 1024;

/** Throws a one-line ValidationError('password', …) when the password breaks the policy. */
export function validatePassword(pw: string): void {
  if (typeof pw !== 'string') throw new ValidationError('password', 'must be a string');
  // Count code points, not UTF-16 units: "at least 8 characters" as a person counts them.
  if ([...pw].length < PASSWORD_MIN_CHARS) {
    throw new ValidationError('password', `must be at least ${PASSWORD_MIN_CHARS} characters`);
  }
  if (Buffer.byteLength(pw, 'utf8') > PASSWORD_MAX_BYTES) {
    throw new ValidationError('password', `must be at most ${PASSWORD_MAX_BYTES} bytes`);
  }
}

/** argon2id PHC string of `pw` at ARGON2_PARAMS (validates the policy first). */
export async function hashPassword(pw: string): Promise<string> {
  validatePassword(pw);
  return argon2Hash(pw, ARGON2_PARAMS);
}

/**
 * Re-hashes a password that just verified against an older hash. No policy
 * check: a password set under an older policy still gets the stronger hash.
 */
export async function rehashPassword(pw: string): Promise<string> {
  return argon2Hash(pw, ARGON2_PARAMS);
}

function hashNeedsRehash(hash: string): boolean {
  if (!hash.startsWith('$argon2id$')) return true;
  try {
    const o = parseOptions(hash);
    return (
      o.version !== V0x13 ||
      o.memoryCost !== ARGON2_PARAMS.memoryCost ||
      o.timeCost !== ARGON2_PARAMS.timeCost ||
      o.parallelism !== ARGON2_PARAMS.parallelism
    );
  } catch {
    return true;
  }
}

export interface VerifyResult {
  ok: boolean;
  /** the password matched and the stored hash uses other parameters than ARGON2_PARAMS */
  needsRehash: boolean;
}

/** Checks `pw` against a stored PHC string. A malformed hash is a mismatch, never a throw. */
export async function verifyPassword(hash: string, pw: string): Promise<VerifyResult> {
  let ok = false;
  try {
    ok = await argon2Verify(hash, pw);
  } catch {
    ok = false;
  }
  return { ok, needsRehash: ok && hashNeedsRehash(hash) };
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same work as verifying a real password, and always fails: used
 * for unknown or disabled accounts so their timing matches a wrong password.
 */
export async function verifyAgainstDummy(pw: string): Promise<false> {
  dummyHash ??= argon2Hash(randomBytes(32).toString('base64url'), ARGON2_PARAMS).catch((err: unknown) => {
    dummyHash = undefined;
    throw err;
  });
  try {
    await argon2Verify(await dummyHash, pw);
  } catch {
    // the outcome is irrelevant
  }
  return false;
}
