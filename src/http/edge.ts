// The outermost layer of every request: its id, security headers, the answer
// deadline, a clean error for anything thrown, and the access log with the
// request metrics. One middleware rather than five: each async layer costs
// every request a frame and promises (with oidc-provider's AsyncLocalStorage,
// async-hook work too), and the token endpoint is hot. The concerns live in
// their own modules next to this one; this only puts them in order.
import type { Middleware } from 'koa';
import type { Logger } from '../logging/logger.ts';
import { requestRecorder, type RequestObserver } from './access-log.ts';
import { raceDeadline } from './deadline.ts';
import { HttpError, renderError } from './errors.ts';
import { assignRequestId } from './request-id.ts';
import { securityHeaders } from './security-headers.ts';

export interface EdgeOptions {
  logger: Logger;
  /** Strict-Transport-Security (an https issuer) */
  hsts: boolean;
  /** REQUEST_TIMEOUT_MS: unanswered by then → 503 */
  deadlineMs: number;
  observe?: RequestObserver;
}

export function edge(opts: EdgeOptions): Middleware {
  const security = securityHeaders({ hsts: opts.hsts });
  const record = requestRecorder(opts.logger, opts.observe);
  return async (ctx, next) => {
    const start = process.hrtime.bigint();
    const id = assignRequestId(ctx);
    security.apply(ctx);
    try {
      const late = await raceDeadline(next(), opts.deadlineMs);
      if (late) {
        // What the unfinished work set so far (a cookie, a Location) is
        // dropped: the 503 carries only this layer's own headers.
        // (Connection may have been set meanwhile by a shutdown: kept.)
        for (const name of ctx.res.getHeaderNames()) if (name !== 'connection') ctx.res.removeHeader(name);
        ctx.set('X-Request-Id', id);
        security.apply(ctx);
        throw new HttpError(503, 'temporarily_unavailable', 'the request took too long; try again shortly');
      }
    } catch (err) {
      renderError(ctx, err, opts.logger);
    } finally {
      security.finish(ctx);
      record(ctx, start);
    }
  };
}
