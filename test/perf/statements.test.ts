// Statements per operation on the hot paths, counted through the instance's
// pg pool (issue 18): refresh rotation at most 3 statements in one
// transaction (was 6 statements); opaque introspection (was 5) and userinfo
// (was 3) one read each, the client and account coming from the caches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { recordStatements, type StatementLog } from '../helpers/statements.ts';
import { Browser, basic, codeFlowTokens, refresh, type TestClient } from '../sso/flow.ts';
import { createUser, createWebClient } from '../security/fixtures.ts';

describe('statements per operation', () => {
  let t: TestApp;
  let web: TestClient;
  let log: StatementLog;
  let n = 0;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    web = await createWebClient(t, { name: 'Web', firstParty: true });
    log = recordStatements(t.gatehouse.db.pool);
  });
  afterAll(async () => {
    log?.stop();
    await t?.close();
  });

  async function signedIn(scope: string): Promise<Record<string, unknown>> {
    const email = `perf${++n}@example.com`;
    await createUser(t, email);
    return codeFlowTokens(new Browser(t), web, { scope, prompt: 'consent' }, { email });
  }

  /** waits until the delivery record of the last rotation (written after the answer) has been sent */
  const settle = () => new Promise((r) => setTimeout(r, 150));

  it('refresh rotation: at most 3 statements, one transaction', async () => {
    let rt = (await signedIn('openid email offline_access')).refresh_token as string;
    // first rotation warms the caches (client, account)
    rt = (await refresh(t, web, rt)).body.refresh_token as string;
    await settle();
    for (let i = 0; i < 3; i++) {
      const res = await log.during(async () => {
        const r = await refresh(t, web, rt);
        await settle();
        return r;
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.refresh_token).not.toBe(rt);
      rt = res.body.refresh_token as string;
      expect(log.data.length, log.statements.join('\n')).toBeLessThanOrEqual(3);
      expect(log.transactions, log.statements.join('\n')).toBeLessThanOrEqual(1);
    }
  });

  it('opaque introspection and userinfo of a warm token: one statement each', async () => {
    const tokens = await signedIn('openid email profile');
    const at = tokens.access_token as string;
    const introspect = () => t.request.post('/token/introspection').type('form').set('Authorization', basic(web.id, web.secret!)).send({ token: at, token_type_hint: 'access_token' });
    expect((await introspect()).body.active).toBe(true);
    const res = await log.during(introspect);
    expect(res.body.active).toBe(true);
    // the token, its grant and session, and the same value as client credentials: one read
    expect(log.statements.length, log.statements.join('\n')).toBe(1);
    const me = () => t.request.get('/me').set('Authorization', `Bearer ${at}`);
    expect((await me()).status).toBe(200);
    const res2 = await log.during(me);
    expect(res2.status).toBe(200);
    expect(log.statements.length, log.statements.join('\n')).toBe(1);
  });
});
