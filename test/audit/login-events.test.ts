// Login outcomes reach the audit trail and the login metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, createUser, createWebClient, page, pkce, submitLogin, PASSWORD, type TestClient } from '../sso/flow.ts';

async function attempt(t: TestApp, client: TestClient, email: string, password: string): Promise<void> {
  const b = new Browser(t);
  const { challenge } = pkce();
  const p = page(await authorize(b, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256' }));
  await submitLogin(b, p, email, password);
}

/** Audit rows are written after the response; wait for them (bounded). */
async function events(t: TestApp, action: string, n: number) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { items } = await listAuditEvents(t.gatehouse.db.prisma, { action });
    if (items.length >= n || Date.now() > deadline) return items;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('login events', () => {
  let t: TestApp;
  let client: TestClient;
  let alice: { id: string };
  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_MAX_FAILURES: '2', LOGIN_IP_MAX_FAILURES: '1000' } });
    alice = await createUser(t, 'alice@example.com');
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('records success, failure and lockout without secrets, and counts them', async () => {
    await attempt(t, client, 'alice@example.com', PASSWORD);
    await attempt(t, client, 'nobody@example.com', 'wrong-password-1');
    await attempt(t, client, 'alice@example.com', 'wrong-password-2');
    await attempt(t, client, 'alice@example.com', 'wrong-password-3'); // second failure: locks
    await attempt(t, client, 'alice@example.com', PASSWORD); // refused while locked

    const success = await events(t, 'login.success', 1);
    expect(success[0]).toMatchObject({ actorType: 'user', actorId: alice.id, targetId: alice.id });
    const failures = await events(t, 'login.failure', 3);
    expect(failures.map((e) => e.actorId)).toEqual([alice.id, alice.id, null]);
    expect(failures[2]!.details).toMatchObject({ email: 'nobody@example.com' });
    const lockouts = await events(t, 'login.lockout', 1);
    expect(lockouts[0]).toMatchObject({ targetType: 'user', targetId: alice.id });
    expect((await events(t, 'login.locked', 1))[0]).toMatchObject({ actorId: alice.id });

    const raw = JSON.stringify(await t.gatehouse.db.prisma.$queryRaw`SELECT details FROM audit_events`);
    for (const secret of [PASSWORD, 'wrong-password-1', 'wrong-password-2', 'wrong-password-3']) expect(raw).not.toContain(secret);

    const metrics = (await t.request.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^gatehouse_logins_total\{result="success"\} 1$/m);
    expect(metrics).toMatch(/^gatehouse_logins_total\{result="failure"\} 3$/m);
    expect(metrics).toMatch(/^gatehouse_logins_total\{result="locked"\} 1$/m);
  });

  it('keeps a mistyped password out of the trail when it lands in the email field', async () => {
    await attempt(t, client, 'hunter2 my password', 'x'.repeat(10));
    const failures = await events(t, 'login.failure', 4);
    expect(JSON.stringify(failures)).not.toContain('hunter2');
  });
});
