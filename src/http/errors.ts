// The last line of defence: an error thrown by our own routes becomes a clean
// answer (JSON or HTML), never a stack trace. 5xx are logged with the request
// id. oidc-provider renders its own OAuth errors before they reach here.
import type { Middleware } from 'koa';
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

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function errorHandler(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const e = err as Error & { status?: number; statusCode?: number; expose?: boolean; error?: string };
      let status = e.status ?? e.statusCode ?? 500;
      if (!Number.isInteger(status) || status < 400 || status > 599) status = 500;
      const exposed = err instanceof HttpError || (status < 500 && e.expose !== false);
      const error = err instanceof HttpError ? err.error : status >= 500 ? 'server_error' : 'invalid_request';
      const description = exposed ? e.message : status === 503 ? 'service temporarily unavailable' : 'internal error';
      if (status >= 500) logger.error({ reqId: ctx.state.requestId, err: { name: e.name, message: e.message } }, 'request failed');
      ctx.status = status;
      if (status === 503) ctx.set('Retry-After', '1');
      if (ctx.accepts('json', 'html') === 'html') {
        ctx.type = 'html';
        ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gatehouse — error</title></head><body><main><h1>Something went wrong</h1><p>${escapeHtml(description)}</p><p>Request id: ${escapeHtml(String(ctx.state.requestId ?? ''))}</p></main></body></html>`;
      } else {
        ctx.body = { error, error_description: description };
      }
    }
  };
}
