// The REST admin API under /admin/v1 and its OpenAPI document.
//
//   route.ts     the route type (scope, schemas, handler), replies, the actor of a call, If-Match writes
//   routes/      the route table, one file per area
//   auth.ts      Gatehouse access tokens for urn:gatehouse:admin, scopes, DPoP
//   http.ts      JSON bodies, ETag / If-Match, query strings
//   problem.ts   RFC 9457 problem+json and the mapping of domain errors
//   schemas.ts   the API's own zod schemas (users, rotations, queries, responses)
//   openapi.ts   the OpenAPI 3.1 document, generated from the route table
//
// The router and the document are both built from ADMIN_ROUTES, so every
// route is documented and every documented operation exists.
import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from '../http/errors.ts';
import type { RouteGroup } from '../http/routes.ts';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { createAuthenticator, hasScope, insufficientScope } from './auth.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { ProblemError, renderProblem, toProblemError } from './problem.ts';
import { ADMIN_BASE, defineRoute, type AdminDeps, type AdminRoute } from './route.ts';
import { clientRoutes } from './routes/clients.ts';
import { keyRoutes, auditRoutes } from './routes/keys.ts';
import { resourceRoutes, roleRoutes } from './routes/resources.ts';
import { userRoutes } from './routes/users.ts';
import { idpRoutes } from './routes/idps.ts';
import { accessRoutes } from './routes/access.ts';
import { statsRoutes } from './routes/stats.ts';

export { ADMIN_BASE, type AdminDeps } from './route.ts';

const documentRoute = (getDocument: () => unknown): AdminRoute =>
  defineRoute({
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApiDocument',
    tag: 'meta',
    summary: 'This OpenAPI document',
    scope: null,
    responses: [{ status: 200, description: 'the OpenAPI 3.1 document' }],
    async handle({ ctx }) {
      ctx.status = 200;
      ctx.body = getDocument();
      ctx.type = 'application/json';
      ctx.set('Cache-Control', 'no-cache');
    },
  });

/** Every operation of the API except the document itself. */
export const ADMIN_ROUTES: readonly AdminRoute[] = [...clientRoutes, ...userRoutes, ...resourceRoutes, ...roleRoutes, ...keyRoutes, ...auditRoutes, ...idpRoutes, ...accessRoutes, ...statsRoutes];

/** `/clients/{id}/x:y` → `/clients/:id/x\:y` (path-to-regexp syntax). */
export function routerPath(openApiPath: string): string {
  return openApiPath.replace(/:/g, '\\:').replace(/\{([^}]+)\}/g, ':$1');
}

export interface AdminApi {
  middleware: Middleware;
  router: Router;
  routes: readonly AdminRoute[];
  document: Record<string, unknown>;
}

const ownsAdminPath = (path: string) => path === ADMIN_BASE || path.startsWith(`${ADMIN_BASE}/`);

export function createAdminApi(deps: AdminDeps): AdminApi {
  const holder: { document?: Record<string, unknown> } = {};
  const routes: AdminRoute[] = [...ADMIN_ROUTES, documentRoute(() => holder.document)];
  const document = buildOpenApiDocument(routes, deps.config.issuer);
  holder.document = document;
  const auth = createAuthenticator({
    db: deps.db,
    issuer: deps.config.issuer,
    keyring: deps.keyring,
    provider: deps.provider,
    replay: deps.dpopReplay,
  });

  const router = new Router({ prefix: ADMIN_BASE });
  for (const route of routes) {
    router[route.method](routerPath(route.path), async (ctx: Context) => {
      ctx.state.route = `${ADMIN_BASE}${route.path}`;
      let principal;
      if (route.scope !== null) {
        principal = await auth.authenticate(ctx);
        ctx.state.clientId = principal.clientId;
        if (!hasScope(principal, route.scope)) throw insufficientScope(route.scope, principal.scheme);
      }
      const params = { ...(ctx.params as Record<string, string>) };
      // PostgreSQL text cannot hold U+0000: no entity has such an id.
      if (Object.values(params).some((v) => v.includes('\0'))) throw new ProblemError('not-found', 'no such entity');
      await route.run({ ctx, deps, principal, params });
    });
  }
  const dispatch = router.routes() as Middleware;

  const unmatched = (ctx: Context) => async () => {
    const allowed = new Set<string>();
    for (const layer of router.match(ctx.path, ctx.method).path) for (const m of layer.methods) allowed.add(m);
    if (allowed.size === 0) throw new ProblemError('not-found', `no admin API operation at ${ctx.path}`);
    const allow = [...allowed].join(', ');
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      ctx.set('Allow', allow);
      return;
    }
    throw new ProblemError('method-not-allowed', `${ctx.method} is not allowed here (allowed: ${allow})`, { headers: { Allow: allow } });
  };

  const middleware: Middleware = async (ctx, next: Next) => {
    if (!ownsAdminPath(ctx.path)) return next();
    ctx.set('Cache-Control', 'no-store');
    try {
      await dispatch(ctx, unmatched(ctx));
    } catch (err) {
      let problem = toProblemError(err);
      if (!problem && isDatabaseUnavailable(err)) {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        problem = new ProblemError('service-unavailable', 'the database is unreachable; try again shortly');
      }
      if (!problem) {
        deps.logger.error(
          { reqId: ctx.state.requestId, route: ctx.state.route, err: { name: (err as Error)?.name, message: (err as Error)?.message } },
          'admin API request failed',
        );
        problem = new ProblemError('internal-error', `the request could not be completed (request id ${String(ctx.state.requestId ?? '-')})`);
      }
      renderProblem(ctx, problem);
    }
  };

  return { middleware, router, routes, document };
}

/** The routes of /admin/v1/… (in front of the provider). */
export function adminRoutes(deps: AdminDeps): RouteGroup {
  return { owns: ownsAdminPath, middleware: createAdminApi(deps).middleware };
}
