// The recommendations API (audience https://recommendations.streaming.example),
// run by the `recommendations` client. It reads the viewer's history on the
// viewer's behalf (token exchange: history:read, `act` = recommendations) and
// suggests unseen titles of the genres they watch. It cannot read personal
// details: Gatehouse gives it nothing on the accounts API.
import { HttpError, callOnBehalf, clientFromEnv, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { HISTORY_API, RECOMMENDATIONS_API, TITLES } from '../apis.ts';
import type { Viewing } from './history.ts';

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const historyUrl = required(env, 'HISTORY_URL');
  const client = clientFromEnv(env);
  if (!client) throw new Error('recommendations: CLIENT_ID and CLIENT_SECRET are required (it reads histories on the viewer\'s behalf)');

  return createService({
    name: 'recommendations',
    issuer: required(env, 'ISSUER'),
    audience: RECOMMENDATIONS_API,
    port: portFromEnv(env),
    client,
    ...(log ? { log } : {}),
    routes: [
      {
        method: 'GET',
        path: '/recommendations',
        scopes: ['recommendations:read'],
        async handler({ token, service }) {
          const res = await callOnBehalf(service, token, { audience: HISTORY_API, scope: 'history:read', url: `${historyUrl}/history` });
          if (res.status !== 200) throw new HttpError(502, 'upstream_unavailable', `history answered ${res.status}`);
          const seen = (res.body as { viewings: Viewing[] }).viewings;
          const genres = new Set(seen.map((v) => TITLES.find((t) => t.id === v.titleId)?.genre));
          const unseen = TITLES.filter((t) => !seen.some((v) => v.titleId === t.id));
          const ranked = [...unseen.filter((t) => genres.has(t.genre)), ...unseen.filter((t) => !genres.has(t.genre))];
          return { basedOn: seen.length, recommendations: ranked.slice(0, 3).map((t) => ({ titleId: t.id, title: t.title })) };
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
