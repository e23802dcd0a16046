// /healthz: the process is alive. /readyz: the database answers (quickly).
import type { Middleware } from 'koa';
import type pg from 'pg';
import type { RouteGroup } from './routes.ts';

async function databaseReady(pool: pg.Pool, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      pool.query('SELECT 1').then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(pool: pg.Pool, opts: { isDraining: () => boolean }): RouteGroup {
  const middleware: Middleware = async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === '/healthz') {
      ctx.state.route = '/healthz';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      ctx.state.route = '/readyz';
      ctx.set('Cache-Control', 'no-store');
      const draining = opts.isDraining();
      const db = draining ? false : await databaseReady(pool, 1_000);
      ctx.status = db && !draining ? 200 : 503;
      ctx.body = { status: ctx.status === 200 ? 'ready' : 'not ready', database: db ? 'up' : 'down', draining };
      return;
    }
    return next();
  };
  return { owns: (path) => path === '/healthz' || path === '/readyz', middleware };
}
