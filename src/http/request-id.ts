// Every request gets an id: the caller's X-Request-Id when it is sane (so a
// load balancer's id carries through), otherwise a new one. It is echoed in
// the response and appears in every log line and audit event of the request.
import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';

const SANE = /^[\w.:-]{1,128}$/;

/** Gives the request its id (ctx.state.requestId, X-Request-Id) and returns it. */
export function assignRequestId(ctx: Context): string {
  const given = ctx.get('x-request-id');
  const id = SANE.test(given) ? given : randomUUID();
  ctx.state.requestId = id;
  ctx.set('X-Request-Id', id);
  return id;
}
