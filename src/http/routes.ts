// Gatehouse's own routes (health, metrics, sign-in pages, admin API) sit in
// front of oidc-provider. Each group says which paths it owns; a request goes
// straight to the group that owns its path, or on to the provider. The token
// endpoint thus passes one synchronous check per group instead of one async
// middleware layer per group.
import type { Middleware } from 'koa';

export interface RouteGroup {
  /** whether this group answers requests for `path` (ctx.path) */
  owns(path: string): boolean;
  middleware: Middleware;
  /**
   * The route patterns this group serves below the issuer's path, e.g.
   * `/interaction/:uid/login`: the `route` of the access log and of the
   * request metrics when the group's handler names none itself
   * (ctx.state.route), so that no path with an id in it becomes a label.
   */
  patterns?: readonly string[];
}

/** `/interaction/:uid` → a regex for the path below `base` (`:name` is one path segment). */
function compile(base: string, pattern: string): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const body = pattern
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : escape(segment)))
    .join('/');
  return new RegExp(`^${escape(base)}${body}$`);
}

/** `base`: the issuer's path ('' for a bare origin), under which `patterns` are matched. */
export function routeGroups(groups: readonly RouteGroup[], opts: { base?: string } = {}): Middleware {
  const base = (opts.base ?? '').replace(/\/$/, '');
  const labelled = groups.map((group) => ({
    group,
    patterns: (group.patterns ?? []).map((p) => ({ pattern: p, re: compile(base, p) })),
  }));
  return (ctx, next) => {
    const path = ctx.path;
    for (const { group, patterns } of labelled) {
      if (!group.owns(path)) continue;
      const match = patterns.find((p) => p.re.test(path));
      if (match) ctx.state.route = match.pattern;
      return group.middleware(ctx, next);
    }
    return next();
  };
}
