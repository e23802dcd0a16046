// The device flow's pages (RFC 8628, oidc-provider's features.deviceFlow
// sources) and the guard in front of its code entry.
//
//   GET  /device               "Connect a device": enter the code (case and dashes do not matter)
//   POST /device               the code: wrong / expired / used → the same page with a message;
//                              right → "Connect <client>?" naming the device's client and the code;
//                              Continue → sign-in (login, MFA, consent pages) → "<client> is connected"
//   GET  /device?user_code=…   verification_uri_complete: the code is posted for the person
//
// oidc-provider renders these pages through the sources below and checks its
// own xsrf token (bound to the browser's session) on every POST.
//
// Guessing: a user code has 20^8 ≈ 2^34.6 values (provider.ts), and every
// POST /device counts against the client address (IPv6: its /64) in the
// login throttle (src/accounts/throttle.ts, key device-code:ip:…): counted
// before the code is looked up, given back when the code is found, so an
// address locks after DEVICE_CODE_MAX_FAILURES codes that match no live
// device (lockSeconds doubling up to maxLockSeconds, as for logins). A locked
// address gets a 429 page with Retry-After and its code is not looked up.
import type { Context, Middleware, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { checkAndReserve, ipThrottleKey, recordFailure, recordSuccess, releaseReservation, type ThrottleKey } from '../accounts/throttle.ts';
import type { RouteGroup } from '../http/routes.ts';
import type { ProviderDeps } from '../oidc/provider.ts';
import { basePath, stylesheetUrl } from './assets.ts';
import { html, renderView, type SafeHtml } from './html.ts';
import type { InteractionDeps } from './index.ts';
import { layout, messageContent } from './pages.ts';

/** Codes matching no live device that lock an address. */
export const DEVICE_CODE_MAX_FAILURES = 10;

export const DEVICE_ROUTE = '/device';

export function deviceThrottleKey(ip: string): string {
  return `device-code:${ipThrottleKey(ip)}`;
}

export const DEVICE_MESSAGES = {
  wrong: 'That code is not valid. Check the code on your device and try again.',
  expired: 'That code has expired. Start again on your device to get a new code.',
  used: 'That code has been used already. Start again on your device to get a new code.',
  cancelled: 'You cancelled. Your device was told that sign-in was refused.',
  stale: 'This page was out of date. Enter the code again.',
  failed: 'Something went wrong with that code. Start again on your device.',
} as const;

function send(ctx: KoaContextWithOIDC | Context, title: string, content: SafeHtml, css: string): void {
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = layout(title, content, css);
}

/** oidc-provider's form markup carries its xsrf token; the pages render their own form around it. */
function xsrfOf(form: string): string {
  return /name="xsrf" value="([^"]*)"/.exec(form)?.[1] ?? '';
}

function clientLabel(client: { clientName?: unknown; clientId: string } | undefined): string {
  if (!client) return 'the device';
  return typeof client.clientName === 'string' && client.clientName ? client.clientName : client.clientId;
}

type DeviceFlow = NonNullable<NonNullable<NonNullable<import('oidc-provider').Configuration['features']>['deviceFlow']>>;

/** The three pages oidc-provider renders for the device flow (provider.ts devicePages). */
export function devicePages(deps: InteractionDeps): NonNullable<ProviderDeps['devicePages']> {
  const css = stylesheetUrl(deps.config.issuer);
  const action = `${basePath(deps.config.issuer)}${DEVICE_ROUTE}`;

  const userCodeInputSource: DeviceFlow['userCodeInputSource'] = (ctx, form, _out, err) => {
    const name = (err as { name?: string } | undefined)?.name;
    if (name === 'AbortedError') {
      send(ctx, 'Sign-in cancelled', messageContent('Sign-in cancelled', DEVICE_MESSAGES.cancelled, 'You can close this window.'), css);
      return;
    }
    const message =
      name === undefined
        ? undefined
        : name === 'NotFoundError' || name === 'NoCodeError'
          ? DEVICE_MESSAGES.wrong
          : name === 'ExpiredError'
            ? DEVICE_MESSAGES.expired
            : name === 'AlreadyUsedError'
              ? DEVICE_MESSAGES.used
              : name === 'InvalidRequest'
                ? DEVICE_MESSAGES.stale
                : DEVICE_MESSAGES.failed;
    if (message) ctx.status = 400;
    const code = (err as { userCode?: unknown } | undefined)?.userCode;
    const content = renderView('device-code', {
      action,
      xsrf: xsrfOf(form),
      alert: message ? html`<div class="alert" role="alert" id="form-error">${message}</div>` : '',
      code: typeof code === 'string' ? code.slice(0, 64) : '',
      errorRef: message ? ' form-error' : '',
      codeAttrs: message ? html` aria-invalid="true"` : '',
    });
    send(ctx, 'Connect a device', content, css);
  };

  const userCodeConfirmSource: DeviceFlow['userCodeConfirmSource'] = (ctx, form, client, _deviceInfo, userCode) => {
    const clientName = clientLabel(client);
    send(ctx, `Connect ${clientName}`, renderView('device-confirm', { action, xsrf: xsrfOf(form), clientName, userCode }), css);
  };

  const successSource: DeviceFlow['successSource'] = (ctx) => {
    const clientName = clientLabel(ctx.oidc.client);
    send(
      ctx,
      'Device connected',
      messageContent(`${clientName} is connected`, html`You are signed in on <strong>${clientName}</strong>.`, 'Go back to your device: it continues on its own. You can close this window.'),
      css,
    );
  };

  return { userCodeInputSource, userCodeConfirmSource, successSource };
}

/**
 * POST /device: every code entered counts against the address (see above);
 * the provider then answers. GET passes straight through.
 */
export function deviceCodeGuard(deps: InteractionDeps): RouteGroup {
  const base = basePath(deps.config.issuer);
  const css = stylesheetUrl(deps.config.issuer);
  const path = `${base}${DEVICE_ROUTE}`;
  const policy = deps.config.login;
  const middleware: Middleware = async (ctx: Context, next: Next) => {
    ctx.state.route = DEVICE_ROUTE;
    if (ctx.method !== 'POST') return next();
    const key: ThrottleKey = { key: deviceThrottleKey(ctx.ip), kind: 'ip', max: DEVICE_CODE_MAX_FAILURES };
    const reserved = await checkAndReserve(deps.db, [key], policy);
    if (!reserved.ok) {
      ctx.status = 429;
      ctx.set('Retry-After', String(reserved.retryAfterSeconds));
      const minutes = Math.max(1, Math.ceil(reserved.retryAfterSeconds / 60));
      send(
        ctx,
        'Too many attempts',
        messageContent('Too many codes tried', `Codes were entered too often from your network. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`),
        css,
      );
      return;
    }
    const { reservation } = reserved;
    let outcome: 'found' | 'wrong' | 'none' = 'none';
    try {
      try {
        await next();
      } catch (err) {
        // A POST without the session /device started (no cookie, or an
        // unknown one): oidc-provider re-renders the form and then fails to
        // save the session it made up on the way. The person gets the form
        // again, on a fresh page.
        if (!(err instanceof TypeError) || !/previously persisted Sessions/.test(err.message)) throw err;
        ctx.status = 400;
        send(ctx, 'Connect a device', messageContent('This page was out of date', html`<a href="${path}">Enter the code again</a>.`), css);
        return;
      }
      const oidc = (ctx as Partial<KoaContextWithOIDC>).oidc;
      const entered = oidc?.params?.user_code;
      if (oidc?.entities && 'DeviceCode' in oidc.entities) outcome = 'found';
      else if (typeof entered === 'string' && entered !== '') outcome = 'wrong';
    } finally {
      if (outcome === 'found') await recordSuccess(deps.db, reservation);
      else if (outcome === 'wrong') await recordFailure(deps.db, reservation, policy);
      else await releaseReservation(deps.db, reservation);
    }
  };
  return { owns: (p) => p === path, middleware };
}
