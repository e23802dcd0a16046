// /admin/v1/access-map: who can reach what (src/access), the same data as
// `gatehouse access-map`, as JSON, SVG (for the console) or text.
//
// Scope: the map shows clients' allowances and the resources' servers and
// roles, so it needs both gatehouse:resources:read (the route's scope) and
// gatehouse:clients:read (checked in the handler), or gatehouse:admin. No
// write scope: looking changes nothing.
import { loadRegistry } from '../../access/load.ts';
import { buildModel } from '../../access/model.ts';
import { renderSvg } from '../../access/svg.ts';
import { accessMapView, renderDot, renderMermaid, renderTable } from '../../access/views.ts';
import { assertHolds } from '../../kernel/actor.ts';
import { AccessMapQuery } from '../schemas.ts';
import { actorOf, defineRoute, reply, type AdminRoute } from '../route.ts';

export const ACCESS_MAP_SCOPES = ['gatehouse:resources:read', 'gatehouse:clients:read'] as const;

export const accessRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/access-map',
    operationId: 'getAccessMap',
    tag: 'access',
    summary: 'Who can reach which API and scope',
    description:
      'Every client, role and `people` (any signed-in person) with the APIs and scopes they reach, directly and through token-exchange chains, and the path of each. Filters (at most one): `client`, `api` (with `scope`), `ifLeaked`. `format=svg` answers image/svg+xml (a picture with a <title>, and the table as its <desc>); `table`, `mermaid` and `dot` answer text/plain. Needs `gatehouse:clients:read` as well as `gatehouse:resources:read` (or `gatehouse:admin`).',
    scope: ACCESS_MAP_SCOPES[0],
    query: AccessMapQuery,
    responses: [{ status: 200, description: 'the access map', schema: 'AccessMapView' }],
    async handle(call) {
      const { ctx, deps, query } = call;
      assertHolds(actorOf(call), [ACCESS_MAP_SCOPES[1]]);
      const { format = 'json', ...filters } = query;
      const view = accessMapView(buildModel(await loadRegistry(deps.db)), filters);
      if (format === 'json') return reply(ctx, 200, view);
      ctx.status = 200;
      ctx.set('Cache-Control', 'no-store');
      if (format === 'svg') {
        ctx.type = 'image/svg+xml';
        ctx.body = renderSvg(view).svg;
        return;
      }
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${format === 'mermaid' ? renderMermaid(view) : format === 'dot' ? renderDot(view) : renderTable(view)}\n`;
    },
  }),
];
