// A person's account lifecycle through mailed single-use links
// (src/accounts/links.ts): invitations, password reset, open sign-up and
// email change. The write functions take the transaction and the actor like
// every domain's (`…As`); the flows a person starts from a page (reset,
// sign-up, completing a link) act as that person, or anonymously.
//
// The mails are built here and handed to the mailer after the transaction
// commits: never a mail for a change that rolled back.
//
// Rules kept here:
// - Invitation: the account is created without a password and with its MFA
//   enrolment window closed: the invitation link is the proof that replaces
//   the window. Accepting sets the password, verifies the email and, where
//   MFA is required, enrols an authenticator in the same flow (routes.ts).
//   An inviter can give only roles whose admin-API permissions it holds
//   (resources/writes.ts addRoleToAccountAs), and may resend an invitation
//   only to a person holding nothing it lacks.
// - Reset: the request does the same work whether or not the address has an
//   account (one statement, one enqueued job); completing ends every session
//   with back-channel logout, and never touches the second factor.
// - Sign-up: nothing is created until the address is confirmed: the link
//   carries the name and the argon2id hash of the chosen password.
import { setEnrolmentWindow, confirmNewEmail, createVerifiedAccount, setPasswordThroughLink } from '../accounts/lifecycle.ts';
import { consumeLink, issueLink, LINK_LIFETIME_SECONDS, newLinkSecret, peekLink, requestLinkByEmail, revokeLinks, type LinkState } from '../accounts/links.ts';
import { MFA_ENROLMENT_WINDOW_DAYS } from '../accounts/mfa.ts';
import { hashPassword, validatePassword } from '../accounts/passwords.ts';
import { getAccount, NAME_MAX_LENGTH, validateEmail, type AccountView } from '../accounts/store.ts';
import { createAccountAs } from '../accounts/writes.ts';
import { auditChange, recordAudit } from '../audit/audit.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/client.ts';
import { holds, type Actor, type WriteOptions } from '../kernel/actor.ts';
import { ConflictError, ForbiddenError, ValidationError } from '../kernel/errors.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import type { Logger } from '../logging/logger.ts';
import type { Mail, Mailer } from '../mail/mailer.ts';
import {
  alreadyRegisteredMail,
  emailChangeNoticeMail,
  invitationMail,
  passwordChangedMail,
  resetMail,
  verifyEmailChangeMail,
  verifySignupMail,
} from '../mail/templates.ts';
import { endAccountSessionRecords, notifyApps, type BackchannelSender, type EndedSessions } from '../oidc/sessions.ts';
import { adminScopesOfRoles } from '../resources/authority.ts';
import { rolesForAccount } from '../resources/roles.ts';
import { addRoleToAccountAs } from '../resources/writes.ts';

export const INVITATION_DAYS = LINK_LIFETIME_SECONDS.invite / 86_400;
export const RESET_MINUTES = LINK_LIFETIME_SECONDS.reset / 60;
export const SIGNUP_HOURS = LINK_LIFETIME_SECONDS.signup / 3600;

/** Reset and sign-up mails one address (or one account) may be sent per hour. */
export const REQUEST_LIMITS = { perAddress: 5, perAccount: 5, windowSeconds: 3600 };

/** What the flows need besides the database. */
export interface LifecycleDeps {
  db: Db;
  config: Pick<Config, 'issuer' | 'signup'>;
  mailer: Mailer;
  logger: Logger;
  /** back-channel logout for the sessions a reset ends */
  backchannel?: BackchannelSender;
}

/** Where a link of each kind leads (below the issuer). */
export const LINK_PATHS = { invite: '/invite', reset: '/reset', signup: '/signup', 'email-change': '/verify-email' } as const;

export function linkUrl(issuer: string, purpose: keyof typeof LINK_PATHS, secret: string): string {
  return `${issuer}${LINK_PATHS[purpose]}/${secret}`;
}

const target = (id: string) => ({ type: 'user', id });
const via = (opts: WriteOptions) => (opts.via !== undefined ? { via: opts.via } : {});

/** The person acting on their own account (a page they reached through a link, or the account page). */
export function selfActor(accountId: string, request: { ip?: string | null; requestId?: string | null } = {}): Actor {
  return { type: 'user', id: accountId, scopes: new Set(), ip: request.ip ?? null, requestId: request.requestId ?? null };
}

function assertMailEnabled(mailer: Mailer): void {
  if (!mailer.enabled) throw new ConflictError('mail is not set up (SMTP_URL): invitations and links cannot be sent');
}

/** Refuses when the person holds an admin-API permission the actor lacks (whoever gets their link could act as them). */
async function assertMayTakeOver(tx: DbOrTx, actor: Actor, accountId: string): Promise<void> {
  if (actor.scopes === 'all' || actor.id === accountId) return;
  const lacking = adminScopesOfRoles(await rolesForAccount(tx, accountId)).find((s) => !holds(actor, s));
  if (lacking !== undefined) throw new ForbiddenError(lacking);
}

function validateRoles(roles: unknown): string[] {
  if (roles === undefined) return [];
  if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string' || r.trim() === '')) throw new ValidationError('roles', 'must be a list of role names');
  if (roles.length > 50) throw new ValidationError('roles', 'must have at most 50 entries');
  return [...new Set((roles as string[]).map((r) => r.trim()))];
}

// ------------------------------------------------------------ invitations

export interface InviteInput {
  email: string;
  name?: string | null;
  roles?: string[];
}

export interface Invitation {
  account: AccountView;
  roles: string[];
  expiresAt: Date;
  /** the mail to send once committed (holds the link) */
  mail: Mail;
}

/**
 * Creates the invited person (no password, MFA enrolment window closed),
 * gives them `roles` (each checked against what the actor holds), and
 * issues a 7-day single-use link; audited as user.invite (with user.create
 * and user.role_add) in one transaction.
 */
export async function inviteAccountAs(db: DbOrTx, actor: Actor, input: InviteInput, opts: WriteOptions & { issuer: string }): Promise<Invitation> {
  const roles = validateRoles(input.roles);
  return inTransaction(db, async (tx) => {
    const account = await createAccountAs(tx, actor, { email: input.email, ...(input.name !== undefined ? { name: input.name } : {}) }, opts);
    await setEnrolmentWindow(tx, account.id, null);
    for (const role of roles) await addRoleToAccountAs(tx, actor, account.id, role);
    const link = await issueLink(tx, { purpose: 'invite', accountId: account.id, email: account.email });
    await auditChange(tx, actor, 'user.invite', target(account.id), { ...via(opts), email: account.email, roles, expiresAt: link.expiresAt });
    return {
      account,
      roles,
      expiresAt: link.expiresAt,
      mail: invitationMail({ to: account.email, name: account.name, link: linkUrl(opts.issuer, 'invite', link.secret), days: INVITATION_DAYS }),
    };
  });
}

/**
 * A new invitation link for a person who has not accepted yet (no password):
 * the earlier links stop working. Audited as user.invite_resend.
 */
export async function resendInvitationAs(db: DbOrTx, actor: Actor, accountId: string, opts: WriteOptions & { issuer: string }): Promise<Invitation> {
  return inTransaction(db, async (tx) => {
    const account = await getAccount(tx, accountId);
    if (account.hasPassword) throw new ConflictError('this person has already accepted their invitation (a password is set); they can reset it from the sign-in page');
    await assertMayTakeOver(tx, actor, accountId);
    await revokeLinks(tx, accountId, ['invite']);
    const link = await issueLink(tx, { purpose: 'invite', accountId, email: account.email });
    await auditChange(tx, actor, 'user.invite_resend', target(accountId), { ...via(opts), email: account.email, expiresAt: link.expiresAt });
    const roles = (await rolesForAccount(tx, accountId)).map((r) => r.name);
    return {
      account,
      roles,
      expiresAt: link.expiresAt,
      mail: invitationMail({ to: account.email, name: account.name, link: linkUrl(opts.issuer, 'invite', link.secret), days: INVITATION_DAYS }),
    };
  });
}

export interface Mailed<T> {
  result: T;
  /** whether the mail was handed to the mail server (or written to DATA_DIR/mail) */
  mailed: boolean;
  /** why not (never the link) */
  mailError?: string;
}

/** Sends a committed invitation's mail now (CLI, admin API: the caller reports whether it went out). */
export async function mailNow<T extends { mail: Mail }>(mailer: Mailer, result: T): Promise<Mailed<T>> {
  try {
    await mailer.send(result.mail);
    return { result, mailed: true };
  } catch (err) {
    return { result, mailed: false, mailError: (err as Error).message };
  }
}

/** inviteAccountAs, then the mail. Refuses before any change when mail is not set up. */
export async function invite(deps: Pick<LifecycleDeps, 'db' | 'mailer'> & { issuer: string }, actor: Actor, input: InviteInput, opts: WriteOptions = {}): Promise<Mailed<Invitation>> {
  assertMailEnabled(deps.mailer);
  return mailNow(deps.mailer, await inviteAccountAs(deps.db, actor, input, { ...opts, issuer: deps.issuer }));
}

/** resendInvitationAs, then the mail. */
export async function resendInvitation(deps: Pick<LifecycleDeps, 'db' | 'mailer'> & { issuer: string }, actor: Actor, accountId: string, opts: WriteOptions = {}): Promise<Mailed<Invitation>> {
  assertMailEnabled(deps.mailer);
  return mailNow(deps.mailer, await resendInvitationAs(deps.db, actor, accountId, { ...opts, issuer: deps.issuer }));
}

export type LinkOutcome<T> = { ok: true; value: T } | { ok: false; reason: 'unknown' | 'used' | 'expired' };

/** The request a page acts for (audit context). */
export interface RequestInfo {
  ip?: string | null;
  requestId?: string | null;
}

/** Checks a link without spending it (to show its page). */
export function checkLink(db: Db, purpose: 'invite' | 'reset' | 'signup' | 'email-change', secret: unknown): Promise<LinkState> {
  return peekLink(db, purpose, secret);
}

/**
 * Accepts an invitation: the password is checked first (a refused password
 * does not spend the link), then the link is spent, the password set and the
 * email verified in one transaction. ValidationError for a refused password.
 */
export async function acceptInvitation(db: Db, secret: string, password: string, request: RequestInfo = {}): Promise<LinkOutcome<AccountView>> {
  const peek = await peekLink(db, 'invite', secret);
  if (!peek.ok) return peek;
  validatePassword(password);
  const hash = await hashPassword(password);
  return inTransaction(db, async (tx): Promise<LinkOutcome<AccountView>> => {
    const link = await consumeLink(tx, 'invite', secret);
    if (!link.ok) return link;
    const account = link.link.accountId ? await setPasswordThroughLink(tx, link.link.accountId, link.link.email, hash) : undefined;
    if (!account) return { ok: false, reason: 'unknown' };
    await auditChange(tx, selfActor(account.id, request), 'user.invitation_accept', target(account.id), { emailVerified: account.emailVerified });
    return { ok: true, value: account };
  });
}

/**
 * After an accepted invitation: opens the MFA enrolment window for `seconds`
 * (the enrolment step of the same flow, or the usual window when no
 * application requires MFA).
 */
export async function openEnrolmentAfterInvitation(db: Db, accountId: string, seconds: number): Promise<void> {
  await setEnrolmentWindow(db, accountId, seconds);
}

export const DEFAULT_ENROLMENT_WINDOW_SECONDS = MFA_ENROLMENT_WINDOW_DAYS * 86_400;

// --------------------------------------------------------- password reset

/**
 * A reset request for `rawEmail` (already checked to look like an address).
 * The same work whatever the address: one statement (look-up, limits,
 * insert), the mail built, one job enqueued; only a known, enabled account
 * under its limits gets a mail, sent out of the request path.
 */
export async function requestPasswordReset(deps: LifecycleDeps, email: string, opts: { clientName?: string; request?: RequestInfo } = {}): Promise<void> {
  const { secret, digest } = newLinkSecret();
  const r = await requestLinkByEmail(deps.db, 'reset', email, digest, REQUEST_LIMITS);
  const mail = resetMail({ to: email, link: linkUrl(deps.config.issuer, 'reset', secret), minutes: RESET_MINUTES, ...(opts.clientName ? { clientName: opts.clientName } : {}) });
  const send = r.issued && r.accountId !== null;
  setImmediate(() => {
    if (send) deps.mailer.enqueue(mail);
    // audited after the answer, for known and unknown addresses alike (the same database work)
    void recordAudit(deps.db, {
      action: 'user.password_reset_request',
      actor: { type: 'anonymous' },
      target: r.accountId ? target(r.accountId) : null,
      ip: opts.request?.ip ?? null,
      requestId: opts.request?.requestId ?? null,
      details: { mailed: send },
    }).catch((err: Error) => deps.logger.warn({ err: { message: err.message } }, 'audit write failed'));
  });
}

/**
 * Completes a reset: checks the new password (a refused one does not spend
 * the link), then in one transaction spends the link (and every other open
 * reset link of the person), sets the password, ends every session and
 * grant, and records user.password_reset; then back-channel logout and a
 * notice mail. The second factor is untouched: the person signs in with the
 * new password and their second factor as before.
 */
export async function completePasswordReset(
  deps: LifecycleDeps,
  secret: string,
  password: string,
  request: RequestInfo = {},
): Promise<LinkOutcome<{ account: AccountView; revoked: EndedSessions }>> {
  const peek = await peekLink(deps.db, 'reset', secret);
  if (!peek.ok) return peek;
  validatePassword(password);
  const hash = await hashPassword(password);
  const done = await inTransaction(deps.db, async (tx) => {
    const link = await consumeLink(tx, 'reset', secret);
    if (!link.ok) return link;
    const accountId = link.link.accountId;
    const account = accountId ? await setPasswordThroughLink(tx, accountId, link.link.email, hash) : undefined;
    if (!account) return { ok: false as const, reason: 'unknown' as const };
    await revokeLinks(tx, account.id, ['reset']);
    const ended = await endAccountSessionRecords(tx, account.id);
    await auditChange(tx, selfActor(account.id, request), 'user.password_reset', target(account.id), {
      sessions: ended.sessions,
      grants: ended.grants,
      mfaEnabled: account.mfaEnabled,
    });
    return { ok: true as const, account, ended };
  });
  if (!done.ok) return done;
  const revoked = await notifyApps(done.ended, deps.backchannel);
  deps.mailer.enqueue(passwordChangedMail({ to: done.account.email, at: new Date() }));
  return { ok: true, value: { account: done.account, revoked } };
}

// ---------------------------------------------------------------- sign-up

export interface SignupInput {
  email: string;
  name: string;
  password: string;
}

/** Checks a sign-up form; ValidationError naming the field. */
export function validateSignup(input: { email: unknown; name: unknown; password: unknown }): SignupInput {
  const email = validateEmail(input.email);
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (name === '') throw new ValidationError('name', 'is required');
  if ([...name].length > NAME_MAX_LENGTH) throw new ValidationError('name', `must be at most ${NAME_MAX_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new ValidationError('name', 'must not contain control characters');
  if (typeof input.password !== 'string') throw new ValidationError('password', 'is required');
  validatePassword(input.password);
  return { email, name, password: input.password };
}

/**
 * Open sign-up: the same answer whether or not the address has an account.
 * A new address gets a link that creates the account when used (name and
 * password hash travel in the link's row); an address that has an account
 * gets a notice with a reset link instead. Nothing is created yet.
 */
export async function requestSignup(deps: LifecycleDeps, input: SignupInput, opts: { clientName?: string } = {}): Promise<void> {
  const passwordHash = await hashPassword(input.password);
  const { secret, digest } = newLinkSecret();
  const r = await requestLinkByEmail(deps.db, 'signup', input.email, digest, REQUEST_LIMITS, { name: input.name, passwordHash });
  if (!r.issued) return;
  deps.mailer.enqueue(
    r.accountId !== null
      ? alreadyRegisteredMail({ to: input.email, resetLink: `${deps.config.issuer}${LINK_PATHS.reset}` })
      : verifySignupMail({ to: input.email, link: linkUrl(deps.config.issuer, 'signup', secret), hours: SIGNUP_HOURS, ...opts }),
  );
}

/** Uses a sign-up link: creates the account, email verified. ConflictError when the address has an account meanwhile. */
export async function completeSignup(db: Db, secret: string, request: RequestInfo = {}): Promise<LinkOutcome<AccountView>> {
  return inTransaction(db, async (tx): Promise<LinkOutcome<AccountView>> => {
    const link = await consumeLink(tx, 'signup', secret);
    if (!link.ok) return link;
    const { name, passwordHash } = link.link.data;
    if (link.link.accountId !== null || typeof passwordHash !== 'string') return { ok: false, reason: 'unknown' };
    const account = await createVerifiedAccount(tx, { email: link.link.email, name: typeof name === 'string' ? name : null, passwordHash });
    await auditChange(tx, selfActor(account.id, request), 'user.signup', target(account.id), { email: account.email });
    return { ok: true, value: account };
  });
}

// ----------------------------------------------------------- email change

/**
 * Asks to change a person's email: mails the new address a 24-hour link
 * that makes the change (verified), and tells the old address. The person
 * themselves (the account page) or an actor holding everything the person
 * holds. Audited as user.email_change_request. Returns the mails to send.
 */
export async function requestEmailChangeAs(
  db: DbOrTx,
  actor: Actor,
  accountId: string,
  newEmail: string,
  opts: WriteOptions & { issuer: string },
): Promise<{ account: AccountView; newEmail: string; expiresAt: Date; mails: Mail[] }> {
  const email = validateEmail(newEmail);
  return inTransaction(db, async (tx) => {
    const account = await getAccount(tx, accountId);
    if (account.email === email) throw new ValidationError('email', 'is already the address of this account');
    await assertMayTakeOver(tx, actor, accountId);
    await revokeLinks(tx, accountId, ['email-change']);
    const link = await issueLink(tx, { purpose: 'email-change', accountId, email, data: { from: account.email } });
    await auditChange(tx, actor, 'user.email_change_request', target(accountId), { ...via(opts), from: account.email, to: email });
    return {
      account,
      newEmail: email,
      expiresAt: link.expiresAt,
      mails: [
        verifyEmailChangeMail({ to: email, link: linkUrl(opts.issuer, 'email-change', link.secret), hours: LINK_LIFETIME_SECONDS['email-change'] / 3600 }),
        emailChangeNoticeMail({ to: account.email, newEmail: email }),
      ],
    };
  });
}

/** requestEmailChangeAs, then both mails (out of the request path). For the account page. */
export async function requestEmailChange(deps: Pick<LifecycleDeps, 'db' | 'mailer'> & { issuer: string }, actor: Actor, accountId: string, newEmail: string): Promise<{ newEmail: string; expiresAt: Date }> {
  assertMailEnabled(deps.mailer);
  const r = await requestEmailChangeAs(deps.db, actor, accountId, newEmail, { issuer: deps.issuer });
  for (const m of r.mails) deps.mailer.enqueue(m);
  return { newEmail: r.newEmail, expiresAt: r.expiresAt };
}

/** Uses an email-change link: the account's email becomes the new (verified) address. */
export async function completeEmailChange(db: Db, secret: string, request: RequestInfo = {}): Promise<LinkOutcome<AccountView>> {
  return inTransaction(db, async (tx): Promise<LinkOutcome<AccountView>> => {
    const link = await consumeLink(tx, 'email-change', secret);
    if (!link.ok) return link;
    const account = link.link.accountId ? await confirmNewEmail(tx, link.link.accountId, link.link.email) : undefined;
    if (!account) return { ok: false, reason: 'unknown' };
    await auditChange(tx, selfActor(account.id, request), 'user.email_change', target(account.id), { from: link.link.data.from ?? null, to: account.email });
    return { ok: true, value: account };
  });
}
