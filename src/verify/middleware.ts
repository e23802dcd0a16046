// requireScopes (node:http / Express-style) and koaRequireScopes (Koa): read
// the token from the Authorization header, verify it, and either hand the
// claims to the handler or answer 401/403 with an RFC 6750 challenge.
import type { IncomingMessage } from 'node:http';
import { VerifyError, wwwAuthenticate } from './errors.ts';
import type { AccessTokenClaims, Verifier } from './verifier.ts';

/** The request headers the middlewares read (node's `IncomingHttpHeaders` fits). */
export type HeadersLike = Record<string, string | string[] | undefined>;

/** The parts of a node:http `IncomingMessage` (or an Express `Request`) the middleware uses. */
export interface NodeRequestLike {
  headers: HeadersLike;
  method?: string;
  url?: string;
  /** Express: the URL before routers stripped their mount path */
  originalUrl?: string;
  /** the connection: `encrypted` (a TLS socket) means https */
  socket?: object | null;
  /** set to the verified claims before `next()` is called */
  auth?: AccessTokenClaims;
}

/**
 * A request that went through {@link requireScopes}: `req.auth` holds the token's claims.
 * `R` is your framework's request type (node's `IncomingMessage` by default; e.g. Express's `Request`).
 */
export type AuthenticatedRequest<R extends NodeRequestLike = IncomingMessage> = R & { auth: AccessTokenClaims };

/** The parts of a node:http `ServerResponse` (or an Express `Response`) the middleware uses. */
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/** The parts of a Koa context the Koa middleware uses (a real `Koa.Context` fits). */
export interface KoaContextLike {
  req: NodeRequestLike;
  method: string;
  originalUrl: string;
  state: Record<string, unknown>;
  status: number;
  body: unknown;
  set(field: string, value: string): void;
}

/** Options of {@link requireScopes} and {@link koaRequireScopes}. */
export interface MiddlewareOptions {
  /** `realm` of the `WWW-Authenticate` challenge (left out by default). */
  realm?: string;
  /**
   * The public base URL of the service, e.g. `https://api.example.com` (a path
   * prefix is allowed: `https://example.com/orders`). The request path is
   * appended to it to obtain the URL DPoP proofs must name (`htu`). Without
   * it the URL is rebuilt from the request's `Host` header and connection.
   */
  publicUrl?: string;
  /** Trust `X-Forwarded-Proto` / `X-Forwarded-Host` when rebuilding the URL (only behind a proxy you control). Default false. */
  trustProxy?: boolean;
}

/** The credentials a request carries: scheme, token, DPoP proof. */
interface Credentials {
  scheme: 'Bearer' | 'DPoP';
  token: string;
  proof?: string;
}

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

function header(headers: HeadersLike, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function firstValue(value: string | undefined): string | undefined {
  const first = value?.split(',')[0]?.trim();
  return first ? first : undefined;
}

/** Reads `Authorization: Bearer …` or `Authorization: DPoP …` (+ `DPoP` header); throws a VerifyError when absent or malformed. */
export function readCredentials(headers: HeadersLike): Credentials {
  const authorization = header(headers, 'authorization');
  const missing = () => new VerifyError('invalid_request', 'an access token is required', { credentialsMissing: true });
  if (authorization === undefined || authorization.trim() === '') throw missing();
  const match = /^([A-Za-z]+) +(\S*) *$/.exec(authorization);
  const scheme = match?.[1]?.toLowerCase();
  // another scheme (Basic …): as if no token was sent (RFC 6750 §3.1)
  if (scheme !== 'bearer' && scheme !== 'dpop') {
    if (match) throw missing();
    throw new VerifyError('invalid_token', 'the Authorization header is malformed');
  }
  const token = match![2]!;
  if (!TOKEN68.test(token)) throw new VerifyError('invalid_token', 'the Authorization header is malformed');
  const proof = headers.dpop;
  if (Array.isArray(proof) && proof.length > 1) throw new VerifyError('invalid_dpop_proof', 'more than one DPoP header');
  const single = Array.isArray(proof) ? proof[0] : proof;
  return { scheme: scheme === 'dpop' ? 'DPoP' : 'Bearer', token, ...(single !== undefined ? { proof: single } : {}) };
}

/** The URL the client sent the request to (the DPoP `htu`). */
export function requestUrl(req: NodeRequestLike, path: string, opts: MiddlewareOptions): string {
  if (opts.publicUrl !== undefined) return `${opts.publicUrl.replace(/\/+$/, '')}${path.startsWith('/') ? path : `/${path}`}`;
  const forwardedProto = opts.trustProxy ? firstValue(header(req.headers, 'x-forwarded-proto')) : undefined;
  const forwardedHost = opts.trustProxy ? firstValue(header(req.headers, 'x-forwarded-host')) : undefined;
  const tls = typeof req.socket === 'object' && req.socket !== null && (req.socket as { encrypted?: unknown }).encrypted === true;
  const proto = forwardedProto ?? (tls ? 'https' : 'http');
  const host = forwardedHost ?? header(req.headers, 'host') ?? 'localhost';
  return `${proto}://${host}${path}`;
}

/** Verifies the request's credentials; resolves with the claims or rejects with a VerifyError (scheme attached for the challenge). */
async function authenticate(
  verifier: Verifier,
  scopes: readonly string[],
  req: NodeRequestLike,
  method: string,
  path: string,
  opts: MiddlewareOptions,
): Promise<AccessTokenClaims> {
  const creds = readCredentials(req.headers);
  return verifier.verify(creds.token, {
    scopes,
    scheme: creds.scheme,
    ...(creds.proof !== undefined ? { dpop: { proof: creds.proof, method, url: requestUrl(req, path, opts) } } : {}),
  });
}

/** The challenge scheme: the one the client used; DPoP for proof errors. */
function challengeScheme(req: NodeRequestLike, err: VerifyError): 'Bearer' | 'DPoP' {
  if (err.error === 'invalid_dpop_proof') return 'DPoP';
  return /^dpop\s/i.test(header(req.headers, 'authorization') ?? '') ? 'DPoP' : 'Bearer';
}

function refusal(verifier: Verifier, req: NodeRequestLike, err: VerifyError, opts: MiddlewareOptions) {
  const scheme = challengeScheme(req, err);
  return {
    status: err.status,
    challenge: wwwAuthenticate(err, {
      scheme,
      ...(opts.realm !== undefined ? { realm: opts.realm } : {}),
      ...(scheme === 'DPoP' ? { algs: verifier.dpopAlgorithms } : {}),
    }),
    body: { error: err.error, error_description: err.description },
  };
}

/**
 * Middleware for node:http servers and Express-style frameworks: lets the
 * request through only with a valid access token holding all `scopes`.
 *
 * On success it sets `req.auth` to the token's claims and calls `next()`. On
 * failure it answers 401 or 403 with a `WWW-Authenticate` challenge and a JSON
 * body `{ error, error_description }`, and does not call `next`. Any error
 * that is not a refusal goes to `next(err)`.
 *
 * @example
 * http.createServer((req, res) => requireScopes(verifier, ['orders:read'])(req, res, () => {
 *   res.end(`hello ${(req as AuthenticatedRequest).auth.sub}`);
 * }));
 * app.get('/orders', requireScopes(verifier, ['orders:read']), handler); // Express
 */
export function requireScopes(
  verifier: Verifier,
  scopes: readonly string[],
  options: MiddlewareOptions = {},
): (req: NodeRequestLike, res: NodeResponseLike, next: (err?: unknown) => void) => Promise<void> {
  const required = [...scopes];
  return async (req, res, next) => {
    let claims: AccessTokenClaims;
    try {
      const path = req.originalUrl ?? req.url ?? '/';
      claims = await authenticate(verifier, required, req, req.method ?? 'GET', path, options);
    } catch (err) {
      if (!(err instanceof VerifyError)) {
        next(err);
        return;
      }
      const r = refusal(verifier, req, err, options);
      res.statusCode = r.status;
      res.setHeader('WWW-Authenticate', r.challenge);
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.end(JSON.stringify(r.body));
      return;
    }
    req.auth = claims;
    next();
  };
}

/**
 * Koa middleware: lets the request through only with a valid access token
 * holding all `scopes`; `ctx.state.auth` holds the token's claims downstream.
 * On failure it sets 401 or 403, the `WWW-Authenticate` challenge and a JSON
 * body `{ error, error_description }`, and does not call `next`.
 *
 * @example
 * app.use(koaRequireScopes(verifier, ['orders:read']));
 * router.get('/orders', koaRequireScopes(verifier, ['orders:read']), (ctx) => { ctx.body = ctx.state.auth.sub });
 */
export function koaRequireScopes(
  verifier: Verifier,
  scopes: readonly string[],
  options: MiddlewareOptions = {},
): (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void> {
  const required = [...scopes];
  return async (ctx, next) => {
    let claims: AccessTokenClaims;
    try {
      claims = await authenticate(verifier, required, ctx.req, ctx.method, ctx.originalUrl, options);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      const r = refusal(verifier, ctx.req, err, options);
      ctx.status = r.status;
      ctx.set('WWW-Authenticate', r.challenge);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = r.body;
      return;
    }
    ctx.state.auth = claims;
    await next();
  };
}
