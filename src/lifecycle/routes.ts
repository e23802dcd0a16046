// The pages of a person's account lifecycle, server-rendered like the
// sign-in pages (views/, src/interactions/pages.ts) and mounted in front of
// oidc-provider below the issuer's path:
//
//   GET  /reset                  "Forgot password?": the request form        POST: always "check your email"
//   GET  /reset/:token           choose a new password                       POST: sets it, ends every session
//   GET  /invite/:token          an invitation: choose a password            POST: then two-step set-up where required
//   POST /invite/enrol           confirms the authenticator of an invitation (code), shows recovery codes
//   GET  /signup                 SIGNUP=open: the form (invite: "by invitation only"; off: not found)
//   GET  /signup/:token          confirm the address                         POST: creates the account
//   GET  /verify-email/:token    confirm a new email address                 POST: makes the change
//
// A link's GET never spends it (mail scanners open links): it shows a page
// whose button POSTs. Every POST carries a CSRF token bound to a random,
// HttpOnly, SameSite=Lax cookie of this browser (HMAC under COOKIE_SECRETS,
// src/interactions/csrf.ts); without it the answer is a 403 page. Bad input
// gets the form again with a message (400), a stale link a page that says
// why with a way on (410 used or expired, 404 unknown); never a 5xx.
//
// The secret of a link is in the path: the access log names the route
// pattern instead (ctx.state.loggedPath), and the pages send no Referer
// (Referrer-Policy: no-referrer).
import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { confirmTotpEnrolment, newTotpSecret, openString, sealString, totpUri } from '../accounts/mfa.ts';
import { EMAIL_MAX_LENGTH, isValidEmail, normalizeEmail } from '../accounts/store.ts';
import { recordAudit } from '../audit/audit.ts';
import type { ClientRegistry } from '../clients/registry.ts';
import { listClients } from '../clients/store.ts';
import type { Config } from '../config/config.ts';
import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from '../http/errors.ts';
import type { RouteGroup } from '../http/routes.ts';
import { basePath, stylesheetUrl } from '../interactions/assets.ts';
import { csrfToken, verifyCsrfToken } from '../interactions/csrf.ts';
import { FormError, formOf, formParser, type Form } from '../interactions/form.ts';
import { html, renderView, type HtmlValue, type SafeHtml } from '../interactions/html.ts';
import { groupSecret, qrDataUri } from '../interactions/mfa.ts';
import { ENROL_FAILED, messageContent, sendPage } from '../interactions/pages.ts';
import { everyPage } from '../kernel/pagination.ts';
import { ConflictError, ValidationError } from '../kernel/errors.ts';
import {
  acceptInvitation,
  checkLink,
  completeEmailChange,
  completePasswordReset,
  completeSignup,
  DEFAULT_ENROLMENT_WINDOW_SECONDS,
  INVITATION_DAYS,
  openEnrolmentAfterInvitation,
  requestPasswordReset,
  requestSignup,
  RESET_MINUTES,
  validateSignup,
  type LifecycleDeps,
  type RequestInfo,
} from './writes.ts';

export interface LifecycleRouteDeps extends Omit<LifecycleDeps, 'config'> {
  config: Config;
  clients: ClientRegistry;
}

const FORMS_COOKIE = 'gh_forms';
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
/** how long the two-step set-up after an accepted invitation stays open */
export const INVITE_ENROL_SECONDS = 30 * 60;
const ENROL_AAD = 'gatehouse/invite-enrol/v1';

type Purpose = 'invite' | 'reset' | 'signup' | 'email-change';

export function lifecycleRoutes(deps: LifecycleRouteDeps): RouteGroup {
  const { config, db, logger } = deps;
  const base = basePath(config.issuer);
  const stylesheet = stylesheetUrl(config.issuer);
  const page = (ctx: Context, status: number, title: string, content: SafeHtml) => sendPage(ctx, status, title, content, stylesheet);
  const message = (ctx: Context, status: number, title: string, heading: string, ...paragraphs: HtmlValue[]) => page(ctx, status, title, messageContent(heading, ...paragraphs));
  const alert = (error: string | undefined) => (error ? html`<div class="alert" role="alert" id="form-error">${error}</div>` : '');
  const invalid = (error: string | undefined) => (error ? html` aria-invalid="true" aria-describedby="form-error"` : '');
  const requestInfo = (ctx: Context): RequestInfo => ({ ip: ctx.ip, requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : null });

  // ------------------------------------------------------------ CSRF

  /** This browser's forms cookie (set when missing); the CSRF token of its forms. */
  function csrf(ctx: Context): string {
    let value = ctx.cookies.get(FORMS_COOKIE);
    if (!value || !COOKIE_VALUE.test(value)) {
      value = randomBytes(32).toString('base64url');
      ctx.cookies.set(FORMS_COOKIE, value, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: base || '/', signed: false, overwrite: true });
    }
    return csrfToken(config.cookieSecrets, `forms:${value}`);
  }

  function csrfOk(ctx: Context, form: Form): boolean {
    const value = ctx.cookies.get(FORMS_COOKIE);
    return !!value && COOKIE_VALUE.test(value) && verifyCsrfToken(config.cookieSecrets, `forms:${value}`, form.get('csrf'));
  }

  /** The form of a POST, its CSRF token checked; undefined when the page was answered already. */
  function readForm(ctx: Context): Form | undefined {
    let form: Form;
    try {
      form = formOf(ctx);
    } catch (err) {
      if (err instanceof FormError) {
        message(ctx, err.status, 'Not accepted', 'This form was not accepted', err.message);
        return undefined;
      }
      throw err;
    }
    if (!csrfOk(ctx, form)) {
      message(ctx, 403, 'Form not accepted', 'This form was not accepted', 'It did not come from this page, or the page is out of date.', 'Go back, reload the page and try again.');
      return undefined;
    }
    return form;
  }

  /** The application the person came from (?client_id=), when it is a known, enabled one. */
  async function clientOf(id: unknown): Promise<{ id: string; name: string } | undefined> {
    if (typeof id !== 'string' || id === '' || id.length > 200) return undefined;
    const c = await deps.clients.get(id);
    return c && !c.disabled ? { id: c.id, name: c.name } : undefined;
  }

  // ---------------------------------------------------- link problems

  function linkProblem(ctx: Context, purpose: Purpose, reason: 'unknown' | 'used' | 'expired'): void {
    const resetLink = config.mail.enabled ? html`<a href="${base}/reset">Request a new password reset link</a>` : '';
    const status = reason === 'unknown' ? 404 : 410;
    const what = { invite: 'invitation', reset: 'password reset link', signup: 'confirmation link', 'email-change': 'confirmation link' }[purpose];
    const heading = reason === 'used' ? `This ${what} was already used` : reason === 'expired' ? `This ${what} has expired` : `This ${what} is not valid`;
    const unknownHint = 'Check that you opened the whole link from the mail; links that were replaced by a newer one stop working.';
    const wayOn: HtmlValue[] =
      purpose === 'reset'
        ? [
            reason === 'expired' ? `Reset links work once, for ${RESET_MINUTES} minutes; a newer link or a completed reset ends the earlier ones.` : reason === 'unknown' ? unknownHint : 'Each reset link works once.',
            resetLink,
          ]
        : purpose === 'invite'
          ? reason === 'used'
            ? ['Your account is set up: sign in from your application with the password you chose.', resetLink ? html`Forgot it? ${resetLink}.` : '']
            : [reason === 'expired' ? `Invitations work for ${INVITATION_DAYS} days, and a new invitation replaces the earlier ones.` : unknownHint, 'Ask the person who invited you to send a new invitation.']
          : purpose === 'signup'
            ? reason === 'used'
              ? ['Your address is confirmed and your account exists: sign in from your application.']
              : [
                  reason === 'expired' ? 'Confirmation links work for 24 hours.' : unknownHint,
                  config.signup === 'open' ? html`<a href="${base}/signup">Sign up again</a>` : '',
                ]
            : reason === 'used'
              ? ['The new address is confirmed already.']
              : [reason === 'expired' ? 'Confirmation links work for 24 hours.' : unknownHint, 'Ask for the change again from your account page.'];
    message(ctx, status, heading, heading, ...wayOn.filter((p) => p !== ''));
  }

  // ----------------------------------------------------------- reset

  async function showResetRequest(ctx: Context, status: number, v: { email?: string; clientId?: string; error?: string } = {}): Promise<void> {
    const client = await clientOf(v.clientId ?? ctx.query.client_id);
    page(
      ctx,
      status,
      'Reset your password',
      renderView('reset-request', {
        lead: client
          ? html`Enter the email address of your account for <strong>${client.name}</strong>. If it has an account, we mail it a link to choose a new password.`
          : 'Enter the email address of your account. If it has an account, we mail it a link to choose a new password.',
        alert: alert(v.error),
        action: `${base}/reset`,
        csrf: csrf(ctx),
        clientId: client?.id ?? '',
        email: v.email ?? '',
        emailAttrs: [html` autofocus`, invalid(v.error)],
      }),
    );
  }

  async function requestReset(ctx: Context): Promise<void> {
    const form = readForm(ctx);
    if (!form) return;
    const raw = form.get('email') ?? '';
    const email = normalizeEmail(raw);
    const clientId = form.get('client_id') ?? '';
    if (email === '') return showResetRequest(ctx, 400, { email: raw.slice(0, 320), clientId, error: 'Enter the email address of your account.' });
    if (email.length > EMAIL_MAX_LENGTH || !isValidEmail(email)) {
      return showResetRequest(ctx, 400, { email: raw.slice(0, 320), clientId, error: 'Enter a valid email address, like name@example.com.' });
    }
    if (!config.mail.enabled) return mailUnavailable(ctx);
    const client = await clientOf(clientId);
    await requestPasswordReset({ ...deps, config }, email, { ...(client ? { clientName: client.name } : {}), request: requestInfo(ctx) });
    // the same page whether or not the address has an account
    message(
      ctx,
      200,
      'Check your email',
      'Check your email',
      html`If <strong>${email}</strong> belongs to an account, we have sent it a link to choose a new password. The link works once, for ${RESET_MINUTES} minutes.`,
      'No mail after a few minutes? Check your spam folder, or ask again.',
    );
  }

  function passwordForm(ctx: Context, status: number, v: { heading: string; lead: HtmlValue; action: string; email: string; submit: string; error?: string }): void {
    page(
      ctx,
      status,
      v.heading,
      renderView('password-form', {
        heading: v.heading,
        lead: v.lead,
        alert: alert(v.error),
        action: v.action,
        csrf: csrf(ctx),
        email: v.email,
        errorRef: v.error ? ' form-error' : '',
        passwordAttrs: [html` autofocus`, v.error ? html` aria-invalid="true"` : ''],
        submit: v.submit,
      }),
    );
  }

  const resetForm = (ctx: Context, status: number, token: string, email: string, error?: string) =>
    passwordForm(ctx, status, {
      heading: 'Choose a new password',
      lead: html`For <strong>${email}</strong>. Once it is changed you are signed out everywhere; your two-step verification stays as it is.`,
      action: `${base}/reset/${token}`,
      email,
      submit: 'Change password',
      ...(error ? { error } : {}),
    });

  /** The new password of a form, or the message to show. */
  function newPassword(form: Form): { password: string } | { error: string } {
    const password = form.get('password') ?? '';
    if (password === '') return { error: 'Enter a new password.' };
    if (password !== (form.get('confirm') ?? '')) return { error: 'The two passwords do not match. Type the same password twice.' };
    return { password };
  }

  const passwordProblem = (err: unknown): string | undefined =>
    err instanceof ValidationError ? `The password ${err.reason.replace(/\.$/, '')}.` : undefined;

  async function showReset(ctx: Context): Promise<void> {
    const token = ctx.params.token!;
    const link = await checkLink(db, 'reset', token);
    if (!link.ok) return linkProblem(ctx, 'reset', link.reason);
    resetForm(ctx, 200, token, link.link.email);
  }

  async function completeReset(ctx: Context): Promise<void> {
    const form = readForm(ctx);
    if (!form) return;
    const token = ctx.params.token!;
    const link = await checkLink(db, 'reset', token);
    if (!link.ok) return linkProblem(ctx, 'reset', link.reason);
    const pw = newPassword(form);
    if ('error' in pw) return resetForm(ctx, 400, token, link.link.email, pw.error);
    let r: Awaited<ReturnType<typeof completePasswordReset>>;
    try {
      r = await completePasswordReset({ ...deps, config }, token, pw.password, requestInfo(ctx));
    } catch (err) {
      const problem = passwordProblem(err);
      if (problem) return resetForm(ctx, 400, token, link.link.email, problem);
      throw err;
    }
    if (!r.ok) return linkProblem(ctx, 'reset', r.reason);
    message(
      ctx,
      200,
      'Password changed',
      'Your password is changed',
      'You have been signed out everywhere. Go back to your application and sign in with the new password.',
      r.value.account.mfaEnabled ? 'You will still be asked for a code from your authenticator app.' : '',
    );
  }

  function mailUnavailable(ctx: Context): void {
    message(ctx, 404, 'Not available', 'Password reset is not available here', 'Ask your administrator to set a new password for you.');
  }

  // ------------------------------------------------------ invitations

  const inviteForm = (ctx: Context, status: number, token: string, email: string, error?: string) =>
    passwordForm(ctx, status, {
      heading: 'Welcome to Gatehouse',
      lead: html`You were invited as <strong>${email}</strong>. Choose a password to set up your account.`,
      action: `${base}/invite/${token}`,
      email,
      submit: 'Set password and continue',
      ...(error ? { error } : {}),
    });

  async function showInvite(ctx: Context): Promise<void> {
    const token = ctx.params.token!;
    const link = await checkLink(db, 'invite', token);
    if (!link.ok) return linkProblem(ctx, 'invite', link.reason);
    inviteForm(ctx, 200, token, link.link.email);
  }

  /** Whether an enabled application requires two-step verification (then an invited person sets it up at once). */
  async function mfaRequiredAnywhere(): Promise<boolean> {
    const clients = await everyPage((p) => listClients(db, p));
    return clients.some((c) => c.requireMfa && !c.disabled);
  }

  async function acceptInvite(ctx: Context): Promise<void> {
    const form = readForm(ctx);
    if (!form) return;
    const token = ctx.params.token!;
    const link = await checkLink(db, 'invite', token);
    if (!link.ok) return linkProblem(ctx, 'invite', link.reason);
    const pw = newPassword(form);
    if ('error' in pw) return inviteForm(ctx, 400, token, link.link.email, pw.error);
    let r: Awaited<ReturnType<typeof acceptInvitation>>;
    try {
      r = await acceptInvitation(db, token, pw.password, requestInfo(ctx));
    } catch (err) {
      const problem = passwordProblem(err);
      if (problem) return inviteForm(ctx, 400, token, link.link.email, problem);
      throw err;
    }
    if (!r.ok) return linkProblem(ctx, 'invite', r.reason);
    const account = r.value;
    if (await mfaRequiredAnywhere()) {
      // the invitation replaces the enrolment window: set up now, in this flow
      await openEnrolmentAfterInvitation(db, account.id, INVITE_ENROL_SECONDS);
      return showEnrol(ctx, 200, sealEnrolState(account.id, account.email, newTotpSecret()), true);
    }
    await openEnrolmentAfterInvitation(db, account.id, DEFAULT_ENROLMENT_WINDOW_SECONDS);
    const state = sealEnrolState(account.id, account.email, newTotpSecret());
    page(
      ctx,
      200,
      'Your account is ready',
      html`${messageContent(
        'Your account is ready',
        html`Your password is set and <strong>${account.email}</strong> is verified. Go back to your application and sign in.`,
        'You can add two-step verification now (recommended) with an authenticator app on your phone.',
      )}<form method="post" action="${base}/invite/enrol" class="actions"><input type="hidden" name="csrf" value="${csrf(ctx)}"><input type="hidden" name="state" value="${state}"><button type="submit" class="button secondary">Set up two-step verification</button></form>`,
    );
  }

  interface EnrolState {
    a: string;
    m: string;
    s: string;
    e: number;
  }

  function sealEnrolState(accountId: string, email: string, secret: string): string {
    const state: EnrolState = { a: accountId, m: email, s: secret, e: Math.floor(Date.now() / 1000) + INVITE_ENROL_SECONDS };
    return sealString(JSON.stringify(state), config.keyEncryptionKey, ENROL_AAD);
  }

  function openEnrolState(blob: unknown): EnrolState | undefined {
    if (typeof blob !== 'string' || blob.length > 2000) return undefined;
    const plain = openString(blob, config.keyEncryptionKey, ENROL_AAD);
    if (!plain) return undefined;
    try {
      const s = JSON.parse(plain) as EnrolState;
      return typeof s.a === 'string' && typeof s.s === 'string' && typeof s.e === 'number' && s.e > Date.now() / 1000 ? s : undefined;
    } catch {
      return undefined;
    }
  }

  async function showEnrol(ctx: Context, status: number, sealed: string, required: boolean, error?: string): Promise<void> {
    const state = openEnrolState(sealed)!;
    page(
      ctx,
      status,
      'Set up two-step verification',
      // the sign-in enrolment's page, carrying the sealed state instead of an interaction
      renderView('mfa-enrol', {
        lead: required
          ? 'Your password is set. Applications here require two-step verification: set it up now, once. From then on you sign in with your password and a code from your phone.'
          : 'Sign in with your password and a code from your phone from now on.',
        alert: alert(error),
        qr: await qrDataUri(totpUri(state.s, state.m)),
        secret: groupSecret(state.s),
        action: `${base}/invite/enrol`,
        csrf: csrf(ctx),
        hiddenFields: html`
  <input type="hidden" name="state" value="${sealed}">`,
        codeAttrs: error ? html` aria-describedby="form-error" aria-invalid="true" autofocus` : html` autofocus`,
        stepUp: '',
        cancel: '',
        switchForm: '',
      }),
    );
  }

  async function confirmInviteEnrol(ctx: Context): Promise<void> {
    const form = readForm(ctx);
    if (!form) return;
    const sealed = form.get('state') ?? '';
    const state = openEnrolState(sealed);
    if (!state) {
      return message(
        ctx,
        410,
        'Set-up expired',
        'This set-up has expired',
        'Your password is set. Sign in from your application; if it requires two-step verification and you cannot set it up, ask your administrator.',
      );
    }
    if (!form.has('code')) return showEnrol(ctx, 200, sealed, false);
    const code = (form.get('code') ?? '').trim();
    if (code === '') return showEnrol(ctx, 400, sealed, false, 'Enter the 6-digit code from your authenticator app.');
    const r = await confirmTotpEnrolment(
      db,
      { accountId: state.a, secret: state.s, code },
      {
        ip: ctx.ip,
        kek: config.keyEncryptionKey,
        inTransaction: (tx) =>
          recordAudit(tx, {
            action: 'mfa.enrol',
            actor: { type: 'user', id: state.a },
            target: { type: 'user', id: state.a },
            details: { method: 'totp', via: 'invitation' },
            ...requestInfo(ctx),
          }),
      },
    );
    if (r.ok) {
      return page(
        ctx,
        200,
        'Two-step verification is on',
        html`<h1 id="page-title">Two-step verification is on</h1>
<p class="lead">Save these recovery codes somewhere safe, such as a password manager. Each one lets you sign in once without your phone.</p>
<section aria-labelledby="codes-title"><h2 id="codes-title">Your recovery codes</h2><ul class="codes" id="recovery-codes">${r.recoveryCodes.map((c) => html`<li><code>${c}</code></li>`)}</ul></section>
<p class="muted">They are shown only this once. Your account is ready: go back to your application and sign in.</p>`,
      );
    }
    if (r.reason === 'invalid') return showEnrol(ctx, 400, sealed, false, ENROL_FAILED);
    if (r.reason === 'enrolled') return message(ctx, 409, 'Already set up', 'Two-step verification is already on', 'Go back to your application and sign in.');
    return message(
      ctx,
      410,
      'Set-up expired',
      'This set-up has expired',
      'Your password is set. Sign in from your application; if it requires two-step verification and you cannot set it up, ask your administrator.',
    );
  }

  // ---------------------------------------------------------- sign-up

  async function showSignup(ctx: Context, status: number, v: { email?: string; name?: string; clientId?: string; error?: string; field?: string } = {}): Promise<void> {
    if (config.signup !== 'open') return signupClosed(ctx);
    const client = await clientOf(v.clientId ?? ctx.query.client_id);
    const attrs = (field: string) => (v.error && (v.field === field || (!v.field && field === 'email')) ? invalid(v.error) : '');
    page(
      ctx,
      status,
      'Create an account',
      renderView('signup', {
        lead: client ? html`to continue to <strong>${client.name}</strong>` : 'with Gatehouse single sign-on',
        alert: alert(v.error),
        action: `${base}/signup`,
        csrf: csrf(ctx),
        clientId: client?.id ?? '',
        name: v.name ?? '',
        email: v.email ?? '',
        nameAttrs: [v.field === undefined || v.field === 'name' ? html` autofocus` : '', attrs('name')],
        emailAttrs: attrs('email'),
        passwordAttrs: attrs('password'),
      }),
    );
  }

  function signupClosed(ctx: Context): void {
    if (config.signup === 'invite') {
      return message(ctx, 403, 'By invitation only', 'Accounts here are by invitation only', 'Ask your administrator for an invitation; it comes by mail with a link to set up your account.');
    }
    message(ctx, 404, 'Not found', 'Page not found', 'Go back to the application and sign in.');
  }

  const SIGNUP_TEXT: Record<string, string> = { email: 'Email address', name: 'Your name', password: 'Password' };

  async function submitSignup(ctx: Context): Promise<void> {
    if (config.signup !== 'open') return signupClosed(ctx);
    const form = readForm(ctx);
    if (!form) return;
    const raw = { email: form.get('email') ?? '', name: form.get('name') ?? '', password: form.get('password') ?? '' };
    const shown = { email: raw.email.slice(0, 320), name: raw.name.slice(0, 200), clientId: form.get('client_id') ?? '' };
    let input: ReturnType<typeof validateSignup>;
    try {
      input = validateSignup(raw);
    } catch (err) {
      if (err instanceof ValidationError && err.field) {
        const label = SIGNUP_TEXT[err.field] ?? err.field;
        return showSignup(ctx, 400, { ...shown, field: err.field, error: `${label} ${err.reason.replace(/\.$/, '')}.` });
      }
      throw err;
    }
    const client = await clientOf(shown.clientId);
    await requestSignup({ ...deps, config }, input, client ? { clientName: client.name } : {});
    message(
      ctx,
      200,
      'Check your email',
      'Check your email',
      html`We have sent a link to <strong>${input.email}</strong>. Open it to confirm your address and finish creating your account; it works for 24 hours.`,
      'You can sign in once your address is confirmed.',
    );
  }

  /**
   * The page a mailed confirmation link opens: opening never spends the link
   * (mail scanners open links); the button on the page does.
   */
  async function showLinkConfirm(ctx: Context, purpose: Purpose, path: string, copy: { title: string; lead: (email: string) => SafeHtml; submit: string }): Promise<void> {
    const token = ctx.params.token!;
    const link = await checkLink(db, purpose, token);
    if (!link.ok) return linkProblem(ctx, purpose, link.reason);
    page(
      ctx,
      200,
      copy.title,
      renderView('link-confirm', { heading: copy.title, lead: copy.lead(link.link.email), action: `${base}${path}/${token}`, csrf: csrf(ctx), submit: copy.submit }),
    );
  }

  function showSignupLink(ctx: Context): Promise<void> {
    return showLinkConfirm(ctx, 'signup', '/signup', {
      title: 'Confirm your email address',
      lead: (email) => html`Confirm that <strong>${email}</strong> is yours to finish creating your account.`,
      submit: 'Confirm and create my account',
    });
  }

  async function confirmSignup(ctx: Context): Promise<void> {
    const form = readForm(ctx);
    if (!form) return;
    let r: Awaited<ReturnType<typeof completeSignup>>;
    try {
      r = await completeSignup(db, ctx.params.token!, requestInfo(ctx));
    } catch (err) {
      if (err instanceof ConflictError) {
        return message(ctx, 409, 'Account exists', 'This address already has an account', 'Sign in from your application; if you forgot the password, reset it from the sign-in page.');
      }
      throw err;
    }
    if (!r.ok) return linkProblem(ctx, 'signup', r.reason);
    message(ctx, 200, 'Account created', 'Your account is ready', html`<strong>${r.value.email}</strong> is confirmed. Go back to your application and sign in.`);
  }

  // ------------------------------------------------------ email change

  function showEmailLink(ctx: Context): Promise<void> {
    return showLinkConfirm(ctx, 'email-change', '/verify-email', {
      title: 'Confirm your new email address',
      lead: (email) => html`Use <strong>${email}</strong> as the email address of your account from now on.`,
      submit: 'Confirm the new address',
    });
  }

  async function confirmEmail(ctx: Context): Promise<void> {
    const form = readForm(ctx);
    if (!form) return;
    let r: Awaited<ReturnType<typeof completeEmailChange>>;
    try {
      r = await completeEmailChange(db, ctx.params.token!, requestInfo(ctx));
    } catch (err) {
      if (err instanceof ConflictError) return message(ctx, 409, 'Address taken', 'This address belongs to another account', 'Your email address was not changed.');
      throw err;
    }
    if (!r.ok) return linkProblem(ctx, 'email-change', r.reason);
    message(ctx, 200, 'Email address changed', 'Your email address is changed', html`Sign in with <strong>${r.value.email}</strong> from now on.`);
  }

  // ----------------------------------------------------------- router

  const router = new Router({ ...(base ? { prefix: base } : {}), strict: true });
  const label =
    (route: string, secret = false) =>
    (ctx: Context, next: Next) => {
      ctx.state.route = route;
      if (secret) ctx.state.loggedPath = `${base}${route}`;
      return next();
    };
  const parse = formParser();
  router.get('/reset', label('/reset'), (ctx) => (config.mail.enabled ? showResetRequest(ctx, 200) : mailUnavailable(ctx)));
  router.post('/reset', label('/reset'), parse, requestReset);
  router.get('/reset/:token', label('/reset/:token', true), showReset);
  router.post('/reset/:token', label('/reset/:token', true), parse, completeReset);
  router.post('/invite/enrol', label('/invite/enrol'), parse, confirmInviteEnrol);
  router.get('/invite/:token', label('/invite/:token', true), showInvite);
  router.post('/invite/:token', label('/invite/:token', true), parse, acceptInvite);
  router.get('/signup', label('/signup'), (ctx) => showSignup(ctx, 200));
  router.post('/signup', label('/signup'), parse, submitSignup);
  router.get('/signup/:token', label('/signup/:token', true), showSignupLink);
  router.post('/signup/:token', label('/signup/:token', true), parse, confirmSignup);
  router.get('/verify-email/:token', label('/verify-email/:token', true), showEmailLink);
  router.post('/verify-email/:token', label('/verify-email/:token', true), parse, confirmEmail);
  const dispatch = router.routes() as Middleware;

  const notFound = (ctx: Context) => message(ctx, 404, 'Not found', 'Page not found', 'Go back to the application and sign in.');

  const unmatched = (ctx: Context) => async () => {
    const allowed = new Set<string>();
    for (const layer of router.match(ctx.path, ctx.method).path) for (const m of layer.methods) allowed.add(m);
    ctx.state.route ??= '/account-links';
    if (allowed.size === 0) return notFound(ctx);
    ctx.set('Allow', ['GET', 'HEAD', 'POST'].filter((m) => allowed.has(m)).join(', '));
    message(ctx, 405, 'Not allowed', 'Not allowed', allowed.has('POST') ? 'This address only accepts form submissions.' : 'This page can only be viewed.');
  };

  const PREFIXES = ['/reset', '/invite', '/signup', '/verify-email'];
  const owns = (path: string): boolean => {
    if (base && !path.startsWith(`${base}/`)) return false;
    const rel = path.slice(base.length);
    return PREFIXES.some((p) => rel === p || rel.startsWith(`${p}/`));
  };

  const middleware: Middleware = async (ctx) => {
    try {
      await dispatch(ctx, unmatched(ctx));
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        return message(ctx, 503, 'Temporarily unavailable', 'This page is temporarily unavailable', 'Please try again in a moment.');
      }
      logger.error({ reqId: ctx.state.requestId, err: { name: (err as Error).name, message: (err as Error).message } }, 'account page failed');
      message(ctx, 500, 'Something went wrong', 'Something went wrong', 'Please try again.', `Request id: ${String(ctx.state.requestId ?? '')}`);
    }
  };
  return { owns, middleware };
}
