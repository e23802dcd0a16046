// Introspection and userinfo of an opaque access token answer from one read
// per request (issue 18) and keep nothing about the token between requests.
// This pins the consequence: a token that instance B has just answered for,
// many times (warm: its client and account are in B's caches), is refused by
// B within one second once it is revoked, its person disabled or their
// sessions ended on instance A.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { Browser, basic, codeFlowTokens, type TestClient } from '../sso/flow.ts';
import { createUser, createWebClient, twoApps } from './fixtures.ts';

describe('a token warm on instance B is refused there within one second', () => {
  let apps: Awaited<ReturnType<typeof twoApps>>;
  let web: TestClient;
  let n = 0;
  const a = (): TestApp => apps.a;
  const b = (): TestApp => apps.b;

  beforeAll(async () => {
    apps = await twoApps({ LOGIN_IP_MAX_FAILURES: '1000' });
    web = await createWebClient(a(), { name: 'Web', firstParty: true });
  });
  afterAll(async () => {
    await apps?.close();
  });

  async function signedIn(): Promise<{ email: string; at: string }> {
    const email = `warm${++n}@example.com`;
    await createUser(a(), email);
    const tokens = await codeFlowTokens(new Browser(a()), web, { scope: 'openid email profile offline_access', prompt: 'consent' }, { email });
    const at = tokens.access_token as string;
    expect(at.split('.')).toHaveLength(1); // opaque
    return { email, at };
  }

  const active = async (t: TestApp, at: string) =>
    (await t.request.post('/token/introspection').type('form').set('Authorization', basic(web.id, web.secret!)).send({ token: at, token_type_hint: 'access_token' })).body
      .active === true;
  const userinfoOk = async (t: TestApp, at: string) => (await t.request.get('/me').set('Authorization', `Bearer ${at}`)).status === 200;

  /** both doors open on B, many times over (the test can fail) */
  async function warmOnB(at: string): Promise<void> {
    for (let i = 0; i < 5; i++) {
      expect(await active(b(), at)).toBe(true);
      expect(await userinfoOk(b(), at)).toBe(true);
    }
  }

  async function expectShutOnB(at: string): Promise<void> {
    const deadline = Date.now() + 1_000;
    let open = [(await active(b(), at)) && 'introspection', (await userinfoOk(b(), at)) && 'userinfo'].filter(Boolean);
    while (open.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      open = [(await active(b(), at)) && 'introspection', (await userinfoOk(b(), at)) && 'userinfo'].filter(Boolean);
    }
    expect(open, 'doors still open on instance B after one second').toEqual([]);
  }

  it('the token revoked (RFC 7009) on A', async () => {
    const { at } = await signedIn();
    await warmOnB(at);
    const res = await a().request.post('/token/revocation').type('form').set('Authorization', basic(web.id, web.secret!)).send({ token: at, token_type_hint: 'access_token' });
    expect(res.status).toBe(200);
    await expectShutOnB(at);
  });

  it('the person disabled on A', async () => {
    const { email, at } = await signedIn();
    await warmOnB(at);
    const r = await cli(apps.database.url, ['users', 'disable', email]);
    expect(r.code, r.stderr).toBe(0);
    await expectShutOnB(at);
  });

  it('the person’s sessions ended', async () => {
    const { email, at } = await signedIn();
    await warmOnB(at);
    const r = await cli(apps.database.url, ['users', 'revoke-sessions', email]);
    expect(r.code, r.stderr).toBe(0);
    await expectShutOnB(at);
  });
});
