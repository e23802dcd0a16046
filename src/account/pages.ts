// The account page's markup (server-rendered, escaped by html.ts like the
// sign-in pages; no inline script or style).
import type { PasskeyView } from '../accounts/passkeys.ts';
import { html, renderView, type HtmlValue, type SafeHtml } from '../interactions/html.ts';
import { recoveryCodeTools } from '../interactions/pages.ts';
import type { GrantInfo } from '../oidc/sessions.ts';
import type { SessionInfo } from '../oidc/session-activity.ts';

export interface AccountView {
  email: string;
  name: string | null;
  emailVerified: boolean;
  csrf: string;
  /** form action of `name`: <base>/account/<name> */
  action: (name: string) => string;
  status?: string;
  error?: string;
  totp: boolean;
  unusedRecoveryCodes: number;
  /** shown once, right after they were made */
  newRecoveryCodes?: string[];
  passkeys: PasskeyView[];
  /** WebAuthn creation options (JSON) for "Add a passkey" */
  registrationOptions: string;
  sessions: SessionInfo[];
  currentSession: string;
  grants: (GrantInfo & { clientName: string; redirectHost: string | null })[];
  clientNames: Record<string, string>;
  /** mail is set up: the "Email" section (change of address) is shown */
  emailChange: boolean;
  /** why a passkey cannot be added from this page session (and where to sign in with a second factor) */
  addRefused?: string;
  /** why an authenticator app cannot be set up from this page session */
  totpRefused?: string;
  stepUpHref?: string;
  /** an authenticator app being set up: its QR code (data: URI), setup key (grouped) and the sealed secret for the confirm form */
  totpSetup?: { qr: string; secret: string; sealed: string };
}

function emailSection(v: AccountView): SafeHtml {
  return html`<section aria-labelledby="email-title" class="section">
<h2 id="email-title">Email</h2>
<p>Your address is <strong>${v.email}</strong> (${v.emailVerified ? 'verified' : 'not verified'}). A new one is confirmed by a link we mail to it.</p>
<form method="post" action="${v.action('email')}" class="stack">
  ${hidden(v.csrf)}
  <div class="field"><label for="new-email">New email address</label><input id="new-email" name="email" type="email" autocomplete="email" maxlength="254" required></div>
  <div class="field"><label for="email-password">Current password</label><input id="email-password" name="current" type="password" autocomplete="current-password" maxlength="1024"></div>
  <button type="submit" class="button secondary">Change email</button>
</form>
</section>`;
}

const DATE = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
const when = (d: Date | null | undefined): string => (d ? `${DATE.format(d)} UTC` : 'never');

/** "Chrome on Linux" from a user agent (a rough reading: enough to tell devices apart). */
export function deviceOf(ua: string | null): string {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : /curl|node|python|Go-http/i.test(ua)
            ? 'Program'
            : 'Browser';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X|Macintosh/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : undefined;
  return os ? `${browser} on ${os}` : browser;
}

function hidden(csrf: string): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

function passkeysSection(v: AccountView): SafeHtml {
  const items = v.passkeys.map(
    (p, i) => html`<li class="item" id="passkey-${p.id}">
  <p class="item-title"><strong>${p.name}</strong></p>
  <p class="muted">Added ${when(p.createdAt)} · last used ${when(p.lastUsedAt)} · ${p.backedUp ? 'synced across your devices' : 'on this device only'}</p>
  <form method="post" action="${v.action('passkey-rename')}" class="inline-form">
    ${hidden(v.csrf)}<input type="hidden" name="id" value="${p.id}">
    <label for="rename-${i}">New name for ${p.name}</label>
    <input id="rename-${i}" name="name" type="text" maxlength="60" required value="${p.name}">
    <button type="submit" class="button secondary">Rename</button>
  </form>
  <form method="post" action="${v.action('passkey-remove')}" class="inline-form">
    ${hidden(v.csrf)}<input type="hidden" name="id" value="${p.id}">
    <button type="submit" class="button danger">Remove ${p.name}</button>
  </form>
</li>`,
  );
  return html`<section aria-labelledby="passkeys-title" class="section">
<h2 id="passkeys-title">Passkeys</h2>
<p class="muted">A passkey signs you in with your device's screen lock or security key, without a password.</p>
${v.passkeys.length ? html`<ul class="items" id="passkey-list">${items}</ul>` : html`<p>You have no passkeys yet.</p>`}
${v.addRefused
  ? html`<p class="muted" id="passkey-add-refused">${v.addRefused}${v.stepUpHref && v.passkeys.length + (v.totp ? 1 : 0) > 0 ? html` <a href="${v.stepUpHref}">Sign in with your second factor</a>` : ''}</p>`
  : html`<form method="post" action="${v.action('passkey-add')}" class="stack" id="passkey-add" data-passkey-register data-options="${v.registrationOptions}" data-status="passkey-add-status" data-unsupported="passkey-unsupported">
  ${hidden(v.csrf)}<input type="hidden" name="response" value="">
  <div class="field">
    <label for="passkey-name">Name of the new passkey</label>
    <input id="passkey-name" name="name" type="text" maxlength="60" required placeholder="e.g. Work laptop">
  </div>
  <button type="submit" class="button primary">Add a passkey</button>
  <p id="passkey-add-status" class="hint" role="status"></p>
</form>
<p id="passkey-unsupported" class="muted" hidden>This browser cannot create passkeys.</p>`}
</section>`;
}

/** No app yet: the set-up button, the QR code and setup key with the confirm form, or why not from this session. */
function totpSetupPart(v: AccountView): SafeHtml {
  const s = v.totpSetup;
  if (s) {
    return html`<ol class="steps" id="totp-setup">
  <li><p>Scan this QR code with an authenticator app (for example Google Authenticator, Microsoft Authenticator, 1Password or FreeOTP).</p>
    <img class="qr" src="${s.qr}" width="200" height="200" alt="QR code for your authenticator app. If you cannot scan it, enter the setup key shown below."></li>
  <li><p>Cannot scan it? Add an account in the app by hand with this setup key (time-based, 6 digits):</p>
    <p><code class="secret" id="totp-secret">${s.secret}</code></p></li>
  <li><p>Enter the 6-digit code the app now shows, to confirm.</p></li>
</ol>
<form method="post" action="${v.action('totp-confirm')}" class="stack" id="totp-confirm">
  ${hidden(v.csrf)}<input type="hidden" name="setup" value="${s.sealed}">
  <div class="field">
    <label for="totp-code">Code from the app</label>
    <input id="totp-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="16" required${v.error ? html` aria-describedby="form-error" aria-invalid="true"` : ''}>
  </div>
  <button type="submit" class="button primary">Turn on the authenticator app</button>
</form>`;
  }
  if (v.totpRefused) {
    return html`<p class="muted" id="totp-setup-refused">${v.totpRefused}${v.stepUpHref && v.passkeys.length > 0 ? html` <a href="${v.stepUpHref}">Sign in with your second factor</a>` : ''}</p>`;
  }
  return html`<form method="post" action="${v.action('totp-setup')}" class="inline-form">${hidden(v.csrf)}<button type="submit" class="button secondary">Set up an authenticator app</button></form>`;
}

function mfaSection(v: AccountView): SafeHtml {
  const codes = v.newRecoveryCodes
    ? html`<div class="alert success" role="status"><p>Your new recovery codes. Save them now: they are shown only this once, and your old codes no longer work.</p>
<ul class="codes" id="recovery-codes">${v.newRecoveryCodes.map((c) => html`<li><code>${c}</code></li>`)}</ul>${recoveryCodeTools()}</div>`
    : '';
  return html`<section aria-labelledby="mfa-title" class="section">
<h2 id="mfa-title">Two-step verification</h2>
<p>Authenticator app: <strong>${v.totp ? 'on' : 'not set up'}</strong></p>
${v.totp
  ? html`<form method="post" action="${v.action('totp-remove')}" class="inline-form">${hidden(v.csrf)}<button type="submit" class="button danger">Remove the authenticator app</button></form>`
  : totpSetupPart(v)}
<p>Recovery codes left: <strong id="recovery-count">${v.unusedRecoveryCodes}</strong></p>
${codes}
<form method="post" action="${v.action('recovery-codes')}" class="inline-form">${hidden(v.csrf)}<button type="submit" class="button secondary">Make new recovery codes</button></form>
</section>`;
}

function sessionsSection(v: AccountView): SafeHtml {
  const items = v.sessions.map((s) => {
    const apps = s.clients.map((c) => v.clientNames[c] ?? c).filter((n) => n);
    const here = s.uid === v.currentSession;
    return html`<li class="item">
  <p class="item-title"><strong>${deviceOf(s.userAgent)}</strong>${here ? html` <span class="badge">this device</span>` : ''}</p>
  <p class="muted">Address ${s.ip ?? 'unknown'} · last used ${when(s.lastUsedAt ?? s.loginAt)} · signed in ${when(s.loginAt)}${apps.length ? html` · ${apps.join(', ')}` : ''}</p>
  <form method="post" action="${v.action('session-end')}" class="inline-form">${hidden(v.csrf)}<input type="hidden" name="session" value="${s.uid}"><button type="submit" class="button secondary">Sign out${here ? ' here' : ''} (${deviceOf(s.userAgent)}, ${when(s.lastUsedAt ?? s.loginAt)})</button></form>
</li>`;
  });
  return html`<section aria-labelledby="sessions-title" class="section">
<h2 id="sessions-title">Where you are signed in</h2>
<ul class="items" id="session-list">${items}</ul>
<form method="post" action="${v.action('sessions-end')}" class="inline-form">${hidden(v.csrf)}<button type="submit" class="button danger">Sign out everywhere</button></form>
</section>`;
}

function grantsSection(v: AccountView): SafeHtml {
  const items = v.grants.map((g) => {
    const apis = Object.entries(g.resources).filter(([, s]) => s.length > 0);
    return html`<li class="item">
  <p class="item-title"><strong>${g.clientName}</strong>${g.redirectHost ? html` <span class="muted">(${g.redirectHost})</span>` : ''}</p>
  <p class="muted">Since ${when(g.createdAt)}</p>
  <ul class="scopes">${g.scopes.map((s) => html`<li><code>${s}</code></li>`)}${apis.map(([r, s]) => html`<li>${r}: ${s.map((x) => html`<code>${x}</code> `)}</li>`)}</ul>
  <form method="post" action="${v.action('grant-revoke')}" class="inline-form">${hidden(v.csrf)}<input type="hidden" name="grant" value="${g.id}"><button type="submit" class="button danger">Revoke access of ${g.clientName}</button></form>
</li>`;
  });
  return html`<section aria-labelledby="apps-title" class="section">
<h2 id="apps-title">Applications with access</h2>
${v.grants.length ? html`<ul class="items" id="grant-list">${items}</ul>` : html`<p>No application has access to your account.</p>`}
</section>`;
}

export function accountContent(v: AccountView): SafeHtml {
  const sections: HtmlValue[] = [
    v.emailChange ? emailSection(v) : '',
    html`<section aria-labelledby="password-title" class="section">
<h2 id="password-title">Password</h2>
<form method="post" action="${v.action('password')}" class="stack">
  ${hidden(v.csrf)}
  <input type="text" name="username" autocomplete="username" value="${v.email}" hidden>
  <div class="field"><label for="current-password">Current password</label><input id="current-password" name="current" type="password" autocomplete="current-password" maxlength="1024" required></div>
  <div class="field"><label for="new-password">New password</label><input id="new-password" name="password" type="password" autocomplete="new-password" minlength="8" maxlength="1024" required aria-describedby="new-password-hint"><p id="new-password-hint" class="hint">At least 8 characters.</p></div>
  <div class="field"><label for="confirm-password">New password again</label><input id="confirm-password" name="confirm" type="password" autocomplete="new-password" maxlength="1024" required></div>
  <button type="submit" class="button primary">Change password</button>
</form>
</section>`,
    mfaSection(v),
    passkeysSection(v),
    sessionsSection(v),
    grantsSection(v),
  ];
  return renderView('account', {
    email: v.email,
    name: v.name ?? '',
    verified: v.emailVerified ? 'verified' : 'not verified',
    alert: v.error ? html`<div class="alert" role="alert" id="form-error">${v.error}</div>` : v.status ? html`<div class="alert success" role="status">${v.status}</div>` : '',
    sections,
    signOutAction: v.action('signout'),
    csrf: v.csrf,
  });
}
