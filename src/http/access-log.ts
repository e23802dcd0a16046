// One JSON log line per request, and the request metrics. The query string is
// left out on purpose: it can carry codes, hints and tokens. A refused
// request's line names the OAuth error it was answered with and the client
// that made it (authenticated, or only claimed), never a secret.
import type { Context } from 'koa';
import type { Logger } from '../logging/logger.ts';

export interface RequestObserver {
  (info: { method: string; route: string; status: number; seconds: number }): void;
}

/** The matched route pattern, for logs and metric labels (bounded cardinality). */
export function routeOf(ctx: { state: Record<string, unknown>; _matchedRoute?: unknown }): string {
  const r = ctx.state.route ?? ctx._matchedRoute; // ours, or oidc-provider's / @koa/router's pattern
  return typeof r === 'string' ? r : 'unmatched';
}

/**
 * oidc-provider's `<endpoint>.error` events. Where its answer is an HTML
 * page (a browser at /auth or /session/end) the error code is in no header
 * or JSON body, so the listener below notes it for the log line.
 */
export const OAUTH_ERROR_EVENTS = [
  'authorization.error',
  'grant.error',
  'userinfo.error',
  'introspection.error',
  'revocation.error',
  'pushed_authorization_request.error',
  'end_session.error',
  'end_session_confirm.error',
  'end_session_success.error',
  'jwks.error',
  'discovery.error',
  'server_error',
] as const;

/** Listener for OAUTH_ERROR_EVENTS: the last error raised is the one answered. */
export function noteOAuthError(ctx: { state: Record<string, unknown> }, err: unknown): void {
  const code = (err as { error?: unknown } | undefined)?.error;
  if (typeof code === 'string') ctx.state.oauthError = code;
}

const ERROR_CODE = /^[a-z0-9_.:-]{1,64}$/i;
const CLIENT_ID = /^[\x21-\x7e]{1,128}$/;

const code = (v: unknown) => (typeof v === 'string' && ERROR_CODE.test(v) ? v : undefined);
const clientId = (v: unknown) => (typeof v === 'string' && CLIENT_ID.test(v) ? v : undefined);

/** The OAuth error a request was answered with: the final JSON body, the provider's event, a challenge, a redirect. */
function oauthError(ctx: Context): string | undefined {
  const body = ctx.body as { error?: unknown } | null | undefined;
  const fromBody = body && typeof body === 'object' && !Buffer.isBuffer(body) ? code(body.error) : undefined;
  if (fromBody) return fromBody;
  const noted = code(ctx.state.oauthError);
  if (noted) return noted;
  const challenge = /\berror="([^"]+)"/.exec(ctx.response.get('WWW-Authenticate'));
  if (challenge) return code(challenge[1]);
  const location = ctx.response.get('Location');
  if (location.includes('error=')) {
    const m = /[?#&]error=([^&#]+)/.exec(location);
    if (m) return code(decodeURIComponent(m[1]!.replace(/\+/g, ' ')));
  }
  return undefined;
}

/** The id in an `Authorization: Basic` header (RFC 6749 §2.3.1: form-encoded); the secret is never read. */
function basicUser(header: string): string | undefined {
  if (!/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

interface OidcView {
  client?: { clientId?: unknown };
  params?: { client_id?: unknown };
  entities?: { AccessToken?: { clientId?: unknown } };
}

/**
 * The client behind a request: the one the admin API or oidc-provider
 * authenticated; for a refused request also the one it names (client_id,
 * the Basic user, the access token's client).
 */
function clientOf(ctx: Context, refused: boolean): string | undefined {
  const own = clientId(ctx.state.clientId);
  if (own) return own;
  // ctx.oidc exists only on the provider's routes (a lazy getter it defines)
  const oidc = 'oidc' in ctx ? (ctx as unknown as { oidc?: OidcView }).oidc : undefined;
  const authenticated = clientId(oidc?.client?.clientId);
  if (authenticated || !refused) return authenticated;
  const form = (ctx.request as { body?: { client_id?: unknown } }).body; // when a body parser ran
  return (
    clientId(oidc?.params?.client_id) ??
    clientId(oidc?.entities?.AccessToken?.clientId) ??
    clientId(basicUser(ctx.get('authorization'))) ??
    clientId(form && typeof form === 'object' ? form.client_id : undefined) ??
    clientId(ctx.query.client_id)
  );
}

/**
 * Returns `record(ctx, start)`, called once a request is answered (`start`:
 * process.hrtime.bigint() when it arrived): it logs the line and tells the
 * observer when the response is sent.
 */
export function requestRecorder(logger: Logger, observe?: RequestObserver): (ctx: Context, start: bigint) => void {
  return (ctx, start) => {
    const done = () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const status = ctx.status;
      const route = routeOf(ctx);
      observe?.({ method: ctx.method, route, status, seconds });
      // below LOG_LEVEL=info the line is dropped anyway: skip building it (hot path)
      if (!logger.isLevelEnabled('info')) return;
      // a success answers no error (cheap test first: the token endpoint is hot)
      const error = status >= 300 ? oauthError(ctx) : undefined;
      logger.info(
        {
          reqId: ctx.state.requestId,
          method: ctx.method,
          // a page whose path carries a secret (a single-use link) names its pattern instead
          path: typeof ctx.state.loggedPath === 'string' ? ctx.state.loggedPath : ctx.path,
          route,
          status,
          ms: Math.round(seconds * 1e4) / 10,
          ip: ctx.ip,
          client: clientOf(ctx, error !== undefined || status >= 400),
          error,
        },
        'request',
      );
    };
    // oidc-provider may answer through ctx.res directly; log when it is sent.
    if (ctx.respond === false && !ctx.res.writableEnded) ctx.res.once('finish', done);
    else done();
  };
}
