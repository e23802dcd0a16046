// The streaming system as the runner starts it.
import type { ExampleSpec } from '../shared/runner.ts';
import * as accounts from './services/accounts.ts';
import * as history from './services/history.ts';
import * as recommendations from './services/recommendations.ts';
import * as video from './services/video-delivery.ts';

/** What the accounts service knows of each demo viewer beyond their Gatehouse account. */
const PROFILES: Record<string, { address: string; plan: 'basic' | 'premium' }> = {
  'carol@streaming.example': { address: '12 Harbour Road, Portsmouth', plan: 'premium' },
  'dave@streaming.example': { address: '3 Mill Lane, York', plan: 'basic' },
};

export const streaming: ExampleSpec = {
  name: 'streaming',
  configFile: 'examples/streaming/gatehouse.yaml',
  gatehousePort: 4500,
  users: [
    { email: 'carol@streaming.example', name: 'Carol Chen', password: 'carol-demo-password' },
    { email: 'dave@streaming.example', name: 'Dave Dunn', password: 'dave-demo-password' },
  ],
  services: [
    {
      name: 'accounts',
      port: 4502,
      env: ({ issuer, users }) => ({
        ISSUER: issuer,
        ACCOUNTS_SEED: JSON.stringify(users.map((u) => ({ sub: u.id, name: u.name, email: u.email, ...(PROFILES[u.email] ?? { address: '', plan: 'basic' }) }))),
      }),
      start: accounts.start,
    },
    { name: 'history', port: 4503, env: ({ issuer }) => ({ ISSUER: issuer }), start: history.start },
    {
      name: 'video-delivery',
      port: 4501,
      env: ({ issuer, secret, urls }) => ({
        ISSUER: issuer,
        CLIENT_ID: 'video-delivery',
        CLIENT_SECRET: secret('video-delivery'),
        ACCOUNTS_URL: urls.accounts,
        HISTORY_URL: urls.history,
      }),
      start: video.start,
    },
    {
      name: 'recommendations',
      port: 4504,
      env: ({ issuer, secret, urls }) => ({ ISSUER: issuer, CLIENT_ID: 'recommendations', CLIENT_SECRET: secret('recommendations'), HISTORY_URL: urls.history }),
      start: recommendations.start,
    },
  ],
};
