// The account page, /account: where people manage their own access.
//
// Signing in: the page is a relying party of Gatehouse itself — the built-in
// public client `gatehouse-account` (src/clients/builtin.ts), code flow with
// PKCE (S256) and state, through the same sign-in pages as every application
// (password, second factor, passkeys, step-up). The callback takes the
// authorization code from oidc-provider's store in-process (it is the
// issuer: no HTTP round trip to its own token endpoint), checks client,
// redirect URI, expiry and the PKCE verifier, and consumes it (single use,
// src/oidc/single-use.ts). No tokens are minted. The request asks for
// max_age=1800: the sign-in behind the page is at most 30 minutes old.
//
// The page's own session is a signed cookie (cookie.ts) naming the account
// and the oidc-provider session it came from. Every request checks that this
// session still lives, so signing out of Gatehouse anywhere (or an
// administrator ending the sessions) ends the account page too. It lasts
// until 30 minutes after that sign-in.
//
//   GET  /account              the page (or the sign-in, when there is no session)
//   GET  /account/callback     the end of the sign-in
//   POST /account/password     current + new password
//   POST /account/email        a new email address (+ current password): src/lifecycle mails a link
//   POST /account/totp-setup   set up an authenticator app: the QR code and setup key
//   POST /account/totp-confirm a current code from it turns it on; the recovery codes, shown once
//   POST /account/totp-remove  remove the authenticator app (only while a passkey remains)
//   POST /account/recovery-codes  new recovery codes, shown once
//   POST /account/passkey-add | passkey-rename | passkey-remove
//   POST /account/session-end  sign out of one session (back-channel logout)
//   POST /account/sessions-end sign out everywhere
//   POST /account/grant-revoke revoke an application's access (its tokens end)
//   POST /account/signout      sign out of Gatehouse on this device
//
// Every form carries a CSRF token bound to the account page's session
// (csrf.ts, "account:<session uid>"); without it: 403, nothing done.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type Provider from 'oidc-provider';
import { confirmTotpEnrolment, mfaEnrolmentOpen, newTotpSecret, openString, sealString, totpUri, unusedRecoveryCodes } from '../accounts/mfa.ts';
import { recordAudit } from '../audit/audit.ts';
import { ACR_MFA, groupSecret, qrDataUri } from '../interactions/mfa.ts';
import { listPasskeys, registrationOptions, relyingPartyOf, validatePasskeyName, verifyRegistration } from '../accounts/passkeys.ts';
import { authenticate } from '../accounts/store.ts';
import {
  addPasskeyAs,
  regenerateRecoveryCodesAs,
  removePasskeyAs,
  removeTotpAs,
  renamePasskeyAs,
  setPasswordAs,
} from '../accounts/writes.ts';
import { ACCOUNT_CLIENT_ID, accountCallbackUrl } from '../clients/builtin.ts';
import type { ClientRegistry } from '../clients/registry.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/client.ts';
import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from '../http/errors.ts';
import type { RouteGroup } from '../http/routes.ts';
import { basePath, scriptUrl, stylesheetUrl, type ScriptPath } from '../interactions/assets.ts';
import { csrfToken, verifyCsrfToken } from '../interactions/csrf.ts';
import { FormError, formOf, formParser, type Form } from '../interactions/form.ts';
import { html, type HtmlValue } from '../interactions/html.ts';
import { messageContent, sendPage } from '../interactions/pages.ts';
import type { Actor } from '../kernel/actor.ts';
import { GatehouseError } from '../kernel/errors.ts';
import type { Logger } from '../logging/logger.ts';
import { listSessions } from '../oidc/session-activity.ts';
import { endSessionAs, listGrants, revokeGrantAs, revokeSessionsAs, type BackchannelSender } from '../oidc/sessions.ts';
import { requestEmailChange } from '../lifecycle/writes.ts';
import type { Mailer } from '../mail/mailer.ts';
import { clearCookie, LOGIN_COOKIE, readCookie, seal, SESSION_COOKIE, setCookie, unseal } from './cookie.ts';
import { accountContent, type AccountView } from './pages.ts';

export interface AccountPageDeps {
  config: Config;
  db: Db;
  logger: Logger;
  clients: ClientRegistry;
  provider: () => Provider;
  backchannel: BackchannelSender;
  /** outgoing mail (src/mail): with it, the page's "Email" section changes the address (src/lifecycle) */
  mailer?: Mailer;
}

/** How old the sign-in behind the account page may be (max_age), and how long its cookie lasts. */
export const ACCOUNT_SESSION_SECONDS = 1800;
const LOGIN_SECONDS = 600;
/** How long a QR code / setup key shown on the page can be confirmed. */
const TOTP_SETUP_SECONDS = 600;

const STATUS: Record<string, string> = {
  password: 'Your password is changed.',
  'passkey-add': 'Your passkey is added.',
  'passkey-rename': 'Your passkey is renamed.',
  'passkey-remove': 'The passkey is removed.',
  'totp-remove': 'The authenticator app is removed.',
  'totp-setup': 'The authenticator app is set up: your next sign-in that needs a second factor asks for its code.',
  'session-end': 'That session is signed out.',
  'grant-revoke': "The application's access is revoked.",
  email: 'We sent a confirmation link to the new address. Your email changes when you open it; your current address was told.',
};

interface PageSession {
  accountId: string;
  sessionUid: string;
}

interface Who extends PageSession {
  email: string;
  name: string | null;
  emailVerified: boolean;
  totp: boolean;
  hasPassword: boolean;
  /** the sign-in behind the page used a second factor (acr urn:gatehouse:acr:mfa) */
  mfa: boolean;
}

const epochNow = () => Math.floor(Date.now() / 1000);
const b64sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function accountRoutes(deps: AccountPageDeps): RouteGroup {
  const { config, db } = deps;
  const base = basePath(config.issuer);
  const keys = config.cookieSecrets;
  const cookieOpts = { path: `${base}/account`, secure: config.issuer.startsWith('https://') };
  const css = stylesheetUrl(config.issuer);
  const rp = relyingPartyOf(config.issuer);
  const callbackUrl = accountCallbackUrl(config.issuer);
  const accountUrl = `${base}/account`;

  const page = (ctx: Context, status: number, title: string, content: ReturnType<typeof messageContent>, scripts: ScriptPath[] = []) =>
    sendPage(ctx, status, title, content, css, scripts.map((p) => scriptUrl(config.issuer, p)));
  const message = (ctx: Context, status: number, heading: string, ...paragraphs: HtmlValue[]) =>
    page(ctx, status, heading, messageContent(heading, ...paragraphs, html`<a href="${accountUrl}">Go to your account</a>`));

  const redirect = (ctx: Context, to: string) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(to);
  };

  // ---------------------------------------------------------- sign-in

  function startSignIn(ctx: Context, mfa = false): void {
    const state = randomBytes(24).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    setCookie(ctx, LOGIN_COOKIE, seal(keys, LOGIN_COOKIE, { st: state, v: verifier, e: epochNow() + LOGIN_SECONDS }), LOGIN_SECONDS, cookieOpts);
    const q = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: callbackUrl,
      state,
      code_challenge: b64sha256(verifier),
      code_challenge_method: 'S256',
      max_age: String(ACCOUNT_SESSION_SECONDS),
      ...(mfa ? { acr_values: ACR_MFA } : {}),
    });
    redirect(ctx, `${base}/auth?${q.toString()}`);
  }

  async function callback(ctx: Context): Promise<void> {
    ctx.state.route = '/account/callback';
    const login = unseal(keys, LOGIN_COOKIE, readCookie(ctx, LOGIN_COOKIE)) as { st?: unknown; v?: unknown; e?: unknown } | undefined;
    clearCookie(ctx, LOGIN_COOKIE, cookieOpts);
    const q = ctx.query;
    const state = typeof q.state === 'string' ? q.state : '';
    if (!login || typeof login.st !== 'string' || typeof login.v !== 'string' || typeof login.e !== 'number' || login.e < epochNow() || !sameString(login.st, state)) {
      return message(ctx, 400, 'Sign-in expired', 'This sign-in did not start here, or it took too long.');
    }
    if (typeof q.error === 'string') return message(ctx, 400, 'Not signed in', 'The sign-in was cancelled or refused.');
    const value = typeof q.code === 'string' && q.code.length <= 256 ? q.code : '';
    const provider = deps.provider();
    const code = value ? await provider.AuthorizationCode.find(value).catch(() => undefined) : undefined;
    const ok =
      code &&
      !(code as { consumed?: unknown }).consumed &&
      code.clientId === ACCOUNT_CLIENT_ID &&
      code.redirectUri === callbackUrl &&
      code.codeChallengeMethod === 'S256' &&
      typeof code.codeChallenge === 'string' &&
      sameString(code.codeChallenge, b64sha256(login.v)) &&
      typeof code.accountId === 'string' &&
      typeof code.sessionUid === 'string';
    if (!ok) return message(ctx, 400, 'Sign-in expired', 'This sign-in link was used already or is not valid.');
    try {
      await code.consume();
    } catch {
      return message(ctx, 400, 'Sign-in expired', 'This sign-in link was used already or is not valid.');
    }
    const authTime = typeof code.authTime === 'number' ? code.authTime : epochNow();
    const expires = Math.min(authTime + ACCOUNT_SESSION_SECONDS, epochNow() + ACCOUNT_SESSION_SECONDS);
    const mfa = code.acr === ACR_MFA;
    setCookie(ctx, SESSION_COOKIE, seal(keys, SESSION_COOKIE, { a: code.accountId, s: code.sessionUid, e: expires, m: mfa }), Math.max(1, expires - epochNow()), cookieOpts);
    redirect(ctx, accountUrl);
  }

  /** The account page's session, if its cookie is good and the Gatehouse session it came from still lives. */
  async function current(ctx: Context): Promise<Who | undefined> {
    const v = unseal(keys, SESSION_COOKIE, readCookie(ctx, SESSION_COOKIE)) as { a?: unknown; s?: unknown; e?: unknown; m?: unknown } | undefined;
    if (!v || typeof v.a !== 'string' || typeof v.s !== 'string' || typeof v.e !== 'number' || v.e < epochNow()) return undefined;
    const [row] = await db.$queryRaw<{ email: string; name: string | null; email_verified: boolean; totp: boolean; has_password: boolean }[]>`
      SELECT a.email, a.name, a.email_verified, a.totp_enabled_at IS NOT NULL AS totp, a.password_hash IS NOT NULL AS has_password
      FROM accounts a
      WHERE a.id = ${v.a}::uuid AND NOT a.disabled AND EXISTS (
        SELECT 1 FROM oidc_payloads p WHERE p.model = 'Session' AND p.uid = ${v.s} AND p.payload->>'accountId' = ${v.a}
          AND (p.expires_at IS NULL OR p.expires_at > now()))`.catch((err: unknown) => {
      if (isDatabaseUnavailable(err)) throw err;
      return [];
    });
    if (!row) return undefined;
    return { accountId: v.a, sessionUid: v.s, email: row.email, name: row.name, emailVerified: row.email_verified, totp: row.totp, hasPassword: row.has_password, mfa: v.m === true };
  }

  const binding = (who: PageSession) => `account:${who.sessionUid}`;

  /**
   * May this page session add a second factor? After a sign-in with a second
   * factor, yes. Otherwise (a password only) only a person without any
   * factor, inside their enrolment window: whoever knows just the password
   * must not add their own factor (the rule of the sign-in enrolment,
   * src/accounts/mfa.ts). A person with a factor signs in with it first.
   */
  async function mayAddFactor(who: Who, passkeys: number): Promise<'yes' | 'sign-in-with-factor' | 'no-window'> {
    if (who.mfa) return 'yes';
    if (who.totp || passkeys > 0) return 'sign-in-with-factor';
    return (await mfaEnrolmentOpen(db, who.accountId)) ? 'yes' : 'no-window';
  }
  /** Changing second factors (remove, new recovery codes) needs a sign-in that used one, when the person has any. */
  async function factorChangeRefused(ctx: Context, who: Who): Promise<boolean> {
    if (who.mfa || (!who.totp && (await listPasskeys(db, who.accountId)).length === 0)) return false;
    await show(ctx, who, 403, { error: 'To change your second factors, sign in again with your second factor.' });
    return true;
  }
  const NO_WINDOW = 'Your account has no second factor yet, and the window to set up the first one with only your password is closed. Ask your administrator.';
  const ADD_REFUSED = {
    'sign-in-with-factor': 'To add a passkey, sign in again with your second factor.',
    'no-window': NO_WINDOW,
  } as const;
  const TOTP_REFUSED = {
    'sign-in-with-factor': 'To set up an authenticator app, sign in again with your second factor.',
    'no-window': NO_WINDOW,
  } as const;

  // The secret being set up travels in the confirm form, sealed (AES-256-GCM
  // under KEY_ENCRYPTION_KEY) with an expiry, and bound to this account page
  // session and account by the additional data: it does not open in another
  // session, for another account, or once altered. It is used once: the
  // enrolment's conditional UPDATE (… WHERE totp_enabled_at IS NULL) lets one
  // confirmation through; a replayed form finds the app on already.
  const setupAad = (who: PageSession) => `gatehouse/account-totp-setup/v1:${who.sessionUid}:${who.accountId}`;
  const sealSetup = (who: PageSession, secret: string) =>
    sealString(JSON.stringify({ s: secret, e: epochNow() + TOTP_SETUP_SECONDS }), config.keyEncryptionKey, setupAad(who));
  function openSetup(who: PageSession, sealed: string | undefined): string | undefined {
    if (!sealed || sealed.length > 1024) return undefined;
    const json = openString(sealed, config.keyEncryptionKey, setupAad(who));
    if (!json) return undefined;
    try {
      const v = JSON.parse(json) as { s?: unknown; e?: unknown };
      return typeof v.s === 'string' && typeof v.e === 'number' && v.e >= epochNow() ? v.s : undefined;
    } catch {
      return undefined;
    }
  }
  async function totpSetupView(who: Who, secret: string, sealed: string) {
    return { qr: await qrDataUri(totpUri(secret, who.email)), secret: groupSecret(secret), sealed };
  }
  const actorOf = (ctx: Context, who: PageSession): Actor => ({
    type: 'user',
    id: who.accountId,
    scopes: new Set(),
    ip: ctx.ip,
    requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : null,
    clientId: ACCOUNT_CLIENT_ID,
  });

  // ------------------------------------------------------------- page

  async function show(
    ctx: Context,
    who: Who,
    status: number,
    extra: { error?: string; status?: string; newRecoveryCodes?: string[]; totpSetup?: AccountView['totpSetup'] } = {},
  ): Promise<void> {
    const [passkeys, sessions, grants, unused] = await Promise.all([
      listPasskeys(db, who.accountId),
      listSessions(db, who.accountId),
      listGrants(db, who.accountId),
      unusedRecoveryCodes(db, who.accountId),
    ]);
    const may = await mayAddFactor(who, passkeys.length);
    const options = may === 'yes' ? await registrationOptions(db, rp, binding(who), { id: who.accountId, email: who.email, name: who.name }).catch(() => undefined) : undefined;
    const clientNames: Record<string, string> = {};
    const hosts: Record<string, string | null> = {};
    for (const id of new Set([...sessions.flatMap((s) => s.clients), ...grants.map((g) => g.clientId)])) {
      const rec = await deps.clients.get(id);
      clientNames[id] = rec?.name ?? id;
      const first = rec?.redirectUris[0];
      hosts[id] = first && URL.canParse(first) ? new URL(first).host : null;
    }
    const view: AccountView = {
      email: who.email,
      name: who.name,
      emailVerified: who.emailVerified,
      csrf: csrfToken(keys, binding(who)),
      action: (name) => `${accountUrl}/${name}`,
      totp: who.totp,
      unusedRecoveryCodes: unused,
      passkeys,
      registrationOptions: options ? JSON.stringify(options) : '',
      sessions,
      currentSession: who.sessionUid,
      grants: grants
        .filter((g) => g.clientId !== ACCOUNT_CLIENT_ID)
        .map((g) => ({ ...g, clientName: clientNames[g.clientId] ?? g.clientId, redirectHost: hosts[g.clientId] ?? null })),
      clientNames,
      emailChange: deps.mailer?.enabled === true,
      ...(may === 'yes' ? {} : { addRefused: ADD_REFUSED[may], totpRefused: TOTP_REFUSED[may], stepUpHref: `${accountUrl}?mfa=1` }),
      ...extra,
    };
    page(ctx, status, 'Your account', accountContent(view), ['/static/webauthn.js', '/static/passkey.js', '/static/codes.js']);
  }

  async function showPage(ctx: Context): Promise<void> {
    ctx.state.route = '/account';
    const who = await current(ctx);
    if (!who || (ctx.query.mfa === '1' && !who.mfa)) return startSignIn(ctx, ctx.query.mfa === '1');
    const done = typeof ctx.query.done === 'string' ? STATUS[ctx.query.done] : undefined;
    return show(ctx, who, 200, done ? { status: done } : {});
  }

  // ------------------------------------------------------------ forms

  type Handler = (ctx: Context, who: Who, form: Form) => Promise<void>;
  const done = (ctx: Context, key: string) => redirect(ctx, `${accountUrl}?done=${key}`);

  const forms: Record<string, Handler> = {
    async password(ctx, who, form) {
      const currentPw = form.get('current') ?? '';
      const next = form.get('password') ?? '';
      if (!currentPw || !next) return show(ctx, who, 400, { error: 'Enter your current password and a new one.' });
      if (next !== (form.get('confirm') ?? '')) return show(ctx, who, 400, { error: 'The two new passwords are not the same.' });
      const check = await authenticate(db, who.email, currentPw, { ip: ctx.ip, policy: config.login, secondFactor: () => true });
      if (!check.ok || check.account.id !== who.accountId) return show(ctx, who, 400, { error: 'Your current password is not right.' });
      await setPasswordAs(db, actorOf(ctx, who), who.accountId, next);
      return done(ctx, 'password');
    },
    /** the email change (src/lifecycle): a link to the new address, a notice to the old one; the current password first */
    async email(ctx, who, form) {
      if (!deps.mailer?.enabled) return show(ctx, who, 409, { error: 'Changing the email address is not available here (mail is not set up).' });
      const next = (form.get('email') ?? '').trim();
      if (!next) return show(ctx, who, 400, { error: 'Enter the new email address.' });
      if (who.hasPassword) {
        const check = await authenticate(db, who.email, form.get('current') ?? '', { ip: ctx.ip, policy: config.login, secondFactor: () => true });
        if (!check.ok || check.account.id !== who.accountId) return show(ctx, who, 400, { error: 'Your current password is not right.' });
      }
      await requestEmailChange({ db, mailer: deps.mailer, issuer: config.issuer }, actorOf(ctx, who), who.accountId, next);
      return done(ctx, 'email');
    },
    /** a new secret: the QR code and setup key, and the confirm form carrying the secret sealed */
    async 'totp-setup'(ctx, who) {
      if (who.totp) return show(ctx, who, 409, { error: 'The authenticator app is on already. Remove it first to set up another one.' });
      const may = await mayAddFactor(who, (await listPasskeys(db, who.accountId)).length);
      if (may !== 'yes') return show(ctx, who, 403, { error: TOTP_REFUSED[may] });
      const secret = newTotpSecret();
      return show(ctx, who, 200, { totpSetup: await totpSetupView(who, secret, sealSetup(who, secret)) });
    },
    /** a current code of the app being set up turns it on (audited as the sign-in enrolment is); the recovery codes, once */
    async 'totp-confirm'(ctx, who, form) {
      if (who.totp) return show(ctx, who, 409, { error: 'The authenticator app is on already.' });
      const may = await mayAddFactor(who, (await listPasskeys(db, who.accountId)).length);
      if (may !== 'yes') return show(ctx, who, 403, { error: TOTP_REFUSED[may] });
      const sealed = form.get('setup');
      const secret = openSetup(who, sealed);
      if (!secret || !sealed) return show(ctx, who, 400, { error: 'This set-up has expired or is not valid. Start again with "Set up an authenticator app".' });
      const actor = actorOf(ctx, who);
      const r = await confirmTotpEnrolment(
        db,
        { accountId: who.accountId, secret, code: (form.get('code') ?? '').trim() },
        {
          ip: ctx.ip,
          kek: config.keyEncryptionKey,
          // a sign-in with the second factor the person has is enough (mayAddFactor); without it, only inside the window
          requireWindow: !who.mfa,
          inTransaction: (tx) =>
            recordAudit(tx, {
              action: 'mfa.enrol',
              actor: { type: 'user', id: who.accountId },
              target: { type: 'user', id: who.accountId },
              details: { method: 'totp', client: ACCOUNT_CLIENT_ID },
              ip: actor.ip ?? null,
              requestId: actor.requestId ?? null,
            }),
        },
      );
      if (r.ok) return show(ctx, { ...who, totp: true }, 200, { status: STATUS['totp-setup'], newRecoveryCodes: r.recoveryCodes });
      if (r.reason === 'invalid') {
        return show(ctx, who, 400, {
          error: 'That code is not right. Enter the 6-digit code your authenticator app shows now.',
          totpSetup: await totpSetupView(who, secret, sealed),
        });
      }
      if (r.reason === 'enrolled') return show(ctx, { ...who, totp: true }, 409, { error: 'The authenticator app is on already.' });
      if (r.reason === 'no-window') return show(ctx, who, 403, { error: NO_WINDOW });
      return show(ctx, who, 400, { error: 'The authenticator app could not be set up. Try again.' });
    },
    async 'totp-remove'(ctx, who) {
      if (await factorChangeRefused(ctx, who)) return;
      await removeTotpAs(db, actorOf(ctx, who), who.accountId);
      return done(ctx, 'totp-remove');
    },
    async 'recovery-codes'(ctx, who) {
      if (await factorChangeRefused(ctx, who)) return;
      const codes = await regenerateRecoveryCodesAs(db, actorOf(ctx, who), who.accountId);
      return show(ctx, who, 200, { newRecoveryCodes: codes });
    },
    async 'passkey-add'(ctx, who, form) {
      const may = await mayAddFactor(who, (await listPasskeys(db, who.accountId)).length);
      if (may !== 'yes') return show(ctx, who, 403, { error: ADD_REFUSED[may] });
      const name = validatePasskeyName(form.get('name'));
      const r = await verifyRegistration(db, rp, { binding: binding(who), accountId: who.accountId, response: form.get('response'), name });
      if (!r.ok) {
        const why = r.reason === 'duplicate' ? 'That passkey is registered already.' : 'The passkey could not be added. Try again.';
        return show(ctx, who, 400, { error: why });
      }
      await addPasskeyAs(db, actorOf(ctx, who), r.passkey);
      return done(ctx, 'passkey-add');
    },
    async 'passkey-rename'(ctx, who, form) {
      await renamePasskeyAs(db, actorOf(ctx, who), who.accountId, form.get('id') ?? '', form.get('name') ?? '');
      return done(ctx, 'passkey-rename');
    },
    async 'passkey-remove'(ctx, who, form) {
      if (await factorChangeRefused(ctx, who)) return;
      await removePasskeyAs(db, actorOf(ctx, who), who.accountId, form.get('id') ?? '');
      return done(ctx, 'passkey-remove');
    },
    async 'session-end'(ctx, who, form) {
      const uid = form.get('session') ?? '';
      await endSessionAs(db, actorOf(ctx, who), who.accountId, uid, deps.backchannel);
      if (uid === who.sessionUid) {
        clearCookie(ctx, SESSION_COOKIE, cookieOpts);
        return message(ctx, 200, 'You are signed out', 'You have signed out of Gatehouse on this device.');
      }
      return done(ctx, 'session-end');
    },
    async 'sessions-end'(ctx, who) {
      await revokeSessionsAs(db, actorOf(ctx, who), who.accountId, deps.backchannel);
      clearCookie(ctx, SESSION_COOKIE, cookieOpts);
      return message(ctx, 200, 'You are signed out everywhere', 'Every session of your account has ended, on every device.');
    },
    async 'grant-revoke'(ctx, who, form) {
      await revokeGrantAs(db, actorOf(ctx, who), who.accountId, form.get('grant') ?? '');
      return done(ctx, 'grant-revoke');
    },
    async signout(ctx, who) {
      await endSessionAs(db, actorOf(ctx, who), who.accountId, who.sessionUid, deps.backchannel).catch(() => undefined);
      clearCookie(ctx, SESSION_COOKIE, cookieOpts);
      return message(ctx, 200, 'You are signed out', 'You have signed out of Gatehouse on this device.');
    },
  };

  const submit =
    (name: string, handler: Handler) =>
    async (ctx: Context): Promise<void> => {
      ctx.state.route = `/account/${name}`;
      let form: Form;
      try {
        form = formOf(ctx);
      } catch (err) {
        if (err instanceof FormError) return message(ctx, err.status, 'This form was not accepted', err.message);
        throw err;
      }
      const who = await current(ctx);
      if (!who) return message(ctx, 401, 'Signed out', 'Your account page session has ended. Sign in again.');
      if (!verifyCsrfToken(keys, binding(who), form.get('csrf'))) {
        return message(ctx, 403, 'This form was not accepted', 'It did not come from your account page, or the page is out of date. Reload it and try again.');
      }
      try {
        return await handler(ctx, who, form);
      } catch (err) {
        if (err instanceof GatehouseError) return show(ctx, who, err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 400, { error: err.message });
        throw err;
      }
    };

  const router = new Router({ ...(base ? { prefix: base } : {}), strict: true });
  router.get('/account', showPage);
  router.get('/account/callback', callback);
  const parse = formParser();
  for (const [name, handler] of Object.entries(forms)) router.post(`/account/${name}`, parse, submit(name, handler));
  const dispatch = router.routes() as Middleware;

  const notFound = (ctx: Context) => async () => {
    ctx.state.route = '/account/*';
    message(ctx, 404, 'Page not found', 'There is no such page.');
  };

  const owns = (path: string): boolean => {
    if (base && path !== base && !path.startsWith(`${base}/`)) return false;
    const rel = path.slice(base.length);
    return rel === '/account' || rel.startsWith('/account/');
  };

  const middleware: Middleware = async (ctx: Context, _next: Next) => {
    try {
      await dispatch(ctx, notFound(ctx));
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        return message(ctx, 503, 'Temporarily unavailable', 'Please try again in a moment.');
      }
      deps.logger.error({ reqId: ctx.state.requestId, err: { name: (err as Error).name, message: (err as Error).message } }, 'account page failed');
      message(ctx, 500, 'Something went wrong', `Request id: ${String(ctx.state.requestId ?? '')}`);
    }
  };
  return { owns, middleware };
}
