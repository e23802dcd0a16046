// The pages people see: built from views/*.html with html.ts. Every value
// that comes from a request, a client or an account is escaped.
import type { Context } from 'koa';
import { html, renderView, type HtmlValue, type SafeHtml } from './html.ts';
import type { ResourceAccess } from './grants.ts';

/** The one message for every refused login: wrong email, wrong password, locked, disabled. */
export const LOGIN_FAILED = 'Email or password is incorrect. Check them and try again; after repeated failures, sign-in is paused for a while.';
/** Added to LOGIN_FAILED with open sign-up: an account exists only once its email is confirmed. */
export const LOGIN_FAILED_SIGNUP_HINT = 'If you have just signed up, verify your email first: open the link we mailed you.';
export const LOGIN_MISSING = 'Enter your email address and your password.';

const OIDC_SCOPE_TEXT: Record<string, string> = {
  openid: 'Confirm who you are (sign you in)',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay connected, even when you are not using it',
};

/** A complete HTML document around `content`. */
export function layout(title: string, content: SafeHtml, stylesheet: string, scripts: readonly string[] = []): string {
  return renderView('layout', { title, stylesheet, content, scripts: scripts.map((src) => html`<script src="${src}" defer></script>
`) }).value;
}

export function sendPage(ctx: Context, status: number, title: string, content: SafeHtml, stylesheet: string, scripts: readonly string[] = []): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = layout(title, content, stylesheet, scripts);
}

export interface LoginView {
  action: string;
  abortAction: string;
  csrf: string;
  email: string;
  clientName: string | undefined;
  /** the passwordless passkey form: its action and the WebAuthn request options (JSON) */
  passkeyAction: string;
  passkeyOptions: string;
  error?: string;
  /** "Forgot password?" (when mail is set up) */
  resetHref?: string;
  /** "Create an account" (SIGNUP=open) */
  signupHref?: string;
  /** upstream identity providers: a "Continue with <name>" button each */
  providers?: { id: string; name: string }[];
  /** where those buttons post (the interaction's federate form) */
  federateAction?: string;
  /** some email domains are routed to a provider: the password may be left empty */
  passwordOptional?: boolean;
}

/** The "Continue with …" buttons under the login form. */
function providersContent(v: LoginView): SafeHtml | string {
  if (!v.providers?.length || !v.federateAction) return '';
  return html`<section class="providers" aria-labelledby="providers-title"><h2 id="providers-title">Or sign in with</h2>${v.providers.map(
    (p) =>
      html`<form method="post" action="${v.federateAction!}"><input type="hidden" name="csrf" value="${v.csrf}"><input type="hidden" name="idp" value="${p.id}"><button type="submit" class="button secondary">Continue with ${p.name}</button></form>`,
  )}</section>`;
}

export function loginContent(v: LoginView): SafeHtml {
  const links = [
    v.resetHref ? html`<a href="${v.resetHref}" id="forgot-password">Forgot password?</a>` : '',
    v.signupHref ? html`<a href="${v.signupHref}" id="create-account">Create an account</a>` : '',
  ];
  const describedBy = v.error ? html` aria-describedby="form-error" aria-invalid="true"` : html``;
  const focusEmail = !v.email;
  return renderView('login', {
    lead: v.clientName ? html`to continue to <strong>${v.clientName}</strong>` : 'to continue',
    alert: v.error ? html`<div class="alert" role="alert" id="form-error">${v.error}</div>` : '',
    action: v.action,
    abortAction: v.abortAction,
    csrf: v.csrf,
    email: v.email,
    emailAttrs: [focusEmail ? html` autofocus` : '', describedBy],
    passwordAttrs: [focusEmail ? '' : html` autofocus`, describedBy],
    accountLinks: v.resetHref || v.signupHref ? html`<p class="links">${links}</p>` : '',
    passwordRequired: v.passwordOptional ? '' : html` required`,
    providers: providersContent(v),
    passkeyAction: v.passkeyAction,
    passkeyOptions: v.passkeyOptions,
  });
}

/** The one message for every refused second factor: wrong, used already, locked. */
export const MFA_FAILED = 'That code is not valid. Check it and try again; after repeated failures, sign-in is paused for a while.';
export const MFA_MISSING = 'Enter the code from your authenticator app, or a recovery code.';
export const SIGN_IN_AGAIN = 'That took too long. Sign in again.';
export const PASSKEY_FAILED = 'That passkey could not be used. Try again, or use another way to sign in.';
export const ENROL_FAILED = 'That code does not match. Check the time on your phone, wait for a new code and try again.';

function continueLead(clientName: string | undefined, text: string): SafeHtml {
  return clientName ? html`${text} to continue to <strong>${clientName}</strong>.` : html`${text} to continue.`;
}

function alertOf(error: string | undefined): SafeHtml | string {
  return error ? html`<div class="alert" role="alert" id="form-error">${error}</div>` : '';
}

export interface MfaVerifyView {
  action: string;
  abortAction: string;
  csrf: string;
  clientName: string | undefined;
  /** the account has an authenticator app (else only recovery codes go in the code field) */
  totp: boolean;
  /** the account's passkeys may be used: the form's action and the WebAuthn request options (JSON) */
  passkey?: { action: string; options: string };
  /** a step-up: the person is signed in already and asked only for the second factor */
  stepUp?: { email: string; switchAction: string };
  error?: string;
}

export function mfaVerifyContent(v: MfaVerifyView): SafeHtml {
  const passkey = v.passkey
    ? html`<form method="post" action="${v.passkey.action}" class="stack passkey" data-passkey-sign-in data-options="${v.passkey.options}" data-button="passkey-button" data-status="passkey-status">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <input type="hidden" name="response" value="">
  <button type="button" id="passkey-button" class="button ${v.totp ? 'secondary' : 'primary'}" hidden>Use a passkey</button>
  <p id="passkey-status" class="hint" role="status"></p>
</form>`
    : '';
  const text = v.totp ? 'Enter the code from your authenticator app' : v.passkey ? 'Use your passkey' : 'Enter a recovery code';
  return renderView('mfa-verify', {
    lead: continueLead(v.clientName, v.passkey && v.totp ? 'Use your passkey, or enter the code from your authenticator app,' : text),
    stepUp: stepUpNote(v.stepUp, 'This application needs a second factor.'),
    alert: alertOf(v.error),
    passkey,
    action: v.action,
    abortAction: v.abortAction,
    csrf: v.csrf,
    errorRef: v.error ? ' form-error' : '',
    codeAttrs: v.error ? html` aria-invalid="true"` : '',
    codeHint: v.totp
      ? 'Enter the 6-digit code from your authenticator app. Lost your phone? Enter one of your recovery codes instead.'
      : 'Enter one of your recovery codes.',
    codeLabel: v.totp ? 'Authentication code' : 'Recovery code',
    autofocus: v.passkey && !v.totp ? '' : html` autofocus`,
    switchForm: switchForm(v.stepUp, v.csrf),
  });
}

export interface MfaEnrolView {
  action: string;
  abortAction: string;
  csrf: string;
  clientName: string | undefined;
  /** the QR code image (data: URI) */
  qr: string;
  /** the secret, grouped for typing */
  secret: string;
  /** the client asked for it (else the request did) */
  required: boolean;
  /** a step-up: who is signed in, and the "Not you?" form's action */
  stepUp?: { email: string; switchAction: string };
  error?: string;
}

/** "Signed in as … Not you?" at a step-up (the form is rendered by switchForm). */
function stepUpNote(stepUp: { email: string } | undefined, text: string): SafeHtml | string {
  return stepUp
    ? html`<p class="muted">Signed in as <strong>${stepUp.email}</strong>. ${text} <button type="submit" form="switch-account" class="button link inline">Not you?</button></p>`
    : '';
}

function switchForm(stepUp: { switchAction: string } | undefined, csrf: string): SafeHtml | string {
  return stepUp ? html`<form method="post" action="${stepUp.switchAction}" id="switch-account" hidden><input type="hidden" name="csrf" value="${csrf}"></form>` : '';
}

export function mfaEnrolContent(v: MfaEnrolView): SafeHtml {
  const who = v.clientName ? html`<strong>${v.clientName}</strong>` : 'This application';
  return renderView('mfa-enrol', {
    lead: html`${who} ${v.required ? 'requires' : 'asks for'} two-step verification. Set it up once: from now on you sign in with your password and a code from your phone.`,
    alert: alertOf(v.error),
    qr: v.qr,
    secret: v.secret,
    action: v.action,
    csrf: v.csrf,
    hiddenFields: '',
    codeAttrs: v.error ? html` aria-describedby="form-error" aria-invalid="true" autofocus` : html` autofocus`,
    cancel: html`<form method="post" action="${v.abortAction}" class="secondary-action">
  <input type="hidden" name="csrf" value="${v.csrf}">
  <button type="submit" class="button link">Cancel and return to the application</button>
</form>`,
    stepUp: stepUpNote(v.stepUp, 'This application needs two-step verification.'),
    switchForm: switchForm(v.stepUp, v.csrf),
  });
}

export interface MfaUnavailableView {
  abortAction: string;
  csrf: string;
  clientName: string | undefined;
  /** the client asked for it (else the request did) */
  required: boolean;
  /** how long an enrolment window stays open */
  days: number;
}

/** A second factor is needed, the account has none, and its enrolment window is closed. */
export function mfaUnavailableContent(v: MfaUnavailableView): SafeHtml {
  const who = v.clientName ? html`<strong>${v.clientName}</strong>` : 'This application';
  return renderView('mfa-unavailable', {
    lead: html`${who} ${v.required ? 'requires' : 'asks for'} two-step verification, and your account has no authenticator app set up yet.`,
    days: v.days,
    abortAction: v.abortAction,
    csrf: v.csrf,
  });
}

/** Copy and download buttons for a list of recovery codes (views/static/codes.js shows them). */
export function recoveryCodeTools(): SafeHtml {
  return html`<div class="actions" id="codes-tools" hidden><button type="button" id="copy-codes" class="button secondary">Copy codes</button><button type="button" id="download-codes" class="button secondary">Download (.txt)</button></div><p id="codes-status" class="hint" role="status"></p>`;
}

export interface MfaCodesView {
  action: string;
  csrf: string;
  clientName: string | undefined;
  /** shown once, right after enrolment; undefined when the page is seen again */
  recoveryCodes?: string[];
}

export function mfaCodesContent(v: MfaCodesView): SafeHtml {
  const body = v.recoveryCodes
    ? html`<p class="lead">Save these recovery codes somewhere safe, such as a password manager. Each one lets you sign in once without your phone.</p>
<section aria-labelledby="codes-title"><h2 id="codes-title">Your recovery codes</h2><ul class="codes" id="recovery-codes">${v.recoveryCodes.map((c) => html`<li><code>${c}</code></li>`)}</ul>${recoveryCodeTools()}</section>
<p class="muted">They are shown only this once. If you lose your phone and these codes, an administrator has to reset your two-step verification.</p>`
    : html`<p class="lead">Your authenticator app is set up.</p><p class="muted">Your recovery codes were shown once, right after the set-up, and are not shown again.</p>`;
  return renderView('mfa-codes', {
    body,
    action: v.action,
    csrf: v.csrf,
    clientSuffix: v.clientName ? ` to ${v.clientName}` : '',
  });
}

export interface ConsentView {
  action: string;
  csrf: string;
  clientName: string;
  accountLabel: string;
  /** the host of the redirect URI: where the application lives */
  redirectHost: string | undefined;
  /** "Not you?": the request again, with prompt=login */
  switchHref: string;
  oidcScopes: string[];
  claims: string[];
  resources: ResourceAccess[];
}

export function consentContent(v: ConsentView): SafeHtml {
  const sections: HtmlValue[] = [];
  const identity = v.oidcScopes.map((s) => html`<li>${OIDC_SCOPE_TEXT[s] ?? s}</li>`);
  const claims = v.claims.map((c) => html`<li>See <code>${c}</code></li>`);
  if (identity.length + claims.length > 0) {
    sections.push(html`<section aria-labelledby="sec-account"><h2 id="sec-account">Your Gatehouse account</h2><ul class="scopes">${identity}${claims}</ul></section>`);
  }
  v.resources.forEach((r, i) => {
    if (r.granted.length === 0) return;
    const id = `sec-api-${i}`;
    const title = r.resource.name ?? r.resource.identifier;
    sections.push(
      html`<section aria-labelledby="${id}"><h2 id="${id}">${title}${r.resource.name ? html`<span class="resource-id">${r.resource.identifier}</span>` : ''}</h2><ul class="scopes">${r.granted.map((s) => html`<li><code>${s}</code></li>`)}</ul></section>`,
    );
  });
  if (sections.length === 0) sections.push(html`<p>It is not asking for anything beyond signing you in.</p>`);
  return renderView('consent', {
    clientName: v.clientName,
    where: v.redirectHost ? html` <span class="muted">(at <strong>${v.redirectHost}</strong>)</span>` : '',
    accountLabel: v.accountLabel,
    switchHref: v.switchHref,
    sections,
    action: v.action,
    csrf: v.csrf,
  });
}

export function messageContent(heading: string, ...paragraphs: HtmlValue[]): SafeHtml {
  return renderView('message', { heading, body: paragraphs.map((p) => html`<p>${p}</p>`) });
}

export function logoutContent(form: SafeHtml, clientName: string | undefined): SafeHtml {
  return renderView('logout', {
    lead: clientName
      ? html`<strong>${clientName}</strong> asked to sign you out. Sign out of Gatehouse on this device, or only of ${clientName}?`
      : 'Sign out of Gatehouse on this device?',
    form,
    stayLabel: clientName ? `Only sign out of ${clientName}` : 'Stay signed in',
  });
}

export function loggedOutContent(clientName: string | undefined): SafeHtml {
  return messageContent(
    'You are signed out',
    clientName ? html`You have signed out of <strong>${clientName}</strong>.` : 'You have signed out of Gatehouse on this device.',
    'You can close this window.',
  );
}

const ERROR_TEXT: Record<string, string> = {
  invalid_request: 'The application sent a request Gatehouse cannot accept.',
  invalid_client: 'The application is not known to Gatehouse or is disabled.',
  invalid_redirect_uri: 'The application asked to return to an address it has not registered.',
  unauthorized_client: 'The application is not allowed to make this request.',
  access_denied: 'Access was denied.',
  invalid_scope: 'The application asked for access it may not have.',
  invalid_target: 'The application asked for an API it may not use.',
  login_required: 'You need to sign in.',
  session_not_found: 'Your sign-in request has expired.',
  server_error: 'Something went wrong on our side.',
};

/** The page for an OAuth error (oidc-provider's renderError): code and description, never internals. */
export function errorContent(out: { error?: unknown; error_description?: unknown }, requestId: string | undefined, accountHref?: string): SafeHtml {
  const code = typeof out.error === 'string' ? out.error : 'server_error';
  const description = typeof out.error_description === 'string' && code !== 'server_error' ? out.error_description : undefined;
  return messageContent(
    'Sign-in could not continue',
    ERROR_TEXT[code] ?? 'The request could not be completed.',
    html`Go back to the application and try again. If this keeps happening, contact its administrator${requestId ? html` and mention request id <code>${requestId}</code>` : ''}.`,
    html`<span class="details">Error: <code>${code}</code>${description ? html` — ${description}` : ''}</span>`,
    accountHref ? wayBack(accountHref) : '',
  );
}

/** The way back from a dead end: the person's account page (which signs them in if needed). */
export function wayBack(accountHref: string): SafeHtml {
  return html`<a href="${accountHref}">Go to your Gatehouse account</a>`;
}
