// The viewing history API (audience https://history.streaming.example).
//
// Policies enforced here:
//   - a history is read only by the person it belongs to: every read is for
//     the token's `sub`, and /users/:id/history refuses any other id;
//   - reading needs history:read; when a service reads on the viewer's behalf
//     (token exchange: an `act` claim), the actor must be the recommendations
//     service. Gatehouse already gives history:read to no other service; this
//     check is the second lock on the door;
//   - appending needs history:append (video delivery records what was watched).
import { HttpError, actorChain, createService, portFromEnv, required, runStandalone, type AuthenticatedCall, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { HISTORY_API, TITLES } from '../apis.ts';

/** The only service that may read a history on the viewer's behalf. */
const READERS = new Set(['recommendations']);

export interface Viewing {
  titleId: string;
  title: string;
  at: string;
}

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const histories = new Map<string, Viewing[]>();

  const read = ({ auth, service }: AuthenticatedCall, owner: string) => {
    if (owner !== auth.sub) throw new HttpError(403, 'access_denied', 'a viewing history is readable only by the person it belongs to');
    const actor = auth.act?.sub;
    if (actor !== undefined && !READERS.has(actor)) {
      throw new HttpError(403, 'access_denied', `${actor} may not read viewing histories`);
    }
    if (actor) service.audit('history.read', { message: `actor ${actorChain(auth.act)} read the history of subject ${auth.sub}`, actor, subject: auth.sub });
    return { owner, viewings: histories.get(owner) ?? [] };
  };

  return createService({
    name: 'history',
    issuer: required(env, 'ISSUER'),
    audience: HISTORY_API,
    port: portFromEnv(env),
    ...(log ? { log } : {}),
    routes: [
      { method: 'GET', path: '/history', scopes: ['history:read'], handler: (call) => read(call, call.auth.sub) },
      { method: 'GET', path: '/users/:id/history', scopes: ['history:read'], handler: (call) => read(call, call.params.id!) },
      {
        method: 'POST',
        path: '/history',
        scopes: ['history:append'],
        handler({ auth, body, ctx }) {
          const title = TITLES.find((t) => t.id === body.titleId);
          if (!title) throw new HttpError(400, 'invalid_request', 'titleId: unknown title');
          const list = histories.get(auth.sub) ?? [];
          list.push({ titleId: title.id, title: title.title, at: new Date().toISOString() });
          if (list.length > 1000) list.shift();
          histories.set(auth.sub, list);
          ctx.status = 201;
          return { appended: title.id };
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
