// Write functions of the accounts domain: what the CLI and the admin API call
// to change people, and nothing else does. Each takes the transaction (or
// opens one) and the actor, and does the change (store.ts / mfa.ts, which
// also announce it with publishChange), its audit event and the actor's
// authority check together, in that one transaction.
//
// Authority: a person holds the admin-API permissions their roles on the admin
// API give (src/resources/authority.ts). A person holding one the actor lacks
// may only lose power (be renamed, disabled, deleted, signed out): the actor
// may not set their password, reset their MFA, change or unverify their email,
// or enable them, which would let the actor act as them.
import { auditChange, changedFields } from '../audit/audit.ts';
import { holds, type Actor, type WriteOptions } from '../kernel/actor.ts';
import { ConflictError, ForbiddenError } from '../kernel/errors.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import { adminScopesOfRoles } from '../resources/authority.ts';
import { rolesForAccount } from '../resources/roles.ts';
import { removeTotp, replaceRecoveryCodes, resetMfa } from './mfa.ts';
import { countPasskeys, deletePasskey, getPasskey, insertPasskey, renamePasskey, type NewPasskey, type PasskeyView } from './passkeys.ts';
import { createAccount, deleteAccount, getAccount, setPassword, updateAccount, type AccountPatch, type AccountView, type NewAccount } from './store.ts';

const target = (id: string) => ({ type: 'user', id });
const via = (opts: WriteOptions) => (opts.via !== undefined ? { via: opts.via } : {});
const asRecord = (v: AccountView) => v as unknown as Record<string, unknown>;

/** The admin-API permissions the person holds that the actor does not. */
async function lackedPermissions(tx: DbOrTx, actor: Actor, accountId: string): Promise<string[]> {
  if (actor.scopes === 'all') return [];
  return adminScopesOfRoles(await rolesForAccount(tx, accountId)).filter((s) => !holds(actor, s));
}

/** Refuses a change that would let the actor act as a person holding more than it. */
async function assertMayTakeOver(tx: DbOrTx, actor: Actor, accountId: string): Promise<void> {
  const [lacking] = await lackedPermissions(tx, actor, accountId);
  if (lacking !== undefined) throw new ForbiddenError(lacking);
}

/** Creates a person (who holds no role yet). */
export async function createAccountAs(db: DbOrTx, actor: Actor, input: NewAccount, opts: WriteOptions = {}): Promise<AccountView> {
  return inTransaction(db, async (tx) => {
    const created = await createAccount(tx, input);
    await auditChange(tx, actor, 'user.create', target(created.id), { ...via(opts), after: created });
    return created;
  });
}

/**
 * Changes a person's profile (store.ts updateAccount). The event is
 * user.disable / user.enable when the flag flips, otherwise user.update.
 */
export async function updateAccountAs(
  db: DbOrTx,
  actor: Actor,
  id: string,
  patch: AccountPatch,
  opts: WriteOptions & { expectedVersion?: number } = {},
): Promise<AccountView> {
  return inTransaction(db, async (tx) => {
    const before = await getAccount(tx, id);
    const after = await updateAccount(tx, id, patch, { expectedVersion: opts.expectedVersion ?? before.version });
    const changes = changedFields(asRecord(before), asRecord(after));
    // only a new name or disabling takes no power over the person
    const takeover = changes.some((f) => f !== 'name' && !(f === 'disabled' && after.disabled));
    if (takeover) await assertMayTakeOver(tx, actor, id);
    const action = !before.disabled && after.disabled ? 'user.disable' : before.disabled && !after.disabled ? 'user.enable' : 'user.update';
    await auditChange(tx, actor, action, target(id), { ...via(opts), before, after, changes });
    return after;
  });
}

/** Sets a person's password (and lifts their login lock). */
export async function setPasswordAs(db: DbOrTx, actor: Actor, id: string, password: string, opts: WriteOptions = {}): Promise<AccountView> {
  return inTransaction(db, async (tx) => {
    await getAccount(tx, id);
    await assertMayTakeOver(tx, actor, id);
    const after = await setPassword(tx, id, password);
    await auditChange(tx, actor, 'user.set_password', target(id), via(opts));
    return after;
  });
}

/** Turns a person's MFA off (a lost phone): they enrol again at their next sign-in that needs it. */
export async function resetMfaAs(db: DbOrTx, actor: Actor, id: string, opts: WriteOptions = {}): Promise<AccountView & { mfaEnrolmentUntil: Date }> {
  return inTransaction(db, async (tx) => {
    const before = await getAccount(tx, id);
    await assertMayTakeOver(tx, actor, id);
    const after = await resetMfa(tx, id);
    await auditChange(tx, actor, 'user.reset_mfa', target(id), { ...via(opts), hadMfa: before.mfaEnabled });
    return after;
  });
}

/**
 * Deletes a person, their role assignments and recovery codes. `details` are
 * added to the event (e.g. the sessions ended with it, src/oidc/sessions.ts).
 */
export async function deleteAccountAs(db: DbOrTx, actor: Actor, id: string, opts: WriteOptions & { details?: Record<string, unknown> } = {}): Promise<AccountView> {
  return inTransaction(db, async (tx) => {
    const before = await getAccount(tx, id);
    await deleteAccount(tx, id);
    await auditChange(tx, actor, 'user.delete', target(id), { ...via(opts), before, ...opts.details });
    return before;
  });
}

// ------------------------------------------------------------- passkeys

/** Stores a verified passkey registration (passkeys.ts verifyRegistration). */
export async function addPasskeyAs(db: DbOrTx, actor: Actor, passkey: NewPasskey, opts: WriteOptions = {}): Promise<PasskeyView> {
  return inTransaction(db, async (tx) => {
    await getAccount(tx, passkey.accountId);
    if (actor.id !== passkey.accountId) await assertMayTakeOver(tx, actor, passkey.accountId);
    const before = await getAccount(tx, passkey.accountId);
    const first = !before.mfaEnabled && (await countPasskeys(tx, passkey.accountId)) === 0;
    const created = await insertPasskey(tx, passkey);
    // a first second factor closes the enrolment window, as an authenticator app's enrolment does
    if (first) await tx.account.updateMany({ where: { id: passkey.accountId }, data: { mfaEnrolmentUntil: null } });
    await auditChange(tx, actor, 'passkey.add', target(passkey.accountId), { ...via(opts), passkey: created, first });
    return created;
  });
}

export async function renamePasskeyAs(db: DbOrTx, actor: Actor, accountId: string, passkeyId: string, name: string, opts: WriteOptions = {}): Promise<PasskeyView> {
  return inTransaction(db, async (tx) => {
    const before = await getPasskey(tx, accountId, passkeyId);
    const after = await renamePasskey(tx, accountId, passkeyId, name);
    await auditChange(tx, actor, 'passkey.rename', target(accountId), { ...via(opts), passkeyId, before: before.name, after: after.name });
    return after;
  });
}

/**
 * Removes a passkey. A person acting on their own account may not remove
 * their last second factor (no authenticator app and no other passkey left),
 * nor the last way in of an account without a password: an administrator
 * removes a lost factor (removeFactorAs).
 */
export async function removePasskeyAs(db: DbOrTx, actor: Actor, accountId: string, passkeyId: string, opts: WriteOptions = {}): Promise<PasskeyView> {
  return inTransaction(db, async (tx) => {
    const account = await getAccount(tx, accountId);
    // who may act comes before what exists: a caller without the right learns nothing about the factors
    if (actor.id !== accountId) await assertMayTakeOver(tx, actor, accountId);
    await getPasskey(tx, accountId, passkeyId);
    const others = (await countPasskeys(tx, accountId)) - 1;
    if (actor.type === 'user' && actor.id === accountId && others === 0 && (!account.mfaEnabled || !account.hasPassword)) {
      throw new ConflictError('this is your last second factor: add another passkey or an authenticator app before removing it');
    }
    const removed = await deletePasskey(tx, accountId, passkeyId);
    await auditChange(tx, actor, 'passkey.remove', target(accountId), { ...via(opts), passkey: removed });
    return removed;
  });
}

// ------------------------------------------------- second factors, self-service

/** New recovery codes for the person (the old ones stop working); returned once. Only with a second factor. */
export async function regenerateRecoveryCodesAs(db: DbOrTx, actor: Actor, accountId: string, opts: WriteOptions = {}): Promise<string[]> {
  return inTransaction(db, async (tx) => {
    const account = await getAccount(tx, accountId);
    if (actor.id !== accountId) await assertMayTakeOver(tx, actor, accountId);
    if (!account.mfaEnabled && (await countPasskeys(tx, accountId)) === 0) throw new ConflictError('recovery codes need a second factor: set up an authenticator app or a passkey first');
    const codes = await replaceRecoveryCodes(tx, accountId);
    await auditChange(tx, actor, 'user.recovery_codes_regenerate', target(accountId), { ...via(opts), count: codes.length });
    return codes;
  });
}

/** Removes the authenticator app. A person may do so themselves only while a passkey remains. */
export async function removeTotpAs(db: DbOrTx, actor: Actor, accountId: string, opts: WriteOptions = {}): Promise<AccountView> {
  return inTransaction(db, async (tx) => {
    const before = await getAccount(tx, accountId);
    if (actor.id !== accountId) await assertMayTakeOver(tx, actor, accountId);
    if (!before.mfaEnabled) throw new ConflictError('no authenticator app is set up');
    if (actor.type === 'user' && actor.id === accountId && (await countPasskeys(tx, accountId)) === 0) {
      throw new ConflictError('this is your last second factor: add a passkey before removing the authenticator app');
    }
    const after = await removeTotp(tx, accountId);
    await auditChange(tx, actor, 'user.totp_remove', target(accountId), via(opts));
    return after;
  });
}

/**
 * An administrator removes a lost factor: 'totp' (the authenticator app) or
 * a passkey's id. Audited (user.totp_remove / passkey.remove). The person's
 * other factors and recovery codes stay; `users reset-mfa` removes them all.
 */
export async function removeFactorAs(db: DbOrTx, actor: Actor, accountId: string, factorId: string, opts: WriteOptions = {}): Promise<{ id: string; type: 'totp' | 'passkey' }> {
  if (factorId === 'totp') {
    await removeTotpAs(db, actor, accountId, opts);
    return { id: 'totp', type: 'totp' };
  }
  const removed = await removePasskeyAs(db, actor, accountId, factorId, opts);
  return { id: removed.id, type: 'passkey' };
}
