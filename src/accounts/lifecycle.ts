// Account changes that single-use links make (src/lifecycle/ calls these
// inside the transaction that spends the link): a password chosen through an
// invitation or a reset, an account created by a verified sign-up, a new
// email address confirmed, and the MFA enrolment window of invited people.
// Each announces the change (publishChange) so caches drop the account.
import { publishChange } from '../db/changes.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import { ConflictError } from '../kernel/errors.ts';
import { isUniqueViolation, type DbOrTx } from '../kernel/tx.ts';
import { toView, type AccountView } from './store.ts';
import { accountThrottleKey, resetThrottle } from './throttle.ts';

async function write(db: DbOrTx, id: string, data: Prisma.AccountUpdateInput): Promise<AccountView | undefined> {
  const { count } = await db.account.updateMany({ where: { id }, data: { ...(data as Prisma.AccountUpdateManyMutationInput), version: { increment: 1 } } });
  if (count === 0) return undefined;
  await publishChange(db, 'account', id);
  return toView(await db.account.findUniqueOrThrow({ where: { id } }));
}

/**
 * The person chose a password through a link mailed to `mailedTo`: sets the
 * hash, lifts their login lock, and marks the email verified if it is still
 * the address the link went to. Undefined when the account is gone.
 */
export async function setPasswordThroughLink(db: DbOrTx, id: string, mailedTo: string, passwordHash: string): Promise<AccountView | undefined> {
  const current = await db.account.findUnique({ where: { id }, select: { email: true, disabled: true } });
  if (!current || current.disabled) return undefined;
  const view = await write(db, id, { passwordHash, ...(current.email === mailedTo ? { emailVerified: true } : {}) });
  await resetThrottle(db, accountThrottleKey(id));
  return view;
}

/**
 * Sets until when a first authenticator may be enrolled with only the
 * password (accounts/mfa.ts): null closes the window (an invited person
 * enrols through the invitation instead), a number of seconds opens it
 * from now (database clock).
 */
export async function setEnrolmentWindow(db: DbOrTx, id: string, seconds: number | null): Promise<void> {
  if (seconds === null) {
    await db.$executeRaw`UPDATE accounts SET mfa_enrolment_until = NULL WHERE id = ${id}::uuid`;
  } else {
    await db.$executeRaw`UPDATE accounts SET mfa_enrolment_until = now() + make_interval(secs => ${seconds}::double precision)
      WHERE id = ${id}::uuid AND totp_enabled_at IS NULL`;
  }
  await publishChange(db, 'account', id);
}

/** Creates the account of a verified sign-up (the password was hashed when the person signed up). */
export async function createVerifiedAccount(db: DbOrTx, input: { email: string; name: string | null; passwordHash: string }): Promise<AccountView> {
  try {
    const a = await db.account.create({ data: { email: input.email, name: input.name, passwordHash: input.passwordHash, emailVerified: true } });
    return toView(a);
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('an account with this email already exists');
    throw err;
  }
}

/** A new email address, confirmed by a link mailed to it. ConflictError if another account took it meanwhile. */
export async function confirmNewEmail(db: DbOrTx, id: string, email: string): Promise<AccountView | undefined> {
  try {
    return await write(db, id, { email, emailVerified: true });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError('an account with this email already exists');
    throw err;
  }
}
