// `users revoke-sessions`, `disable` and `delete` (CLI and admin API) tell the
// apps of the sessions they end, by OpenID Connect Back-Channel Logout: a
// relying party that keeps its own session (mod_auth_openidc, a web
// framework's session) otherwise never learns that the person was signed out.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { Browser, codeFlowTokens, type TestClient } from '../sso/flow.ts';
import { createServiceClient, createUser, createWebClient } from './fixtures.ts';

const ISSUER = 'http://localhost:3000';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe('ending a person’s sessions sends back-channel logout', () => {
  let t: TestApp;
  let receiver: Server;
  let port: number;
  const received: { client: string; logoutToken: string }[] = [];
  let admin: string;
  let n = 0;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const token = new URLSearchParams(body).get('logout_token');
        if (token) received.push({ client: (req.url ?? '').slice(1), logoutToken: token });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as AddressInfo).port;
    t = await createTestApp({ env: { ISSUER, LOGIN_IP_MAX_FAILURES: '1000' } });
    const ops = await createServiceClient(t, { name: 'ops', resources: ['urn:gatehouse:admin'], scopes: ['gatehouse:users:write', 'gatehouse:users:read'] });
    const res = await t.request.post('/token').type('form').auth(ops.id, ops.secret!).send({ grant_type: 'client_credentials', resource: 'urn:gatehouse:admin' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    admin = res.body.access_token as string;
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => receiver?.close(r));
  });

  /** A person signed in to two apps with back-channel logout and one without; returns the sids the apps know. */
  async function signedIn(): Promise<{ email: string; id: string; apps: TestClient[]; sids: Map<string, string> }> {
    const email = `bc${++n}@example.com`;
    const person = await createUser(t, email);
    const apps: TestClient[] = [];
    for (const name of ['mail', 'wiki']) {
      const id = `${name}-${n}`;
      apps.push(await createWebClient(t, { id, name, firstParty: true, backchannelLogoutUri: `http://127.0.0.1:${port}/${id}` }));
    }
    const silent = await createWebClient(t, { name: `silent-${n}`, firstParty: true });
    const browser = new Browser(t);
    const sids = new Map<string, string>();
    const jwks = createLocalJWKSet((await t.request.get('/jwks')).body);
    for (const app of [...apps, silent]) {
      const tokens = await codeFlowTokens(browser, app, { scope: 'openid' }, { email });
      const { payload } = await jwtVerify(tokens.id_token as string, jwks, { issuer: ISSUER, audience: app.id });
      sids.set(app.id, payload.sid as string);
    }
    return { email, id: person.id, apps, sids };
  }

  async function expectLogoutTokens(p: Awaited<ReturnType<typeof signedIn>>): Promise<void> {
    const jwks = createLocalJWKSet((await t.request.get('/jwks')).body);
    for (const app of p.apps) {
      const got = received.filter((r) => r.client === app.id);
      expect(got, `logout token for ${app.id}`).toHaveLength(1);
      const { payload } = await jwtVerify(got[0]!.logoutToken, jwks, { issuer: ISSUER, audience: app.id });
      expect(payload.sub).toBe(p.id);
      expect(payload.sid).toBe(p.sids.get(app.id));
      expect(payload.events).toEqual({ [BACKCHANNEL_EVENT]: {} });
      expect(payload.nonce).toBeUndefined();
    }
  }

  for (const command of ['revoke-sessions', 'disable', 'delete']) {
    it(`gatehouse users ${command}`, async () => {
      const p = await signedIn();
      received.length = 0;
      const r = await cli(t.database.url, ['users', command, p.email, '--json'], { env: { ISSUER } });
      expect(r.code, r.stderr).toBe(0);
      const out = r.json<{ revoked?: { backchannel: unknown[] }; backchannel?: unknown[] }>();
      const deliveries = out.backchannel ?? out.revoked?.backchannel;
      expect(deliveries).toEqual(expect.arrayContaining(p.apps.map((a) => ({ clientId: a.id, delivered: true }))));
      expect(deliveries).toHaveLength(2);
      await expectLogoutTokens(p);
    });
  }

  it('admin API: sessions:revoke, disable (PATCH) and DELETE', async () => {
    const calls = [
      (id: string) => t.request.post(`/admin/v1/users/${id}/sessions:revoke`),
      (id: string) => t.request.patch(`/admin/v1/users/${id}`).send({ disabled: true }),
      (id: string) => t.request.delete(`/admin/v1/users/${id}`),
    ];
    for (const call of calls) {
      const p = await signedIn();
      received.length = 0;
      const res = await call(p.id).set('Authorization', `Bearer ${admin}`);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      await expectLogoutTokens(p);
    }
  });

  it('an app that does not answer is reported, and the sessions end anyway', async () => {
    const email = `bc${++n}@example.com`;
    await createUser(t, email);
    const dead = await createWebClient(t, { name: 'dead', firstParty: true, backchannelLogoutUri: 'http://127.0.0.1:9/nothing-listens' });
    await codeFlowTokens(new Browser(t), dead, { scope: 'openid' }, { email });
    const r = await cli(t.database.url, ['users', 'revoke-sessions', email, '--json'], { env: { ISSUER } });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json<{ sessions: number; backchannel: { clientId: string; delivered: boolean; error?: string }[] }>();
    expect(out.sessions).toBe(1);
    expect(out.backchannel).toEqual([{ clientId: dead.id, delivered: false, error: expect.any(String) }]);
    const human = await cli(t.database.url, ['users', 'revoke-sessions', email], { env: { ISSUER } });
    expect(human.code).toBe(0);
  });
});
