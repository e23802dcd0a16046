// The streaming walk-through: every policy, allowed side and refused side,
// one line per check. Run by `npm run example:streaming -- --walkthrough`.
//
// The viewers sign in through Gatehouse's real login page as the player app
// would; the attacker holds video-delivery's client secret and whatever
// tokens passed through it.
import { Browser, codeFlowTokens, deviceFlowTokens } from '../shared/browser.ts';
import { callApi, clientCredentials, exchange, peek } from '../shared/http.ts';
import type { Walkthrough } from '../shared/main.ts';
import type { RunningExample } from '../shared/runner.ts';
import { describeToken, expectApi, expectTokenError } from '../shared/report.ts';
import { ACCOUNTS_API, HISTORY_API, PLAYER_REDIRECT_URI, RECOMMENDATIONS_API, VIDEO_API } from './apis.ts';

/** The living-room TV's tokens for the video API: the device flow, approved by the viewer on another screen. */
export async function tvTokens(ex: RunningExample, email: string, polls?: string[]) {
  const u = ex.users[email]!;
  return deviceFlowTokens({ issuer: ex.issuer, client: { id: 'tv' }, resource: VIDEO_API, scope: 'openid offline_access video:stream', email: u.email, password: u.password, ...(polls ? { polls } : {}) });
}

/** A viewer's tokens, one per API, from the player app's code flow (one login, then the SSO session). */
export async function viewerTokens(ex: RunningExample, email: string): Promise<Record<'video' | 'accounts' | 'history' | 'recommendations', string>> {
  const u = ex.users[email]!;
  const browser = new Browser();
  const get = async (resource: string, scope: string) =>
    (
      await codeFlowTokens({
        issuer: ex.issuer,
        client: { id: 'player' },
        redirectUri: PLAYER_REDIRECT_URI,
        resource,
        scope: `openid ${scope}`,
        email: u.email,
        password: u.password,
        browser,
      })
    ).access_token;
  return {
    video: await get(VIDEO_API, 'video:stream'),
    accounts: await get(ACCOUNTS_API, 'accounts:read'),
    history: await get(HISTORY_API, 'history:read'),
    recommendations: await get(RECOMMENDATIONS_API, 'recommendations:read'),
  };
}

export const walkthrough: Walkthrough = async (ex, logs, r) => {
  const { issuer, urls, secrets } = ex;
  const carol = ex.users['carol@streaming.example']!;
  const dave = ex.users['dave@streaming.example']!;
  const video = { id: 'video-delivery', secret: secrets['video-delivery']! };
  const recs = { id: 'recommendations', secret: secrets.recommendations! };
  r.section('0. Viewers sign in through the player app (public client, code flow + PKCE)');
  const c = await viewerTokens(ex, carol.email);
  const d = await viewerTokens(ex, dave.email);
  r.note(`carol signed in once in the player app and holds one token per API, e.g. aud=${String(peek(c.video).aud)} scope="${String(peek(c.video).scope)}"`);

  // ------------------------------------------------------------------
  r.section('1. Video delivery gets what it needs to stream, on the viewer\'s behalf: the plan, and a history entry');
  await r.check('allowed', 'carol plays "Nebula Drift" (premium plan)', async () => {
    const res = await callApi(`${urls['video-delivery']}/play/nebula-drift`, { token: c.video });
    const quality = (res.body as { quality?: string }).quality;
    return { ok: res.status === 200 && quality === '2160p', result: `${res.status}, quality ${quality} (from accounts:plan)` };
  });
  await r.check('allowed', 'dave plays "Kitchen Wars" (basic plan)', async () => {
    const res = await callApi(`${urls['video-delivery']}/play/kitchen-wars`, { token: d.video });
    const quality = (res.body as { quality?: string }).quality;
    return { ok: res.status === 200 && quality === '1080p', result: `${res.status}, quality ${quality}` };
  });
  await r.check('refused', "carol's accounts token at video delivery", async () => expectApi(await callApi(`${urls['video-delivery']}/play/nebula-drift`, { token: c.accounts }), 401, true));

  // ------------------------------------------------------------------
  r.section('2. Viewing history is readable only by its owner, and by the recommendations service on the owner\'s behalf');
  await r.check('allowed', 'carol reads her own history', async () => {
    const res = await callApi(`${urls.history}/history`, { token: c.history });
    const v = (res.body as { viewings?: { titleId: string }[] }).viewings ?? [];
    return { ok: res.status === 200 && v.length === 1 && v[0]!.titleId === 'nebula-drift', result: `${res.status}, ${v.map((x) => x.titleId).join(', ')} (recorded by video delivery)` };
  });
  await r.check('refused', "dave reads carol's history (/users/<carol>/history)", async () =>
    expectApi(await callApi(`${urls.history}/users/${carol.id}/history`, { token: d.history }), 403),
  );
  await r.check('refused', "dave's own history holds nothing of carol's", async () => {
    const res = await callApi(`${urls.history}/history`, { token: d.history });
    const v = (res.body as { viewings?: { titleId: string }[] }).viewings ?? [];
    return { ok: res.status === 200 && !v.some((x) => x.titleId === 'nebula-drift'), result: `${res.status}, ${v.map((x) => x.titleId).join(', ')}` };
  });
  await r.check('allowed', 'recommendations for carol (reads her history on her behalf)', async () => {
    const res = await callApi(`${urls.recommendations}/recommendations`, { token: c.recommendations });
    const body = res.body as { basedOn?: number; recommendations?: { titleId: string }[] };
    const line = logs.find((e) => e.service === 'history' && e.event === 'history.read' && e.subject === carol.id);
    return {
      ok: res.status === 200 && body.basedOn === 1 && body.recommendations?.[0]?.titleId === 'orbit-of-glass' && line?.actor === 'recommendations',
      result: `${res.status}, first pick ${body.recommendations?.[0]?.titleId}; history logged "${String(line?.message).replace(carol.id, 'carol')}"`,
    };
  });
  await r.check('refused', 'recommendations asking for personal details (accounts)', async () =>
    expectTokenError(await exchange(issuer, recs, c.recommendations, ACCOUNTS_API, 'accounts:read'), 'invalid_target'),
  );
  await r.check('refused', "carol's recommendations token at the history API", async () => expectApi(await callApi(`${urls.history}/history`, { token: c.recommendations }), 401, true));

  // ------------------------------------------------------------------
  r.section('3. Personal details are given to the person only');
  await r.check('allowed', 'carol reads her personal details', async () => {
    const res = await callApi(`${urls.accounts}/me`, { token: c.accounts });
    const b = res.body as { name?: string; address?: string };
    return { ok: res.status === 200 && b.name === carol.name, result: `${res.status}, ${b.name}, ${b.address}` };
  });
  const plan = await exchange(issuer, video, c.video, ACCOUNTS_API, 'accounts:plan');
  await r.check('refused', "video delivery's token for carol (accounts:plan) reading /me", async () =>
    expectApi(await callApi(`${urls.accounts}/me`, { token: plan.body.access_token ?? '' }), 403, true),
  );

  // ------------------------------------------------------------------
  r.section("4. A compromised video-delivery credential reaches nothing else");
  for (const [name, api] of [
    ['video', VIDEO_API],
    ['accounts', ACCOUNTS_API],
    ['history', HISTORY_API],
    ['recommendations', RECOMMENDATIONS_API],
  ] as const) {
    await r.check('refused', `its client_credentials for the ${name} API`, async () => expectTokenError(await clientCredentials(issuer, video, api), 'unauthorized_client'));
  }
  await r.check('refused', "exchanging carol's video token for personal details (accounts:read)", async () =>
    expectTokenError(await exchange(issuer, video, c.video, ACCOUNTS_API, 'accounts:read'), 'invalid_scope'),
  );
  await r.check('refused', "exchanging carol's video token to read her history (history:read)", async () =>
    expectTokenError(await exchange(issuer, video, c.video, HISTORY_API, 'history:read'), 'invalid_scope'),
  );
  await r.check('refused', "exchanging carol's video token for the recommendations API", async () =>
    expectTokenError(await exchange(issuer, video, c.video, RECOMMENDATIONS_API), 'invalid_target'),
  );
  await r.check('refused', "exchanging a stolen history token of carol's (an API it does not serve)", async () =>
    expectTokenError(await exchange(issuer, video, c.history, HISTORY_API, 'history:append'), 'invalid_grant'),
  );
  await r.check('refused', "exchanging a stolen recommendations token of carol's", async () =>
    expectTokenError(await exchange(issuer, video, c.recommendations, ACCOUNTS_API, 'accounts:plan'), 'invalid_grant'),
  );
  await r.check('allowed', "what it may do: exchange carol's video token for her plan", async () => ({
    ok: plan.status === 200 && plan.body.scope === 'accounts:plan' && (peek(plan.body.access_token ?? '').act as { sub?: string } | undefined)?.sub === 'video-delivery',
    result: `${describeToken(plan)}, act.sub=${String((peek(plan.body.access_token ?? '').act as { sub?: string } | undefined)?.sub)}`,
  }));
  const append = await exchange(issuer, video, c.video, HISTORY_API, 'history:append');
  await r.check('refused', 'its history:append token reading the history', async () =>
    expectApi(await callApi(`${urls.history}/history`, { token: append.body.access_token ?? '' }), 403, true),
  );
  await r.check('refused', 'its accounts:plan token at the history API', async () => expectApi(await callApi(`${urls.history}/history`, { token: plan.body.access_token ?? '' }), 401));
  await r.check('refused', 'its history:append token at the recommendations API', async () =>
    expectApi(await callApi(`${urls.recommendations}/recommendations`, { token: append.body.access_token ?? '' }), 401),
  );

  // ------------------------------------------------------------------
  r.section('5. The living-room TV signs in with a code (device flow, RFC 8628): carol enters it at /device on her phone');
  const polls: string[] = [];
  const tv = await tvTokens(ex, carol.email, polls);
  await r.check('refused', 'the TV polling before carol entered the code', async () => ({ ok: polls[0] === 'authorization_pending', result: polls[0] ?? 'no poll' }));
  await r.check('allowed', 'the TV plays "Orbit of Glass" with its own token', async () => {
    const res = await callApi(`${urls['video-delivery']}/play/orbit-of-glass`, { token: tv.access_token });
    return { ok: res.status === 200 && peek(tv.access_token).client_id === 'tv', result: `${res.status}, client_id=${String(peek(tv.access_token).client_id)}, scope="${String(peek(tv.access_token).scope)}"` };
  });
  await r.check('refused', "the TV's token at the history API", async () => expectApi(await callApi(`${urls.history}/history`, { token: tv.access_token }), 401, true));
};
