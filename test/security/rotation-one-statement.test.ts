// A refresh rotation is written by one statement (issue 18): the old token is
// marked used and its successor and the new access token stored together, or
// nothing is. These tests pin what that must not change: the token is single
// use whatever the access token's format, a lost race is still reuse, and a
// failed rotation leaves nothing half done.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { recordStatements, type StatementLog } from '../helpers/statements.ts';
import { Browser, codeFlowTokens, refresh, token, type TestClient } from '../sso/flow.ts';
import { createApi, createUser, createWebClient } from './fixtures.ts';

const ORDERS = 'https://orders.example.com';

describe('refresh rotation in one statement', () => {
  let t: TestApp;
  let web: TestClient;
  let log: StatementLog;
  let n = 0;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    await createApi(t, { identifier: ORDERS, scopes: ['orders:read'] });
    web = await createWebClient(t, { name: 'Web', firstParty: true, resources: [ORDERS], scopes: ['openid', 'email', 'offline_access', 'orders:read'] });
    log = recordStatements(t.gatehouse.db.pool);
  });
  afterAll(async () => {
    log?.stop();
    await t?.close();
  });

  async function signedIn(params: Record<string, string>): Promise<Record<string, unknown>> {
    const email = `rot${++n}@example.com`;
    await createUser(t, email);
    return codeFlowTokens(new Browser(t), web, { prompt: 'consent', ...params }, { email });
  }

  async function rowOf(value: string): Promise<{ consumed: boolean } | undefined> {
    const c = new pg.Client({ connectionString: t.database.url });
    await c.connect();
    try {
      const r = await c.query<{ consumed: boolean }>(`SELECT consumed_at IS NOT NULL AS consumed FROM oidc_payloads WHERE model = 'RefreshToken' AND id = $1`, [value]);
      return r.rows[0];
    } finally {
      await c.end();
    }
  }

  it('with a JWT access token (resource): the old token is used, the successor works, reusing the old one revokes the chain', async () => {
    const first = await signedIn({ scope: 'openid email offline_access orders:read', resource: ORDERS });
    const rt = first.refresh_token as string;
    const rotated = await log.during(() => refresh(t, web, rt));
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect((rotated.body.access_token as string).split('.')).toHaveLength(3); // a JWT: not stored by the adapter
    expect(log.transactions).toBeLessThanOrEqual(1);
    expect((await rowOf(rt))?.consumed).toBe(true);
    const next = rotated.body.refresh_token as string;
    expect(await rowOf(next)).toEqual({ consumed: false });
    // reuse of the old one: refused, and the successor dies with the grant
    const reuse = await refresh(t, web, rt);
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    expect((await refresh(t, web, next)).body.error).toBe('invalid_grant');
  });

  it('with an opaque access token: consume and both new tokens in one statement', async () => {
    const first = await signedIn({ scope: 'openid email offline_access' });
    const rt = first.refresh_token as string;
    const rotated = await log.during(() => refresh(t, web, rt));
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const writes = log.data.filter((s) => /^(WITH|INSERT|UPDATE|DELETE)/i.test(s));
    // the statement that marks the old token used also stores the successor and the access token
    expect(writes[0]).toMatch(/^WITH consumed AS \( UPDATE oidc_payloads SET consumed_at/);
    expect(writes.filter((s) => /^INSERT/i.test(s))).toHaveLength(0);
    expect((await rowOf(rt))?.consumed).toBe(true);
    expect(await rowOf(rotated.body.refresh_token as string)).toEqual({ consumed: false });
  });

  it('a rotation refused after the token was checked (a resource the token does not cover) writes nothing: the token stays usable', async () => {
    const first = await signedIn({ scope: 'openid email offline_access' });
    const rt = first.refresh_token as string;
    const refused = await token(t, web, { grant_type: 'refresh_token', refresh_token: rt, resource: ORDERS });
    expect(refused.status).toBe(400);
    expect(await rowOf(rt)).toEqual({ consumed: false });
    const ok = await refresh(t, web, rt);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  });
});
