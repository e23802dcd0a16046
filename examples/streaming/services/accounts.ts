// The accounts API (audience https://accounts.streaming.example): personal
// details, and the subscription plan.
//
// Policies enforced here:
//   - personal details (GET /me) need accounts:read, and are given only to the
//     person themself: a token obtained by a service on their behalf (`act`)
//     is refused even if it somehow carried the scope;
//   - the plan alone (GET /me/plan) needs accounts:plan: what video delivery
//     may ask for, on the viewer's behalf.
import { HttpError, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type ServiceHandle } from '../../shared/service.ts';
import { ACCOUNTS_API } from '../apis.ts';

export interface Account {
  sub: string;
  name: string;
  email: string;
  address: string;
  plan: 'basic' | 'premium';
}

const PLANS = {
  basic: { maxQuality: '1080p', screens: 1 },
  premium: { maxQuality: '2160p', screens: 4 },
} as const;

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  // ACCOUNTS_SEED: the demo accounts, JSON [{sub, name, email, address, plan}]
  const accounts = new Map<string, Account>((JSON.parse(env.ACCOUNTS_SEED ?? '[]') as Account[]).map((a) => [a.sub, a]));
  const accountOf = (sub: string) => {
    const a = accounts.get(sub);
    if (!a) throw new HttpError(404, 'not_found', 'no account for this subject');
    return a;
  };

  return createService({
    name: 'accounts',
    issuer: required(env, 'ISSUER'),
    audience: ACCOUNTS_API,
    port: portFromEnv(env),
    ...(log ? { log } : {}),
    routes: [
      {
        method: 'GET',
        path: '/me',
        scopes: ['accounts:read'],
        handler({ auth }) {
          if (auth.act) throw new HttpError(403, 'access_denied', 'personal details are given only to the person themself');
          return accountOf(auth.sub);
        },
      },
      {
        method: 'GET',
        path: '/me/plan',
        scopes: ['accounts:plan'],
        handler({ auth }) {
          const { plan } = accountOf(auth.sub);
          return { plan, ...PLANS[plan] };
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
