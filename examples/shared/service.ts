// A tiny Koa service factory for the example systems. Every example service
// (orders, payments, history …) is built with it, so each one guards its own
// door the same way:
//
//   - every protected route verifies the caller's access token locally with
//     `gatehouse/verify` (signature, issuer, audience = this API, expiry,
//     typ, scopes) and answers 401/403 with an RFC 6750 WWW-Authenticate
//     challenge when it is not acceptable;
//   - routes (or whole services) that must notice a revocation at once also
//     introspect the token at Gatehouse with the service's own client
//     credentials (fail closed: no answer from Gatehouse → 503);
//   - errors are JSON `{error, error_description}`, never a stack trace;
//   - one audit line per request names who called: `sub`, `client_id`, and the
//     `act` chain of a token obtained by token exchange.
//
// It uses nothing of Gatehouse but the verifier library. In this repository
// the library is imported by relative path; a service of your own imports the
// same names from 'gatehouse/verify'.
import { existsSync, realpathSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import {
  TokenRequestError,
  VerifyError,
  createTokenClient,
  createVerifier,
  koaRequireScopes,
  readCredentials,
  wwwAuthenticate,
  type AccessTokenClaims,
  type ActorClaim,
  type TokenClient,
  type Verifier,
} from '../../src/verify/index.ts';

/** What a service is configured with (environment variables in a real deployment). */
export type Env = Record<string, string | undefined>;

/** One audit/log line. */
export interface LogEntry {
  time: string;
  service: string;
  event: string;
  [field: string]: unknown;
}
export type LogSink = (entry: LogEntry) => void;

/** The default sink: one JSON line on stdout. */
export const stdoutLog: LogSink = (entry) => {
  process.stdout.write(`${JSON.stringify(entry)}\n`);
};

/** A refusal or failure the handler wants the caller to see: JSON `{error, error_description}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

/** `orders-service` or, for nested exchanges, `payments-service <- orders-service` (most recent actor first). */
export function actorChain(act: ActorClaim | undefined): string | undefined {
  const chain: string[] = [];
  for (let a: ActorClaim | undefined = act; a && chain.length < 10; a = a.act) chain.push(String(a.sub));
  return chain.length > 0 ? chain.join(' <- ') : undefined;
}

/** A running service, as handlers and the example runner see it. */
export interface ServiceHandle {
  name: string;
  /** http://127.0.0.1:PORT */
  url: string;
  issuer: string;
  /** the service's own Gatehouse client (client_credentials, token exchange), when it has credentials */
  tokens?: TokenClient;
  /** writes one audit line */
  audit(event: string, fields?: Record<string, unknown>): void;
  close(): Promise<void>;
}

interface CallBase {
  ctx: Koa.Context;
  /** path parameters (`/orders/:id` → `params.id`) */
  params: Record<string, string>;
  /** the parsed JSON or form body (`{}` when none) */
  body: Record<string, unknown>;
  service: ServiceHandle;
}

/** A request that passed the route's checks. */
export interface AuthenticatedCall extends CallBase {
  /** the verified access token's claims */
  auth: AccessTokenClaims;
  /** the access token itself (to exchange it for a downstream token) */
  token: string;
}

export type PublicCall = CallBase;

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** A route that needs an access token for this API with every one of `scopes`. */
export interface ProtectedRoute {
  method: Method;
  path: string;
  public?: false;
  scopes: string[];
  /** also introspect the token at Gatehouse (default: the service's `introspect`) */
  introspect?: boolean;
  handler(call: AuthenticatedCall): unknown;
}

/** A route anyone may call (web pages, health). */
export interface PublicRoute {
  method: Method;
  path: string;
  public: true;
  handler(call: PublicCall): unknown;
}

export type Route = ProtectedRoute | PublicRoute;

export interface ServiceOptions {
  name: string;
  issuer: string;
  /** this API's resource identifier (the `aud` of its tokens); required when a route is protected */
  audience?: string;
  /** default 0: any free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** the service's own Gatehouse credentials: for its token client and for introspection */
  client?: { id: string; secret: string };
  /** introspect every protected request (default false: local verification only) */
  introspect?: boolean;
  routes: Route[];
  log?: LogSink;
}

const isProtected = (r: Route): r is ProtectedRoute => r.public !== true;

/** `/orders/:id` → a matcher returning the params, or undefined. */
function compilePath(path: string): (p: string) => Record<string, string> | undefined {
  const names: string[] = [];
  const pattern = path
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        names.push(seg.slice(1));
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  const re = new RegExp(`^${pattern}/?$`);
  return (p) => {
    const m = re.exec(p);
    if (!m) return undefined;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      try {
        params[n] = decodeURIComponent(m[i + 1]!);
      } catch {
        params[n] = m[i + 1]!;
      }
    });
    return params;
  };
}

function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/**
 * Asks Gatehouse whether the token is still active (RFC 7662), as this
 * service's client. Gatehouse answers `active: true` only to the token's own
 * client and to the clients serving its audience, and `active: false` as soon
 * as the token is revoked or its client disabled.
 */
function createIntrospector(issuer: string, client: { id: string; secret: string }) {
  let endpoint: Promise<string> | undefined;
  const discover = async (): Promise<string> => {
    try {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5_000) });
      const doc = (await res.json()) as { introspection_endpoint?: unknown };
      if (typeof doc.introspection_endpoint === 'string') return doc.introspection_endpoint;
    } catch {
      // fall back to Gatehouse's path
    }
    return `${issuer}/token/introspection`;
  };
  return async (token: string): Promise<boolean> => {
    endpoint ??= discover();
    let res: Response;
    let body: { active?: unknown };
    try {
      res = await fetch(await endpoint, {
        method: 'POST',
        headers: { authorization: basicAuth(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(5_000),
      });
      body = (await res.json()) as { active?: unknown };
    } catch {
      throw new HttpError(503, 'temporarily_unavailable', 'the token could not be checked with the issuer');
    }
    if (res.status !== 200) throw new HttpError(503, 'temporarily_unavailable', 'the token could not be checked with the issuer');
    return body.active === true;
  };
}

/** Starts a service on 127.0.0.1 and resolves once it listens. */
export async function createService(opts: ServiceOptions): Promise<ServiceHandle> {
  const { name, issuer } = opts;
  const log = opts.log ?? stdoutLog;
  const protectedRoutes = opts.routes.filter(isProtected);
  if (protectedRoutes.length > 0 && !opts.audience) throw new Error(`${name}: protected routes need an audience`);
  if (protectedRoutes.some((r) => r.introspect ?? opts.introspect) && !opts.client) {
    throw new Error(`${name}: introspection needs the service's client credentials`);
  }
  const verifier: Verifier | undefined = opts.audience ? createVerifier({ issuer, audience: opts.audience }) : undefined;
  const introspect = opts.client ? createIntrospector(issuer, opts.client) : undefined;

  // Listen first: the public URL (for DPoP `htu`, redirect URIs) is known only then.
  const server = http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;

  const audit = (event: string, fields: Record<string, unknown> = {}) => log({ time: new Date().toISOString(), service: name, event, ...fields });
  const service: ServiceHandle = {
    name,
    url,
    issuer,
    ...(opts.client ? { tokens: createTokenClient({ issuer, clientId: opts.client.id, clientSecret: opts.client.secret }) } : {}),
    audit,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 1_000).unref();
      });
    },
  };

  const routes = opts.routes.map((route) => ({
    route,
    match: compilePath(route.path),
    check: isProtected(route) ? koaRequireScopes(verifier!, route.scopes, { realm: name, publicUrl: url }) : undefined,
    introspect: isProtected(route) && (route.introspect ?? opts.introspect ?? false),
  }));

  const app = new Koa();
  app.proxy = false;
  // outermost: JSON errors and the audit line
  app.use(async (ctx, next) => {
    const started = Date.now();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: 'not_found', error_description: `no route ${ctx.method} ${ctx.path}` };
      }
    } catch (err) {
      if (err instanceof HttpError) {
        ctx.status = err.status;
        ctx.body = { error: err.error, error_description: err.description };
      } else if (err instanceof VerifyError) {
        ctx.status = err.status;
        ctx.set('WWW-Authenticate', wwwAuthenticate(err, { realm: name }));
        ctx.body = { error: err.error, error_description: err.description };
      } else if ((err as { status?: unknown }).status === 400 || (err as { status?: unknown }).status === 413 || (err as { status?: unknown }).status === 415) {
        // body parser refusals
        ctx.status = (err as { status: number }).status;
        ctx.body = { error: 'invalid_request', error_description: 'the request body could not be read' };
      } else {
        console.error(`${name}: ${(err as Error).stack ?? String(err)}`);
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'the request failed' };
      }
    }
    const auth = (ctx.state.auth ?? ctx.state.refused) as AccessTokenClaims | undefined;
    const act = actorChain(auth?.act);
    log({
      time: new Date().toISOString(),
      service: name,
      event: 'request',
      method: ctx.method,
      path: ctx.path,
      status: ctx.status,
      ...(auth ? { sub: auth.sub, client_id: auth.client_id, ...(act ? { act } : {}), scope: auth.scope ?? '' } : {}),
      ms: Date.now() - started,
    });
  });
  app.use(bodyParser({ enableTypes: ['json', 'form'], jsonLimit: '64kb', formLimit: '64kb' }));
  app.use(async (ctx, next) => {
    for (const r of routes) {
      if (r.route.method !== ctx.method && !(r.route.method === 'GET' && ctx.method === 'HEAD')) continue;
      const params = r.match(ctx.path);
      if (!params) continue;
      const raw = (ctx.request as { body?: unknown }).body;
      const body = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
      if (!r.check) {
        ctx.body = (await (r.route as PublicRoute).handler({ ctx, params, body, service })) ?? ctx.body;
        return;
      }
      let passed = false;
      await r.check(ctx, async () => {
        passed = true;
      });
      if (!passed) return; // 401/403 and its challenge are set
      const auth = ctx.state.auth as AccessTokenClaims;
      const token = readCredentials(ctx.headers).token;
      if (r.introspect && !(await introspect!(token))) {
        // locally valid, but Gatehouse says it is not active any more
        delete ctx.state.auth;
        ctx.state.refused = auth;
        throw new VerifyError('invalid_token', 'the token is no longer active (revoked, or its client was disabled)');
      }
      ctx.body = (await (r.route as ProtectedRoute).handler({ ctx, params, body, service, auth, token })) ?? ctx.body;
      return;
    }
    return next();
  });
  server.on('request', app.callback());
  return service;
}

/** Reads a required setting; a missing one stops the service with one line. */
export function required(env: Env, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`missing ${name}`);
  return v;
}

/** The service's own client credentials from CLIENT_ID / CLIENT_SECRET, when set. */
export function clientFromEnv(env: Env): { id: string; secret: string } | undefined {
  return env.CLIENT_ID && env.CLIENT_SECRET ? { id: env.CLIENT_ID, secret: env.CLIENT_SECRET } : undefined;
}

/** Port from PORT (default 0: any free port). */
export function portFromEnv(env: Env): number {
  const p = Number(env.PORT ?? 0);
  return Number.isInteger(p) && p >= 0 && p < 65536 ? p : 0;
}

/**
 * A service module's entry point when run on its own
 * (`tsx examples/retail/services/orders.ts` with ISSUER, CLIENT_ID … set):
 * starts it from process.env and stops it on SIGINT/SIGTERM.
 */
export function runStandalone(moduleUrl: string, start: (env: Env) => Promise<ServiceHandle>): void {
  const invoked = process.argv[1];
  if (!invoked || !existsSync(invoked) || pathToFileURL(realpathSync(invoked)).href !== moduleUrl) return;
  start(process.env).then(
    (s) => {
      console.log(`${s.name} listening on ${s.url}`);
      const stop = () => void s.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (err: unknown) => {
      console.error(`${(err as Error).message}`);
      process.exitCode = 1;
    },
  );
}

/**
 * Calls a downstream API on the caller's behalf: exchanges the caller's token
 * (RFC 8693, with the service's own credentials) for a token for `audience`
 * with just `scope`, then sends the request with it. The downstream service
 * sees the caller as `sub` and this service in `act`.
 *
 * A refused exchange because the caller's token is no longer acceptable
 * becomes a 401 for the caller; any other failure a 502.
 */
export async function callOnBehalf(
  service: ServiceHandle,
  callerToken: string,
  target: { audience: string; scope: string; url: string; method?: 'GET' | 'POST'; body?: unknown },
): Promise<{ status: number; body: unknown }> {
  if (!service.tokens) throw new Error(`${service.name}: calling on a caller's behalf needs the service's client credentials`);
  let token: string;
  try {
    token = (await service.tokens.exchangeForDownstream(callerToken, { audience: target.audience, scope: target.scope })).accessToken;
  } catch (err) {
    if (err instanceof TokenRequestError && err.error === 'invalid_grant') {
      throw new VerifyError('invalid_token', "the token can no longer be used on the caller's behalf");
    }
    service.audit('exchange.failed', { audience: target.audience, error: err instanceof TokenRequestError ? err.error : 'request_failed' });
    throw new HttpError(502, 'upstream_unavailable', `could not obtain a token for ${target.audience}`);
  }
  const res = await fetch(target.url, {
    method: target.method ?? (target.body !== undefined ? 'POST' : 'GET'),
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(target.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(target.body !== undefined ? { body: JSON.stringify(target.body) } : {}),
    signal: AbortSignal.timeout(10_000),
  }).catch(() => undefined);
  if (!res) throw new HttpError(502, 'upstream_unavailable', `${target.url} could not be reached`);
  return { status: res.status, body: await res.json().catch(() => undefined) };
}
