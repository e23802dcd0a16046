// TRUST_PROXY through the real app: which X-Forwarded-For entry becomes the
// client address (login throttling, audit, oidc-provider's ctx.ip). An
// attacker controls every entry left of what the trusted proxies appended; a
// forged entry must never become a throttle key or an audit address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, codeFlowTokens, createUser, createWebClient, page, pkce, submitLogin, PASSWORD, type TestClient } from '../sso/flow.ts';

/** The socket address supertest connects from, as Gatehouse reports it (IPv4-mapped IPv6 normalised). */
const SOCKET = '127.0.0.1';

/** The same app, every request carrying `X-Forwarded-For: xff()`: what a browser behind proxies sends. */
function behindProxy(t: TestApp, xff: () => string): TestApp {
  const request = {
    get: (path: string) => t.request.get(path).set('X-Forwarded-For', xff()),
    post: (path: string) => t.request.post(path).set('X-Forwarded-For', xff()),
  };
  return { ...t, request: request as unknown as TestApp['request'] };
}

/** One login attempt through the login form, with `xff` on every request; true when it signed in. */
async function attempt(t: TestApp, client: TestClient, email: string, password: string, xff: string): Promise<boolean> {
  const b = new Browser(behindProxy(t, () => xff));
  const { challenge } = pkce();
  const p = page(await authorize(b, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256' }));
  const step = await submitLogin(b, p, email, password);
  return step.kind === 'redirect' && step.location.searchParams.has('code');
}

/** Audit rows are written after the response: waits (bounded) until `n` exist. */
async function auditIps(t: TestApp, action: string, n: number): Promise<(string | null)[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { items } = await listAuditEvents(t.gatehouse.db.prisma, { action, limit: 200 });
    if (items.length >= n || Date.now() > deadline) return items.map((e) => e.ip);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ipThrottleKeys(t: TestApp): Promise<string[]> {
  const rows = await t.gatehouse.db.prisma.loginThrottle.findMany({ where: { key: { startsWith: 'ip:' } }, select: { key: true } });
  return rows.map((r) => r.key).sort();
}

/** Clears what earlier attempts left (throttles, audit) so each case reads only its own. */
async function reset(t: TestApp): Promise<void> {
  await t.gatehouse.db.prisma.loginThrottle.deleteMany({});
  await t.gatehouse.db.prisma.auditEvent.deleteMany({});
}

/** The client address one failed login is recorded under, given the X-Forwarded-For it arrived with. */
async function addressFor(t: TestApp, client: TestClient, xff: string): Promise<string | null> {
  await reset(t);
  expect(await attempt(t, client, 'nobody@example.com', 'wrong password', xff)).toBe(false);
  const ips = await auditIps(t, 'login.failure', 1);
  expect(ips).toHaveLength(1);
  return ips[0]!;
}

describe('TRUST_PROXY=1 (one proxy in front)', () => {
  let t: TestApp;
  let client: TestClient;
  beforeAll(async () => {
    t = await createTestApp({ env: { TRUST_PROXY: '1', LOGIN_IP_MAX_FAILURES: '3', LOGIN_MAX_FAILURES: '100' } });
    await createUser(t, 'alice@example.com');
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('password spraying with a forged X-Forwarded-For on every attempt is throttled by the address the proxy saw', async () => {
    await reset(t);
    const attacker = '198.51.100.23'; // what the proxy appends: the attacker's real address
    const forged = ['10.1.2.3', '203.0.113.77', 'not-an-address', '::1', "'; DROP TABLE x; --"];
    for (const [i, f] of forged.entries()) {
      expect(await attempt(t, client, `victim${i}@example.com`, 'Summer2024!', `${f}, ${attacker}`)).toBe(false);
    }
    // the address is locked after 3 failures: even the right password is refused now
    expect(await attempt(t, client, 'alice@example.com', PASSWORD, `192.0.2.200, ${attacker}`)).toBe(false);
    expect(await ipThrottleKeys(t)).toEqual([`ip:${attacker}`]);
    // 3 failures, then every attempt (the sprays left and alice's) refused as locked: all under the real address
    const failed = await auditIps(t, 'login.failure', 3);
    const locked = await auditIps(t, 'login.locked', forged.length - 3 + 1);
    expect(failed).toEqual([attacker, attacker, attacker]);
    expect(locked).toEqual(new Array(forged.length - 3 + 1).fill(attacker));
    const recorded = JSON.stringify(await t.gatehouse.db.prisma.auditEvent.findMany({ select: { ip: true, targetId: true, details: true } }));
    for (const f of forged.slice(0, 3)) expect(recorded).not.toContain(f);
    // another address behind the same proxy is not affected
    expect(await attempt(t, client, 'alice@example.com', PASSWORD, `${attacker}, 198.51.100.24`)).toBe(true);
  });

  it('takes the rightmost entry; an entry that is not an IP literal means the socket address', async () => {
    expect(await addressFor(t, client, '203.0.113.5')).toBe('203.0.113.5');
    expect(await addressFor(t, client, '1.1.1.1, 203.0.113.6')).toBe('203.0.113.6');
    expect(await addressFor(t, client, '[2001:db8::7]')).toBe('2001:db8::7');
    expect(await addressFor(t, client, '::ffff:203.0.113.8')).toBe('203.0.113.8');
    expect(await addressFor(t, client, '2001:DB8:0:0::9')).toBe('2001:db8::9');
    for (const junk of ['not-an-address', '203.0.113.5:443', '999.1.1.1', 'unknown', '', '203.0.113.5 x', '<script>']) {
      expect(await addressFor(t, client, `198.51.100.1, ${junk}`), junk).toBe(SOCKET);
    }
  });

  it('oidc-provider sees the same address (the logout audit event is written from inside it)', async () => {
    await reset(t);
    const b = new Browser(behindProxy(t, () => '10.0.0.1, 203.0.113.50'));
    const tokens = await codeFlowTokens(b, client, { scope: 'openid' }, { email: 'alice@example.com' });
    const q = new URLSearchParams({ id_token_hint: tokens.id_token as string });
    const confirm = page(await b.get(`/session/end?${q}`));
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
    const action = /<form id="op\.logoutForm" method="post" action="([^"]+)"/.exec(confirm.html)![1]!;
    await b.post(action, { xsrf, logout: 'yes' });
    expect(await auditIps(t, 'logout', 1)).toEqual(['203.0.113.50']);
    expect(await auditIps(t, 'login.success', 1)).toEqual(['203.0.113.50']);
  });
});

/** A fresh app with `env` and a first-party web client, for the file's describe block. */
function appWith(env: Record<string, string>): { t: TestApp; client: TestClient } {
  const ctx = {} as { t: TestApp; client: TestClient };
  beforeAll(async () => {
    ctx.t = await createTestApp({ env });
    ctx.client = await createWebClient(ctx.t, { firstParty: true });
  });
  afterAll(async () => {
    await ctx.t?.close();
  });
  return ctx;
}

/** [TRUST_PROXY, what it stands for, [X-Forwarded-For, the client address recorded]…] */
const VARIANTS: [string, string, [string, string][]][] = [
  [
    '2',
    'two proxies: the second entry from the right, the leftmost when fewer arrived',
    [
      ['6.6.6.6, 203.0.113.9, 10.0.0.2', '203.0.113.9'],
      ['203.0.113.10', '203.0.113.10'],
      ['forged, 10.0.0.2', SOCKET],
    ],
  ],
  [
    '127.0.0.0/8, 10.0.0.0/8,fd00::/8',
    'CIDRs: from the right past trusted proxies to the first untrusted address; all trusted: the leftmost; junk on the walk: the socket',
    [
      ['6.6.6.6, 203.0.113.11, 10.9.9.9, fd00::1', '203.0.113.11'],
      ['203.0.113.12', '203.0.113.12'],
      ['[2001:db8::5], fd00::1', '2001:db8::5'],
      ['10.1.1.1, 10.2.2.2', '10.1.1.1'],
      ['203.0.113.13, garbage, 10.1.1.1', SOCKET],
    ],
  ],
  [
    '10.0.0.0/8',
    'CIDRs that do not include the socket peer: the header is ignored',
    [
      ['203.0.113.14', SOCKET],
      ['203.0.113.14, 10.0.0.1', SOCKET],
    ],
  ],
];

for (const [trust, meaning, cases] of VARIANTS) {
  describe(`TRUST_PROXY=${trust} (${meaning})`, () => {
    const app = appWith({ TRUST_PROXY: trust });
    it.each(cases)('X-Forwarded-For %j is recorded as %s', async (xff, expected) => {
      expect(await addressFor(app.t, app.client, xff)).toBe(expected);
    });
  });
}

describe('TRUST_PROXY unset', () => {
  const app = appWith({});

  it('believes no header: the socket address', async () => {
    expect(await addressFor(app.t, app.client, '203.0.113.15')).toBe(SOCKET);
  });

  it('a direct request is recorded under the socket address, IPv4-mapped form normalised', async () => {
    await reset(app.t);
    const b = new Browser(app.t);
    const { challenge } = pkce();
    const p = page(await authorize(b, { client_id: app.client.id, code_challenge: challenge, code_challenge_method: 'S256' }));
    expect((await submitLogin(b, p, 'nobody@example.com', 'wrong password')).kind).toBe('page');
    expect(await auditIps(app.t, 'login.failure', 1)).toEqual([SOCKET]);
  });
});
