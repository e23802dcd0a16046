// The last line of defence: an error thrown by our own routes becomes a clean
// answer (JSON or HTML), never a stack trace (renderError, called by
// src/http/edge.ts). 5xx are logged with the request id. oidc-provider renders
// its own OAuth errors before they reach here; a database outage behind one
// of them is turned into a 503 by answerOutage() below.
import type { Context } from 'koa';
import type { Logger } from '../logging/logger.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

/** Seconds a client should wait before retrying while the database is unavailable. */
export const RETRY_AFTER_SECONDS = 1;

const UNAVAILABLE_DESCRIPTION = 'the service is temporarily unavailable; try again shortly';

// Prisma: can't reach / timed out / connection closed / pool timeout.
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
// @prisma/adapter-pg's error kinds for the same.
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
// SQLSTATE: connection exceptions (class 08), server shutting down or
// starting up, too many connections, statement timeout.
const SQLSTATE = /^(08...|57P01|57P02|57P03|53300|57014)$/;
const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// pg's own errors carry no code, only these messages.
const PG_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed and is not queryable)/;

/**
 * Whether an error means the database could not be reached or did not answer
 * in time (as opposed to a bug or bad data): the request may succeed if
 * retried shortly. Looks through Prisma's and the pg adapter's wrappers.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): boolean => {
    if (typeof e !== 'object' || e === null || seen.has(e) || depth > 6) return false;
    seen.add(e);
    const x = e as { code?: unknown; originalCode?: unknown; kind?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };
    if (typeof x.code === 'string' && (PRISMA_CODES.has(x.code) || NODE_CODES.has(x.code) || SQLSTATE.test(x.code))) return true;
    if (typeof x.originalCode === 'string' && SQLSTATE.test(x.originalCode)) return true;
    if (typeof x.kind === 'string' && ADAPTER_KINDS.has(x.kind)) return true;
    if (typeof x.message === 'string' && PG_MESSAGES.test(x.message)) return true;
    return visit(x.cause, depth + 1) || visit(x.meta?.driverAdapterError, depth + 1);
  };
  return visit(err, 0);
}

/** Marks the request as failed by a database outage (oidc-provider's `server_error` event). */
export function markDatabaseUnavailable(ctx: Pick<Context, 'state'>, err: unknown): void {
  if (isDatabaseUnavailable(err)) ctx.state.databaseUnavailable = true;
}

/**
 * After oidc-provider answered: its `server_error` 500 caused by a database
 * outage (marked by markDatabaseUnavailable) becomes 503
 * `temporarily_unavailable` with Retry-After. oidc-provider has already
 * rendered the body: a JSON error is rewritten, an HTML page keeps its
 * generic text.
 */
export function answerOutage(ctx: Context): void {
  if (ctx.state.databaseUnavailable !== true || ctx.status !== 500) return;
  ctx.status = 503;
  ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  const body = ctx.body as { error?: unknown } | undefined;
  if (body && typeof body === 'object' && !Buffer.isBuffer(body) && body.error === 'server_error') {
    ctx.body = { error: 'temporarily_unavailable', error_description: UNAVAILABLE_DESCRIPTION };
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Answers the request with `err` as a clean error (JSON, or HTML for a browser). */
export function renderError(ctx: Context, err: unknown, logger: Logger): void {
  const e = err as Error & { status?: number; statusCode?: number; expose?: boolean; error?: string };
  let status = e.status ?? e.statusCode ?? 500;
  if (!Number.isInteger(status) || status < 400 || status > 599) status = 500;
  const outage = status === 500 && !(err instanceof HttpError) && isDatabaseUnavailable(err);
  if (outage) status = 503;
  const exposed = err instanceof HttpError || (status < 500 && e.expose !== false);
  const error = err instanceof HttpError ? err.error : outage ? 'temporarily_unavailable' : status >= 500 ? 'server_error' : 'invalid_request';
  const description = exposed ? e.message : status === 503 ? UNAVAILABLE_DESCRIPTION : 'internal error';
  if (status >= 500) logger.error({ reqId: ctx.state.requestId, err: { name: e.name, message: e.message } }, 'request failed');
  ctx.status = status;
  if (status === 503) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  if (ctx.accepts('json', 'html') === 'html') {
    ctx.type = 'html';
    ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gatehouse — error</title></head><body><main><h1>Something went wrong</h1><p>${escapeHtml(description)}</p><p>Request id: ${escapeHtml(String(ctx.state.requestId ?? ''))}</p></main></body></html>`;
  } else {
    ctx.body = { error, error_description: description };
  }
}
