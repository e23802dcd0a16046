// GET /metrics in Prometheus text format. With METRICS_TOKEN set it needs
// `Authorization: Bearer <token>` (compared in constant time). With several
// workers, `aggregate` returns the sum over all of them (see src/server.ts).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import type { RouteGroup } from '../http/routes.ts';
import type { Metrics } from './metrics.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function metricsRoute(metrics: Metrics, opts: { token?: string; aggregate?: () => Promise<string> }): RouteGroup {
  const expected = opts.token ? digest(opts.token) : undefined;
  const middleware: Middleware = async (ctx) => {
    ctx.state.route = '/metrics';
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      return;
    }
    if (expected) {
      const m = /^Bearer ([^\s]+)$/.exec(ctx.get('authorization'));
      if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        ctx.body = { error: 'invalid_token', error_description: 'a valid METRICS_TOKEN bearer token is required' };
        return;
      }
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.registry.contentType;
    ctx.body = opts.aggregate ? await opts.aggregate() : await metrics.registry.metrics();
  };
  return { owns: (path) => path === '/metrics', middleware };
}
