// Security: a failed login costs the same work whether the email belongs to an
// account or not, and whether that account (or email) has recent failures or
// old ones: the same number of database statements (and one argon2
// verification, real or dummy), so response times do not tell them apart.
// Timings themselves are measured by bench/login-timing.ts, never asserted
// in tests; this test counts the statements through the app's own query
// metric (gatehouse_db_query_duration_seconds).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountThrottleKey, lockStatus, unknownEmailThrottleKey } from '../../src/accounts/throttle.ts';
import { setDisabled } from '../../src/accounts/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, createUser, createWebClient, page, pkce, submitLogin, type Page, type TestClient } from '../sso/flow.ts';

describe('failed logins do the same work for every account state', () => {
  let t: TestApp;
  let client: TestClient;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_MAX_FAILURES: '10', LOGIN_IP_MAX_FAILURES: '100000' } });
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function queriesSoFar(): Promise<number> {
    const metric = t.gatehouse.metrics.registry.getSingleMetric('gatehouse_db_query_duration_seconds');
    const { values } = await metric!.get();
    return values.find((v) => (v as { metricName?: string }).metricName === 'gatehouse_db_query_duration_seconds_count')?.value ?? 0;
  }

  async function loginPage(b: Browser): Promise<Page> {
    const { challenge } = pkce();
    return page(await authorize(b, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256' }));
  }

  /** Statements one wrong-password submission runs (the login page is loaded before counting). */
  async function statementsOfFailure(email: string): Promise<number> {
    const b = new Browser(t);
    const p = await loginPage(b);
    const before = await queriesSoFar();
    const res = page(await submitLogin(b, p, email, 'a wrong password'));
    const after = await queriesSoFar();
    expect(res.status).toBe(400);
    expect(res.html).toContain('Email or password is incorrect');
    return after - before;
  }

  async function fail(email: string, times: number): Promise<void> {
    for (let i = 0; i < times; i++) await statementsOfFailure(email);
  }

  it('unknown email, known account, disabled account; first attempt, recent failures, old failures: the same statements', async () => {
    const known = await createUser(t, 'known@example.com');
    const recent = await createUser(t, 'recent@example.com');
    const old = await createUser(t, 'old@example.com');
    const disabled = await createUser(t, 'disabled@example.com');
    await setDisabled(t.gatehouse.db.prisma, disabled.id, true);
    await fail('recent@example.com', 2);
    await fail('someone-recent@example.com', 2);
    await fail('old@example.com', 2);
    // failures from two days ago: past the forget window, they start afresh
    await t.gatehouse.db.prisma.$executeRaw`UPDATE login_throttles SET updated_at = now() - interval '2 days' WHERE key = ${accountThrottleKey(old.id)}`;
    await statementsOfFailure('warm-up@example.com'); // the address key exists for every case below

    const counts = {
      unknownFirst: await statementsOfFailure('nobody@example.com'),
      knownFirst: await statementsOfFailure('known@example.com'),
      knownRecent: await statementsOfFailure('recent@example.com'),
      unknownRecent: await statementsOfFailure('someone-recent@example.com'),
      knownOld: await statementsOfFailure('old@example.com'),
      disabled: await statementsOfFailure('disabled@example.com'),
    };
    const expected = counts.unknownFirst;
    expect(expected).toBeGreaterThan(0);
    expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((k) => [k, expected])));

    // and each was counted as it should be
    expect((await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(known.id))).failures).toBe(1);
    expect((await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(recent.id))).failures).toBe(3);
    expect((await lockStatus(t.gatehouse.db.prisma, unknownEmailThrottleKey('someone-recent@example.com'))).failures).toBe(3);
    expect((await lockStatus(t.gatehouse.db.prisma, accountThrottleKey(old.id))).failures).toBe(1);
  });
});
