// Every served route is labelled with its pattern in
// gatehouse_http_requests_total (the sign-in pages' is /interaction/:uid),
// never with a raw path that carries an id; only paths nothing serves are
// "unmatched".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authUrl, createUser, createWebClient, csrfOf, formAction, page, pkce, PASSWORD, type TestClient } from '../sso/flow.ts';

function routesSeen(text: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const m of text.matchAll(/^gatehouse_http_requests_total\{method="(\w+)",route="([^"]*)",status="\d+"\} (\d+)$/gm)) {
    const key = `${m[1]} ${m[2]}`;
    seen.set(key, (seen.get(key) ?? 0) + Number(m[3]));
  }
  return seen;
}

describe('route labels', () => {
  let t: TestApp;
  let client: TestClient;
  beforeAll(async () => {
    t = await createTestApp();
    await createUser(t, 'label@example.com');
    client = await createWebClient(t, { firstParty: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the sign-in pages are /interaction/:uid, their form posts /interaction/:uid/<step>', async () => {
    const b = new Browser(t);
    const { challenge } = pkce();
    const login = page(await b.get(authUrl({ client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid' })));
    const uid = /\/interaction\/([^/?]+)/.exec(login.url)![1]!;
    await b.post(formAction(login.html, '/login'), { csrf: csrfOf(login.html), login: 'label@example.com', password: 'wrong password' });
    const again = page(await b.get(`/interaction/${uid}`));
    const consent = page(await b.post(formAction(again.html, '/login'), { csrf: csrfOf(again.html), login: 'label@example.com', password: PASSWORD }));
    await b.post(formAction(consent.html, '/consent'), { csrf: csrfOf(consent.html), decision: 'deny' });
    await t.request.get('/static/gatehouse.css').expect(200);
    await t.request.get(`/interaction/${uid}/nonsense`).expect(404);

    const text = (await t.request.get('/metrics').expect(200)).text;
    const seen = routesSeen(text);
    expect(seen.get('GET /interaction/:uid')).toBeGreaterThanOrEqual(2);
    expect(seen.get('POST /interaction/:uid/login')).toBe(2);
    expect(seen.get('POST /interaction/:uid/consent')).toBe(1);
    expect(seen.get('GET /auth')).toBeGreaterThanOrEqual(1);
    expect(seen.get('GET /static/gatehouse.css')).toBe(1);
    expect(text).not.toContain(uid);
  });

  it('every other served route has its pattern; only what nothing serves is unmatched', async () => {
    const served: [method: 'GET' | 'POST', path: string, label: string][] = [
      ['GET', '/.well-known/openid-configuration', '/.well-known/openid-configuration'],
      ['GET', '/.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server'],
      ['GET', '/jwks', '/jwks'],
      ['POST', '/token', '/token'],
      ['GET', '/me', '/me'],
      ['POST', '/token/introspection', '/token/introspection'],
      ['POST', '/token/revocation', '/token/revocation'],
      ['GET', '/session/end', '/session/end'],
      ['POST', '/request', '/request'],
      ['POST', '/device/auth', '/device/auth'],
      ['GET', '/device', '/device'],
      ['POST', '/device', '/device'],
      ['GET', '/healthz', '/healthz'],
      ['GET', '/readyz', '/readyz'],
      ['GET', '/admin/v1/openapi.json', '/admin/v1/openapi.json'],
      ['GET', '/admin/v1/clients', '/admin/v1/clients'],
      ['GET', '/admin/v1/clients/some-client', '/admin/v1/clients/{id}'],
      ['GET', '/interaction/not-a-real-uid', '/interaction/:uid'],
    ];
    const before = routesSeen((await t.request.get('/metrics').expect(200)).text).get('GET unmatched') ?? 0;
    for (const [method, path] of served) await (method === 'GET' ? t.request.get(path) : t.request.post(path).type('form').send({}));
    for (const path of ['/no/such/page', '/favicon.ico', '/devices']) await t.request.get(path).expect(404);
    const seen = routesSeen((await t.request.get('/metrics').expect(200)).text);
    for (const [method, , label] of served) expect(seen.get(`${method} ${label}`), `${method} ${label}`).toBeGreaterThanOrEqual(1);
    const unmatched = [...seen.keys()].filter((k) => k.endsWith(' unmatched'));
    expect(unmatched).toEqual(['GET unmatched']);
    expect(seen.get('GET unmatched')! - before).toBe(3);
  });
});

describe('route labels under an issuer with a path', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER: 'http://localhost:3000/id' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('are the patterns below the issuer’s path, like the provider’s own', async () => {
    await t.request.get('/id/interaction/some-uid');
    await t.request.get('/id/jwks').expect(200);
    await t.request.get('/interaction/some-uid');
    const seen = routesSeen((await t.request.get('/metrics').expect(200)).text);
    expect(seen.get('GET /interaction/:uid')).toBe(1);
    expect(seen.get('GET /jwks')).toBe(1);
    expect(seen.get('GET unmatched')).toBe(1);
  });
});
