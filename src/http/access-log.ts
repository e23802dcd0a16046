// One JSON log line per request, and the request metrics. The query string is
// left out on purpose: it can carry codes, hints and tokens.
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
      logger.info(
        {
          reqId: ctx.state.requestId,
          method: ctx.method,
          path: ctx.path,
          route,
          status,
          ms: Math.round(seconds * 1e4) / 10,
          ip: ctx.ip,
          client: typeof ctx.state.clientId === 'string' ? ctx.state.clientId : undefined,
        },
        'request',
      );
    };
    // oidc-provider may answer through ctx.res directly; log when it is sent.
    if (ctx.respond === false && !ctx.res.writableEnded) ctx.res.once('finish', done);
    else done();
  };
}
