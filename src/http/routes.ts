// Gatehouse's own routes (health, metrics, sign-in pages, admin API) sit in
// front of oidc-provider. Each group says which paths it owns; a request goes
// straight to the group that owns its path, or on to the provider. The token
// endpoint thus passes one synchronous check per group instead of one async
// middleware layer per group.
import type { Middleware } from 'koa';

export interface RouteGroup {
  /** whether this group answers requests for `path` (ctx.path) */
  owns(path: string): boolean;
  /** answers the request; names its route pattern in ctx.state.route (the access log's and metrics' `route`) */
  middleware: Middleware;
}

export function routeGroups(groups: readonly RouteGroup[]): Middleware {
  return (ctx, next) => {
    const path = ctx.path;
    for (const group of groups) if (group.owns(path)) return group.middleware(ctx, next);
    return next();
  };
}
