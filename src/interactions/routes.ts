// HTTP routes of the sign-in pages, mounted in front of oidc-provider:
//
//   GET  /interaction/:uid           the current step: login form, second factor
//                                    (verify or enrol), or consent
//   POST /interaction/:uid/login     email + password
//   POST /interaction/:uid/mfa       code: a TOTP code or a recovery code
//   POST /interaction/:uid/enrol     code: confirms the authenticator being set up
//   POST /interaction/:uid/continue  after enrolment (recovery codes shown): signs in
//   POST /interaction/:uid/consent   decision=approve|deny
//   POST /interaction/:uid/abort    "cancel": back to the application with access_denied
//   GET  /static/gatehouse.css      the only stylesheet (the CSP allows no inline style)
//
// Every POST needs the interaction's CSRF token (csrf.ts); without it the
// answer is a 403 page and nothing happens. A stale or foreign interaction
// gets an HTML page that says so, never a stack trace.
//
// Two-step verification (mfa.ts here, src/accounts/mfa.ts): after a right
// password, a person with MFA enters a code; a person without MFA, when the
// client or the request requires it, sets up an authenticator on the spot
// (QR code + setup key, a current code confirms it, then 10 recovery codes
// shown once). Between the steps the interaction holds a pending login,
// never a login: oidc-provider only learns who signed in, with acr and amr,
// when the last step finishes the interaction.
import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from '../http/errors.ts';
import type { RouteGroup } from '../http/routes.ts';
import type { Context, Middleware } from 'koa';
import { errors, type Interaction } from 'oidc-provider';
import { authenticate, getAccount, type LoginEvent } from '../accounts/store.ts';
import { loadAccountForOidc } from '../accounts/claims.ts';
import { confirmTotpEnrolment, newTotpSecret, totpUri, verifySecondFactor } from '../accounts/mfa.ts';
import { NotFoundError } from '../kernel/errors.ts';
import { FormError, readForm } from './body.ts';
import { csrfToken, verifyCsrfToken } from './csrf.ts';
import { applyAccess, resolveRequestedAccess } from './grants.ts';
import { STYLESHEET_PATH, basePath, stylesheet as loadStylesheet, stylesheetUrl } from './assets.ts';
import type { SafeHtml } from './html.ts';
import type { ConsentEvent, InteractionDeps } from './index.ts';
import { epochNow, grantNeedsExtension, grantTtl, refreshPolicyFor } from './lifetimes.ts';
import {
  ACR_MFA,
  ACR_PWD,
  AMR_PASSWORD,
  AMR_RECOVERY,
  AMR_TOTP,
  groupSecret,
  mfaRequested,
  openEnrolmentSecret,
  pendingLogin,
  qrDataUri,
  savePendingLogin,
  sealEnrolmentSecret,
  type PendingLogin,
} from './mfa.ts';
import {
  ENROL_FAILED,
  LOGIN_FAILED,
  LOGIN_MISSING,
  MFA_FAILED,
  MFA_MISSING,
  SIGN_IN_AGAIN,
  consentContent,
  loginContent,
  messageContent,
  mfaCodesContent,
  mfaEnrolContent,
  mfaVerifyContent,
  sendPage,
} from './pages.ts';

const UID = /^[A-Za-z0-9_-]{1,64}$/;

/** Logs login outcomes (no passwords, no emails: a mistyped password often lands in the email field). */
function loginEventSink(deps: InteractionDeps): (e: LoginEvent) => void {
  return (e) => {
    const entry = {
      event: e.type,
      ...(e.accountId ? { accountId: e.accountId } : {}),
      ...(e.reason ? { reason: e.reason } : {}),
      ...(e.factor ? { factor: e.factor } : {}),
      ...(e.ip ? { ip: e.ip } : {}),
      ...(e.lockouts?.length ? { lockouts: e.lockouts.map((l) => ({ kind: l.kind, lockCount: l.lockCount, retryAfterSeconds: l.retryAfterSeconds })) } : {}),
      ...(e.retryAfterSeconds ? { retryAfterSeconds: e.retryAfterSeconds } : {}),
    };
    if (e.type === 'login.success') deps.logger.info(entry, 'login succeeded');
    else deps.logger.warn(entry, e.type === 'login.locked' ? 'login refused: locked' : 'login failed');
    // the audit trail (app.ts wires onLoginEvent to auditLoginEvent)
    if (deps.onLoginEvent) {
      try {
        void Promise.resolve(deps.onLoginEvent(e)).catch(() => {});
      } catch {
        // a failing sink must not break logins
      }
    }
  };
}

export function createInteractionRoutes(deps: InteractionDeps): RouteGroup {
  const base = basePath(deps.config.issuer);
  const css = loadStylesheet();
  const stylesheet = stylesheetUrl(deps.config.issuer);
  const onEvent = loginEventSink(deps);
  const keys = deps.config.cookieSecrets;
  const kek = deps.config.keyEncryptionKey;

  const page = (ctx: Context, status: number, title: string, content: SafeHtml) => sendPage(ctx, status, title, content, stylesheet);

  const expired = (ctx: Context) =>
    page(
      ctx,
      400,
      'Sign-in expired',
      messageContent(
        'This sign-in request has expired',
        'It was completed already, it timed out, or it was started in another browser.',
        'Go back to the application and sign in again.',
      ),
    );

  const forbidden = (ctx: Context) =>
    page(
      ctx,
      403,
      'Form not accepted',
      messageContent('This form was not accepted', 'It did not come from this sign-in page, or the page is out of date.', 'Go back, reload the page and try again.'),
    );

  const redirect = (ctx: Context, to: string) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(to);
  };

  /** The interaction behind the request's cookie, if it is the one in the URL. */
  async function load(ctx: Context, uid: string): Promise<Interaction | undefined> {
    try {
      const interaction = await deps.provider().interactionDetails(ctx.req, ctx.res);
      return interaction.uid === uid ? interaction : undefined;
    } catch (err) {
      if (err instanceof errors.SessionNotFound) return undefined;
      throw err;
    }
  }

  const clientIdOf = (i: Interaction) => (typeof i.params.client_id === 'string' ? i.params.client_id : '');

  async function clientName(i: Interaction): Promise<string | undefined> {
    const rec = await deps.clients.get(clientIdOf(i));
    return rec?.name;
  }

  async function showLogin(ctx: Context, i: Interaction, status: number, email: string, error?: string): Promise<void> {
    page(
      ctx,
      status,
      'Sign in',
      loginContent({
        action: `${base}/interaction/${i.uid}/login`,
        abortAction: `${base}/interaction/${i.uid}/abort`,
        csrf: csrfToken(keys, i.uid),
        email,
        clientName: await clientName(i),
        ...(error ? { error } : {}),
      }),
    );
  }

  const uidPath = (i: Interaction, action?: string) => `${base}/interaction/${i.uid}${action ? `/${action}` : ''}`;

  /** Is a second factor required for this request, whoever signs in? (by the client, or by the request's acr) */
  async function mfaRequirement(i: Interaction): Promise<{ required: boolean; byClient: boolean }> {
    const rec = await deps.clients.get(clientIdOf(i));
    const byClient = rec?.requireMfa === true;
    return { required: byClient || mfaRequested(i.params), byClient };
  }

  async function showVerify(ctx: Context, i: Interaction, status: number, error?: string): Promise<void> {
    page(
      ctx,
      status,
      'Two-step verification',
      mfaVerifyContent({
        action: uidPath(i, 'mfa'),
        abortAction: uidPath(i, 'abort'),
        csrf: csrfToken(keys, i.uid),
        clientName: await clientName(i),
        ...(error ? { error } : {}),
      }),
    );
  }

  /** The pending login is gone (expired, or its account): back to the login form. */
  async function restart(ctx: Context, i: Interaction, status = 200, error?: string): Promise<void> {
    await savePendingLogin(i, undefined);
    return showLogin(ctx, i, status, '', error);
  }

  async function showEnrol(ctx: Context, i: Interaction, pending: PendingLogin, status: number, error?: string): Promise<void> {
    const secret = openEnrolmentSecret(kek, i.uid, pending);
    const account = await getAccount(deps.db, pending.accountId).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (!secret || !account || account.disabled) return restart(ctx, i, 400, LOGIN_FAILED);
    const { byClient } = await mfaRequirement(i);
    page(
      ctx,
      status,
      'Set up two-step verification',
      mfaEnrolContent({
        action: uidPath(i, 'enrol'),
        abortAction: uidPath(i, 'abort'),
        csrf: csrfToken(keys, i.uid),
        clientName: await clientName(i),
        qr: await qrDataUri(totpUri(secret, account.email)),
        secret: groupSecret(secret),
        required: byClient,
        ...(error ? { error } : {}),
      }),
    );
  }

  async function showEnrolled(ctx: Context, i: Interaction, recoveryCodes?: string[]): Promise<void> {
    page(
      ctx,
      200,
      'Two-step verification is on',
      mfaCodesContent({
        action: uidPath(i, 'continue'),
        csrf: csrfToken(keys, i.uid),
        clientName: await clientName(i),
        ...(recoveryCodes ? { recoveryCodes } : {}),
      }),
    );
  }

  /** Signs the person in: the interaction's login result, with how they proved who they are. */
  function login(ctx: Context, accountId: string, remember: boolean, how: 'pwd' | 'otp' | 'recovery'): Promise<void> {
    const amr = how === 'otp' ? AMR_TOTP : how === 'recovery' ? AMR_RECOVERY : AMR_PASSWORD;
    return finish(ctx, { login: { accountId, amr: [...amr], acr: how === 'pwd' ? ACR_PWD : ACR_MFA, remember } }, false);
  }

  /** Records consent in a Grant and returns its id. */
  async function saveConsent(i: Interaction): Promise<string | undefined> {
    const accountId = i.session?.accountId;
    const clientId = clientIdOf(i);
    const client = await deps.clients.get(clientId);
    if (!accountId || !client || client.disabled) return undefined;
    const { Grant } = deps.provider();
    let grant = i.grantId ? await Grant.find(i.grantId) : undefined;
    if (grant && (grant.accountId !== accountId || grant.clientId !== clientId)) grant = undefined;
    grant ??= new Grant({ accountId, clientId });
    const details = i.prompt.details as { missingOIDCClaims?: unknown };
    const claims = Array.isArray(details.missingOIDCClaims) ? details.missingOIDCClaims.filter((c): c is string => typeof c === 'string') : [];
    const access = await resolveRequestedAccess(deps, { params: i.params, client, accountId, claims });
    applyAccess(grant, access);
    const ttl = grantTtl(refreshPolicyFor(deps.config.refreshToken, client.refreshTokenTtl), client.grants.includes('refresh_token'));
    if (grantNeedsExtension(grant.exp, ttl, epochNow())) grant.exp = undefined; // saved with a fresh lifetime
    return grant.save();
  }

  async function finish(ctx: Context, result: Parameters<ReturnType<InteractionDeps['provider']>['interactionResult']>[2], merge: boolean): Promise<void> {
    const to = await deps.provider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    redirect(ctx, to);
  }

  /** Tells the audit sink about a consent decision; a failing sink never breaks the flow. */
  function consentEvent(ctx: Context, i: Interaction, type: ConsentEvent['type'], automatic: boolean): void {
    if (!deps.onConsentEvent) return;
    const e: ConsentEvent = {
      type,
      accountId: i.session?.accountId,
      clientId: clientIdOf(i),
      scope: typeof i.params.scope === 'string' ? i.params.scope : undefined,
      automatic,
      ip: ctx.ip,
      requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined,
    };
    try {
      void Promise.resolve(deps.onConsentEvent(e)).catch(() => {});
    } catch {
      // ignored
    }
  }

  async function approve(ctx: Context, i: Interaction, automatic = false): Promise<void> {
    const grantId = await saveConsent(i);
    if (!grantId) return expired(ctx);
    consentEvent(ctx, i, 'consent.grant', automatic);
    await finish(ctx, { consent: { grantId } }, true);
  }

  async function showStep(ctx: Context, i: Interaction): Promise<void> {
    if (i.prompt.name === 'login') {
      const pending = pendingLogin(i);
      if (pending?.stage === 'verify') return showVerify(ctx, i, 200);
      if (pending?.stage === 'enrol') return showEnrol(ctx, i, pending, 200);
      if (pending?.stage === 'enrolled') return showEnrolled(ctx, i);
      const hint = typeof i.params.login_hint === 'string' ? i.params.login_hint.slice(0, 320) : '';
      return showLogin(ctx, i, 200, hint);
    }
    if (i.prompt.name === 'consent') {
      const client = await deps.clients.get(clientIdOf(i));
      const accountId = i.session?.accountId;
      if (!client || client.disabled || !accountId) return expired(ctx);
      // First-party clients never show a consent screen.
      if (client.firstParty) return approve(ctx, i, true);
      const details = i.prompt.details as { missingOIDCClaims?: unknown };
      const claims = Array.isArray(details.missingOIDCClaims) ? details.missingOIDCClaims.filter((c): c is string => typeof c === 'string') : [];
      const [access, account] = await Promise.all([
        resolveRequestedAccess(deps, { params: i.params, client, accountId, claims }),
        loadAccountForOidc(deps.accounts, accountId),
      ]);
      if (!account) return expired(ctx);
      return page(
        ctx,
        200,
        `Allow ${client.name}?`,
        consentContent({
          action: `${base}/interaction/${i.uid}/consent`,
          csrf: csrfToken(keys, i.uid),
          clientName: client.name,
          accountLabel: account.account.email,
          oidcScopes: access.oidcScopes,
          claims: access.claims,
          resources: access.resources,
        }),
      );
    }
    deps.logger.error({ prompt: i.prompt.name }, 'interaction prompt not supported');
    return page(ctx, 500, 'Not available', messageContent('This sign-in step is not available', 'Go back to the application and try again.'));
  }

  async function handle(ctx: Context, uid: string, action: string | undefined): Promise<void> {
    if (!action) {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        ctx.set('Allow', 'GET, HEAD');
        return page(ctx, 405, 'Not allowed', messageContent('Not allowed', 'This page can only be viewed.'));
      }
      const i = await load(ctx, uid);
      if (!i) return expired(ctx);
      return showStep(ctx, i);
    }

    if (ctx.method !== 'POST') {
      ctx.set('Allow', 'POST');
      return page(ctx, 405, 'Not allowed', messageContent('Not allowed', 'This address only accepts form submissions.'));
    }
    let form: Map<string, string>;
    try {
      form = await readForm(ctx);
    } catch (err) {
      if (err instanceof FormError) return page(ctx, err.status, 'Not accepted', messageContent('This form was not accepted', err.message));
      throw err;
    }
    // The token is checked before anything else is looked at or changed.
    if (!verifyCsrfToken(keys, uid, form.get('csrf'))) return forbidden(ctx);
    const i = await load(ctx, uid);
    if (!i) return expired(ctx);

    if (action === 'abort') {
      return finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
    }

    if (action === 'login') {
      if (i.prompt.name !== 'login') return redirect(ctx, `${base}/interaction/${i.uid}`);
      const email = form.get('login') ?? '';
      const password = form.get('password') ?? '';
      const shownEmail = email.trim().slice(0, 320);
      if (!email.trim() || !password) return showLogin(ctx, i, 400, shownEmail, LOGIN_MISSING);
      const { required } = await mfaRequirement(i);
      const result = await authenticate(deps.db, email, password, {
        ip: ctx.ip,
        policy: deps.config.login,
        onEvent,
        secondFactor: (a) => a.mfaEnabled || required,
      });
      if (!result.ok) return showLogin(ctx, i, 400, shownEmail, LOGIN_FAILED);
      const remember = form.get('remember') === 'yes';
      const accountId = result.account.id;
      if (!result.secondFactor) return login(ctx, accountId, remember, 'pwd');
      const at = epochNow();
      await savePendingLogin(
        i,
        result.account.mfaEnabled
          ? { accountId, remember, at, stage: 'verify' }
          : { accountId, remember, at, stage: 'enrol', secret: sealEnrolmentSecret(kek, i.uid, accountId, newTotpSecret()) },
      );
      return redirect(ctx, uidPath(i));
    }

    if (action === 'mfa' || action === 'enrol' || action === 'continue') {
      if (i.prompt.name !== 'login') return redirect(ctx, uidPath(i));
      const pending = pendingLogin(i);
      if (!pending) return restart(ctx, i, 400, SIGN_IN_AGAIN);
      const code = (form.get('code') ?? '').trim();

      if (action === 'mfa') {
        if (pending.stage !== 'verify') return redirect(ctx, uidPath(i));
        if (!code) return showVerify(ctx, i, 400, MFA_MISSING);
        const r = await verifySecondFactor(deps.db, pending.accountId, code, { ip: ctx.ip, policy: deps.config.login, kek, onEvent });
        if (!r.ok) return showVerify(ctx, i, 400, MFA_FAILED);
        return login(ctx, pending.accountId, pending.remember, r.method);
      }

      if (action === 'enrol') {
        if (pending.stage !== 'enrol') return redirect(ctx, uidPath(i));
        const secret = openEnrolmentSecret(kek, i.uid, pending);
        if (!secret) return restart(ctx, i, 400, LOGIN_FAILED);
        const r = await confirmTotpEnrolment(deps.db, { accountId: pending.accountId, secret, code }, { ip: ctx.ip, kek, onEvent });
        if (!r.ok && r.reason === 'invalid') return showEnrol(ctx, i, pending, 400, ENROL_FAILED);
        if (!r.ok && r.reason === 'enrolled') {
          // Set up meanwhile (another browser): verify with that authenticator instead.
          await savePendingLogin(i, { accountId: pending.accountId, remember: pending.remember, at: pending.at, stage: 'verify' });
          return redirect(ctx, uidPath(i));
        }
        if (!r.ok) return restart(ctx, i, 400, LOGIN_FAILED);
        // The codes are in this response only; seen again, the page says they were shown once.
        await savePendingLogin(i, { accountId: pending.accountId, remember: pending.remember, at: epochNow(), stage: 'enrolled', method: 'otp' });
        return showEnrolled(ctx, i, r.recoveryCodes);
      }

      // continue
      if (pending.stage !== 'enrolled') return redirect(ctx, uidPath(i));
      return login(ctx, pending.accountId, pending.remember, 'otp');
    }

    // consent
    if (i.prompt.name !== 'consent') return redirect(ctx, `${base}/interaction/${i.uid}`);
    const decision = form.get('decision');
    if (decision === 'deny') {
      consentEvent(ctx, i, 'consent.deny', false);
      return finish(ctx, { error: 'access_denied', error_description: 'End-User denied the consent' }, false);
    }
    if (decision !== 'approve') {
      return page(ctx, 400, 'Not accepted', messageContent('This form was not accepted', 'Choose Allow or Deny.'));
    }
    return approve(ctx, i);
  }

  function serveStylesheet(ctx: Context): void {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      ctx.status = 405;
      return;
    }
    ctx.set('ETag', css.etag);
    // The pages link a versioned URL: it never changes, so it may be cached for good.
    ctx.set('Cache-Control', ctx.query.v === css.version ? 'public, max-age=31536000, immutable' : 'public, max-age=300');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.type = 'text/css; charset=utf-8';
    if (ctx.get('If-None-Match') === css.etag) {
      ctx.status = 304;
      return;
    }
    ctx.status = 200;
    ctx.body = css.body;
  }

  /** the paths below the issuer's that these routes answer */
  const relative = (path: string): string | undefined => {
    if (base && path !== base && !path.startsWith(`${base}/`)) return undefined;
    const rel = path.slice(base.length);
    return rel === STYLESHEET_PATH || rel === '/interaction' || rel.startsWith('/interaction/') ? rel : undefined;
  };

  const middleware: Middleware = async (ctx, next) => {
    const rel = relative(ctx.path);
    if (rel === undefined) return next();
    if (rel === STYLESHEET_PATH) return serveStylesheet(ctx);
    const m = /^\/interaction\/([^/]+)(?:\/(login|mfa|enrol|continue|consent|abort))?$/.exec(rel);
    if (!m || !UID.test(m[1]!)) return page(ctx, 404, 'Not found', messageContent('Page not found', 'Go back to the application and sign in again.'));
    try {
      await handle(ctx, m[1]!, m[2]);
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        return page(ctx, 503, 'Temporarily unavailable', messageContent('Sign-in is temporarily unavailable', 'Please try again in a moment.'));
      }
      deps.logger.error({ reqId: ctx.state.requestId, err: { name: (err as Error).name, message: (err as Error).message } }, 'interaction failed');
      page(ctx, 500, 'Something went wrong', messageContent('Something went wrong', 'Go back to the application and try again.', `Request id: ${String(ctx.state.requestId ?? '')}`));
    }
  };
  return { owns: (path) => relative(path) !== undefined, middleware };
}
