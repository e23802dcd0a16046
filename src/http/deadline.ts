// REQUEST_TIMEOUT_MS as a deadline for the answer, not only for receiving
// the request (which is all node:http's requestTimeout covers). A request
// still unanswered then gets 503 `temporarily_unavailable` with Retry-After
// (rendered by errorHandler), whatever it is waiting for: a database that
// does not answer, a pool with no free connection. The work it started is
// left to finish or fail on its own timeouts; its late result is dropped
// (Koa ignores status and header changes once the response is sent), and so
// are the headers it had set so far (a cookie, a Location): the 503 carries
// only the headers set before this middleware.
import type { Middleware } from 'koa';
import { HttpError } from './errors.ts';

export function requestDeadline(ms: number): Middleware {
  return async (ctx, next) => {
    let timer: NodeJS.Timeout | undefined;
    const before = ctx.response.headers;
    const work = next();
    const expired = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), ms);
    });
    try {
      // Promise.race handles a late rejection of `work` (no unhandled rejection).
      const late = await Promise.race([work.then(() => false), expired]);
      if (late) {
        // (Connection may have been set meanwhile by a shutdown: kept.)
        for (const name of ctx.res.getHeaderNames()) if (name !== 'connection') ctx.res.removeHeader(name);
        for (const [name, value] of Object.entries(before)) {
          if (value !== undefined) ctx.set(name, typeof value === 'number' ? String(value) : value);
        }
        throw new HttpError(503, 'temporarily_unavailable', 'the request took too long; try again shortly');
      }
    } finally {
      clearTimeout(timer);
    }
  };
}
