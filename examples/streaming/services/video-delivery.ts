// The video delivery API (audience https://video.streaming.example), run by
// the `video-delivery` client.
//
// To start a stream it needs two things, and gets each on the viewer's
// behalf by token exchange, with the narrowest scope there is:
//   - the viewer's plan (accounts:plan → GET /me/plan on accounts), to pick
//     the quality; never their personal details (accounts:read);
//   - to record the viewing (history:append → POST /history on history);
//     never to read the history (history:read).
// Gatehouse refuses it anything more (see gatehouse.yaml), so a compromised
// video-delivery credential reaches nothing else.
import { HttpError, callOnBehalf, clientFromEnv, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { ACCOUNTS_API, HISTORY_API, TITLES, VIDEO_API } from '../apis.ts';

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const accountsUrl = required(env, 'ACCOUNTS_URL');
  const historyUrl = required(env, 'HISTORY_URL');
  const client = clientFromEnv(env);
  if (!client) throw new Error('video-delivery: CLIENT_ID and CLIENT_SECRET are required (it calls accounts and history on the viewer\'s behalf)');

  return createService({
    name: 'video-delivery',
    issuer: required(env, 'ISSUER'),
    audience: VIDEO_API,
    port: portFromEnv(env),
    client,
    ...(log ? { log } : {}),
    routes: [
      { method: 'GET', path: '/titles', scopes: ['video:stream'], handler: () => ({ titles: TITLES }) },
      {
        method: 'GET',
        path: '/play/:titleId',
        scopes: ['video:stream'],
        async handler({ params, token, service }) {
          const title = TITLES.find((t) => t.id === params.titleId);
          if (!title) throw new HttpError(404, 'not_found', 'no such title');
          const plan = await callOnBehalf(service, token, { audience: ACCOUNTS_API, scope: 'accounts:plan', url: `${accountsUrl}/me/plan` });
          if (plan.status !== 200) throw new HttpError(502, 'upstream_unavailable', `accounts answered ${plan.status}`);
          const { maxQuality } = plan.body as { maxQuality: string };
          const recorded = await callOnBehalf(service, token, { audience: HISTORY_API, scope: 'history:append', url: `${historyUrl}/history`, body: { titleId: title.id } });
          if (recorded.status !== 201) throw new HttpError(502, 'upstream_unavailable', `history answered ${recorded.status}`);
          return { titleId: title.id, title: title.title, quality: maxQuality, manifest: `${service.url}/media/${title.id}/${maxQuality}.m3u8` };
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
