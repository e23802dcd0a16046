// /admin/v1/stats: what the console's overview shows. Counts of the
// deployment and the answering process's own counters of the last hour
// (src/metrics/recent.ts). Operational data about what happened: it needs
// the audit read scope.
import { countAccounts } from '../../accounts/store.ts';
import { countClients } from '../../clients/store.ts';
import { countRoles } from '../../resources/roles.ts';
import { countResources } from '../../resources/store.ts';
import { recentCounts } from '../../metrics/recent.ts';
import { defineRoute, reply, type AdminRoute } from '../route.ts';

const empty = recentCounts();

export const statsRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/stats',
    operationId: 'getStats',
    tag: 'stats',
    summary: 'Counts, and the last hour of tokens, logins and errors',
    description:
      "Counts of clients, people, APIs and roles, and the answering process's own counters of the last hour, minute by minute (tokens issued, token errors, password logins, requests, 5xx answers). With several workers or instances each answers for itself.",
    scope: 'gatehouse:audit:read',
    responses: [{ status: 200, description: 'the statistics', schema: 'StatsView' }],
    async handle({ ctx, deps }) {
      const [clients, people, apis, roles] = await Promise.all([countClients(deps.db), countAccounts(deps.db), countResources(deps.db), countRoles(deps.db)]);
      reply(ctx, 200, { counts: { clients, people, apis, roles }, lastHour: (deps.lastHour ?? (() => empty.lastHour()))() });
    },
  }),
];
