// The streaming example, end to end on 127.0.0.1: a real Gatehouse on a fresh
// test database, examples/streaming/gatehouse.yaml applied through `gatehouse
// apply`, the four services, viewers signing in through the real login page
// as the player app. Every policy is proven on both sides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../src/verify/index.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { testEnv } from '../../test/helpers/env.ts';
import { callApi, clientCredentials, exchange, tokenRequest } from '../shared/http.ts';
import { startExample, type RunningExample } from '../shared/runner.ts';
import type { LogEntry } from '../shared/service.ts';
import { ACCOUNTS_API, HISTORY_API, RECOMMENDATIONS_API, VIDEO_API } from './apis.ts';
import type { Viewing } from './services/history.ts';
import { streaming } from './system.ts';
import { tvTokens, viewerTokens } from './walkthrough.ts';

type Tokens = Awaited<ReturnType<typeof viewerTokens>>;

describe('streaming example', () => {
  let db: TestDatabase;
  let ex: RunningExample;
  const logs: LogEntry[] = [];
  let carol: { id: string; name: string };
  let dave: { id: string };
  let c: Tokens;
  let d: Tokens;
  const video = () => ({ id: 'video-delivery', secret: ex.secrets['video-delivery']! });
  const viewings = (body: unknown) => ((body as { viewings?: Viewing[] }).viewings ?? []).map((v) => v.titleId);

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = testEnv(db.url);
    ex = await startExample(streaming, { databaseUrl: db.url, baseEnv: env, dataDir: env.DATA_DIR!, log: (e) => logs.push(e) });
    carol = ex.users['carol@streaming.example']!;
    dave = ex.users['dave@streaming.example']!;
    c = await viewerTokens(ex, 'carol@streaming.example');
    d = await viewerTokens(ex, 'dave@streaming.example');
  });
  afterAll(async () => {
    await ex?.close();
    await db?.drop();
  });

  it('apply registered exactly the file (a second apply plans nothing); the player is a public client', async () => {
    const again = await ex.cli(['apply', '-f', 'examples/streaming/gatehouse.yaml', '--dry-run', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ create: [], update: [], delete: [] });
    expect(ex.secrets.player).toBeUndefined();
    // one sign-in, one token per API, each for its own audience
    for (const [token, aud] of [
      [c.video, VIDEO_API],
      [c.accounts, ACCOUNTS_API],
      [c.history, HISTORY_API],
      [c.recommendations, RECOMMENDATIONS_API],
    ] as const) {
      expect(await createVerifier({ issuer: ex.issuer, audience: aud }).verify(token)).toMatchObject({ sub: carol.id, client_id: 'player' });
    }
  });

  describe('video delivery gets what it needs to stream', () => {
    it("plays a title at the viewer's plan quality and records the viewing, on the viewer's behalf", async () => {
      const play = await callApi(`${ex.urls['video-delivery']}/play/nebula-drift`, { token: c.video });
      expect(play).toMatchObject({ status: 200, body: { titleId: 'nebula-drift', quality: '2160p' } });
      const basic = await callApi(`${ex.urls['video-delivery']}/play/kitchen-wars`, { token: d.video });
      expect(basic).toMatchObject({ status: 200, body: { quality: '1080p' } });
      // accounts and history saw carol as the subject and video-delivery as the actor, with one scope each
      const plan = logs.find((e) => e.service === 'accounts' && e.event === 'request' && e.path === '/me/plan' && e.sub === carol.id);
      expect(plan).toMatchObject({ status: 200, client_id: 'video-delivery', act: 'video-delivery', scope: 'accounts:plan' });
      const appended = logs.find((e) => e.service === 'history' && e.event === 'request' && e.method === 'POST' && e.sub === carol.id);
      expect(appended).toMatchObject({ status: 201, act: 'video-delivery', scope: 'history:append' });
    });

    it("refuses a token for another API (the viewer's accounts token)", async () => {
      const res = await callApi(`${ex.urls['video-delivery']}/play/nebula-drift`, { token: c.accounts });
      expect(res.status).toBe(401);
      expect(res.challenge).toBe('Bearer realm="video-delivery", error="invalid_token", error_description="the token is not meant for this API"');
    });
  });

  describe('viewing history is readable only by its owner and by the recommendations service', () => {
    it('the owner reads it; another viewer cannot, by any route', async () => {
      const own = await callApi(`${ex.urls.history}/history`, { token: c.history });
      expect(own.status).toBe(200);
      expect(viewings(own.body)).toEqual(['nebula-drift']);
      expect((await callApi(`${ex.urls.history}/users/${carol.id}/history`, { token: c.history })).status).toBe(200);

      const other = await callApi(`${ex.urls.history}/users/${carol.id}/history`, { token: d.history });
      expect(other).toMatchObject({ status: 403, body: { error: 'access_denied' } });
      const daves = await callApi(`${ex.urls.history}/history`, { token: d.history });
      expect(viewings(daves.body)).toEqual(['kitchen-wars']);
    });

    it("the recommendations service reads it on the viewer's behalf (act = recommendations), and the read is logged", async () => {
      const res = await callApi(`${ex.urls.recommendations}/recommendations`, { token: c.recommendations });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ basedOn: 1, recommendations: [{ titleId: 'orbit-of-glass' }, expect.anything(), expect.anything()] });
      expect(logs.find((e) => e.service === 'history' && e.event === 'history.read' && e.subject === carol.id)).toMatchObject({
        actor: 'recommendations',
        message: `actor recommendations read the history of subject ${carol.id}`,
      });
      // the exchanged token names carol and the recommendations service
      const token = await exchange(ex.issuer, { id: 'recommendations', secret: ex.secrets.recommendations! }, c.recommendations, HISTORY_API, 'history:read');
      const claims = await createVerifier({ issuer: ex.issuer, audience: HISTORY_API }).verify(token.body.access_token!, { scopes: ['history:read'] });
      expect(claims).toMatchObject({ sub: carol.id, client_id: 'recommendations', act: { sub: 'recommendations' }, scope: 'history:read' });
    });

    it('the recommendations service gets nothing else: no personal details, no writes', async () => {
      const recs = { id: 'recommendations', secret: ex.secrets.recommendations! };
      expect((await exchange(ex.issuer, recs, c.recommendations, ACCOUNTS_API, 'accounts:read')).body.error).toBe('invalid_target');
      expect((await exchange(ex.issuer, recs, c.recommendations, HISTORY_API, 'history:append')).body.error).toBe('invalid_scope');
      expect((await clientCredentials(ex.issuer, recs, HISTORY_API, 'history:read')).body.error).toBe('unauthorized_client');
    });

    it('a token for another API is refused by history', async () => {
      const res = await callApi(`${ex.urls.history}/history`, { token: c.recommendations });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/^Bearer realm="history", error="invalid_token"/);
    });
  });

  describe('a compromised video-delivery credential reaches nothing else', () => {
    it('its client_credentials obtain no token for any API', async () => {
      for (const api of [VIDEO_API, ACCOUNTS_API, HISTORY_API, RECOMMENDATIONS_API]) {
        const res = await clientCredentials(ex.issuer, video(), api);
        expect({ api, status: res.status, error: res.body.error }).toEqual({ api, status: 400, error: 'unauthorized_client' });
      }
    });

    it("exchanging a viewer's video token: personal details, reading history and other APIs are refused", async () => {
      expect((await exchange(ex.issuer, video(), c.video, ACCOUNTS_API, 'accounts:read')).body.error).toBe('invalid_scope');
      expect((await exchange(ex.issuer, video(), c.video, ACCOUNTS_API, 'accounts:plan accounts:read')).body.error).toBe('invalid_scope');
      expect((await exchange(ex.issuer, video(), c.video, HISTORY_API, 'history:read')).body.error).toBe('invalid_scope');
      expect((await exchange(ex.issuer, video(), c.video, RECOMMENDATIONS_API)).body.error).toBe('invalid_target');
      expect((await exchange(ex.issuer, video(), c.video, VIDEO_API)).body.error).toBe('invalid_target');
    });

    it('exchanging tokens stolen from other APIs is refused (it does not serve them)', async () => {
      expect((await exchange(ex.issuer, video(), c.history, HISTORY_API, 'history:append')).body.error).toBe('invalid_grant');
      expect((await exchange(ex.issuer, video(), c.accounts, ACCOUNTS_API, 'accounts:plan')).body.error).toBe('invalid_grant');
      expect((await exchange(ex.issuer, video(), c.recommendations, ACCOUNTS_API, 'accounts:plan')).body.error).toBe('invalid_grant');
    });

    it('what it can obtain (plan, history append) opens nothing else', async () => {
      const plan = await exchange(ex.issuer, video(), c.video, ACCOUNTS_API);
      expect(plan.body.scope).toBe('accounts:plan'); // no scope asked: its whole allowance, which is just this
      const append = await exchange(ex.issuer, video(), c.video, HISTORY_API);
      expect(append.body.scope).toBe('history:append');

      const me = await callApi(`${ex.urls.accounts}/me`, { token: plan.body.access_token! });
      expect(me.status).toBe(403);
      expect(me.challenge).toBe(
        'Bearer realm="accounts", error="insufficient_scope", error_description="the token lacks the scope accounts:read", scope="accounts:read"',
      );
      expect((await callApi(`${ex.urls.history}/history`, { token: append.body.access_token! })).status).toBe(403);
      expect((await callApi(`${ex.urls.history}/users/${carol.id}/history`, { token: append.body.access_token! })).status).toBe(403);
      expect((await callApi(`${ex.urls.history}/history`, { token: plan.body.access_token! })).status).toBe(401);
      expect((await callApi(`${ex.urls.recommendations}/recommendations`, { token: append.body.access_token! })).status).toBe(401);
      expect((await callApi(`${ex.urls.accounts}/me/plan`, { token: append.body.access_token! })).status).toBe(401);
    });

    it('a wrong secret gets invalid_client', async () => {
      const res = await tokenRequest(ex.issuer, { id: 'video-delivery', secret: 'guessed' }, { grant_type: 'client_credentials', resource: ACCOUNTS_API });
      expect(res.body.error).toBe('invalid_client');
    });
  });

  describe('personal details go to the person only', () => {
    it('each viewer reads their own details, and no one else’s', async () => {
      const me = await callApi(`${ex.urls.accounts}/me`, { token: c.accounts });
      expect(me).toMatchObject({ status: 200, body: { sub: carol.id, name: carol.name, plan: 'premium' } });
      const daves = await callApi(`${ex.urls.accounts}/me`, { token: d.accounts });
      expect(daves.body).toMatchObject({ sub: dave.id, plan: 'basic' });
      expect((await callApi(`${ex.urls.accounts}/me`)).status).toBe(401);
    });
  });

  // last: playing records a viewing in carol's history
  it('the TV signs in with the device flow: pending until carol enters the code, then a video token of its own', async () => {
    const polls: string[] = [];
    const tv = await tvTokens(ex, 'carol@streaming.example', polls);
    expect(polls).toEqual(['authorization_pending']);
    expect(await createVerifier({ issuer: ex.issuer, audience: VIDEO_API }).verify(tv.access_token)).toMatchObject({ sub: carol.id, client_id: 'tv', scope: 'video:stream' });
    expect(tv.refresh_token).toEqual(expect.any(String));
    const play = await callApi(`${ex.urls['video-delivery']}/play/orbit-of-glass`, { token: tv.access_token });
    expect(play.status).toBe(200);
    expect((await callApi(`${ex.urls.history}/history`, { token: tv.access_token })).status).toBe(401);
  });
});
