// Outgoing requests that oidc-provider makes for Gatehouse (back-channel
// logout, a client's jwks_uri, …) never reach loopback, private, link-local
// or other non-public addresses unless OUTBOUND_ALLOWLIST names them. The
// check is on the address actually connected to (after DNS), so a name that
// resolves to loopback is refused like the literal. A refused target is
// logged without secrets and breaks nothing else.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createResource } from '../../src/resources/store.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, codeFlowTokens, createUser, createWebClient, page, redirect, type TestClient } from '../sso/flow.ts';

const ISSUER = 'http://localhost:3000';
const AFTER_LOGOUT = 'https://app.example.com/logged-out';

/** A back-channel logout receiver on 127.0.0.1 that records what reaches it. */
async function receiver(): Promise<{ server: Server; port: number; received: string[] }> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push(body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, received };
}

/** Log lines (parsed JSON) written by the app under test. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[]; raw: () => string } {
  let text = '';
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8');
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('info', sink), lines, raw: () => text };
}

/** Signs in on a fresh browser and logs out through /session/end (back-channel logout runs then). */
async function signInAndLogOut(t: TestApp, client: TestClient): Promise<void> {
  const b = new Browser(t);
  const tokens = await codeFlowTokens(b, client, { scope: 'openid' }, { email: 'alice@example.com' });
  const q = new URLSearchParams({ id_token_hint: tokens.id_token as string, post_logout_redirect_uri: AFTER_LOGOUT });
  const confirm = page(await b.get(`/session/end?${q}`));
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
  const action = /<form id="op\.logoutForm" method="post" action="([^"]+)"/.exec(confirm.html)![1]!;
  const back = redirect(await b.post(action, { xsrf, logout: 'yes' }));
  expect(`${back.origin}${back.pathname}`).toBe(AFTER_LOGOUT);
}

/** Waits (bounded) for back-channel deliveries, which run after the logout answer. */
async function settle(check: () => boolean, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return check();
}

describe('outbound guard: nothing allow-listed', () => {
  let t: TestApp;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let log: ReturnType<typeof capturingLogger>;
  beforeAll(async () => {
    rx = await receiver();
    log = capturingLogger();
    // an empty value is unset: no exceptions at all
    t = await createTestApp({ env: { ISSUER, OUTBOUND_ALLOWLIST: '' }, logger: log.logger });
    await createUser(t, 'alice@example.com');
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => rx?.server.close(r));
  });

  it.each([
    ['a loopback IP literal', (port: number) => `http://127.0.0.1:${port}/backchannel`],
    ['a name that resolves to loopback', (port: number) => `http://localhost:${port}/backchannel`],
  ])('back-channel logout to %s is refused and logged; the logout itself completes', async (_what, uri) => {
    const client = await createWebClient(t, { firstParty: true, postLogoutRedirectUris: [AFTER_LOGOUT], backchannelLogoutUri: uri(rx.port) });
    const before = log.lines.length;
    await signInAndLogOut(t, client);
    expect(await settle(() => log.lines.slice(before).some((l) => l.msg === 'outgoing request refused'))).toBe(true);
    expect(rx.received).toEqual([]);
    const refused = log.lines.slice(before).find((l) => l.msg === 'outgoing request refused')!;
    expect(refused).toMatchObject({ level: 40, host: new URL(uri(rx.port)).hostname });
    expect(String(refused.address)).toMatch(/^(127\.0\.0\.1|::1)$/);
    // no logout token, no path or query in the logs
    expect(log.raw()).not.toMatch(/logout_token|eyJ|\/backchannel/);
    // the server goes on serving
    expect((await t.request.get('/.well-known/openid-configuration')).status).toBe(200);
  });

  it('a client jwks_uri on a private address is never fetched: invalid_client', async () => {
    let connections = 0;
    const trap = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    try {
      const port = (trap.address() as AddressInfo).port;
      const orders = `https://orders-${randomUUID()}.example.com`;
      await createResource(t.gatehouse.db.prisma, { identifier: orders, scopes: ['orders:read'] });
      const id = `jwks-${randomUUID()}`;
      await createClient(t.gatehouse.db.prisma, {
        id,
        name: id,
        grants: ['client_credentials'],
        resources: [orders],
        scopes: ['orders:read'],
        authMethod: 'private_key_jwt',
        jwksUri: `https://127.0.0.1:${port}/jwks`,
      });
      const { privateKey } = await generateKeyPair('ES256');
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ iss: id, sub: id, aud: `${ISSUER}/token`, jti: randomUUID(), iat: now, exp: now + 60 })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .sign(privateKey);
      const res = await t.request.post('/token').type('form').send({
        grant_type: 'client_credentials',
        resource: orders,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(connections).toBe(0);
      expect(log.lines.some((l) => l.msg === 'outgoing request refused' && l.host === '127.0.0.1')).toBe(true);
    } finally {
      await new Promise((r) => trap.close(r));
    }
  });
});

describe('outbound guard: allow-listed targets are reached', () => {
  let rx: Awaited<ReturnType<typeof receiver>>;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    rx = await receiver();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await new Promise((r) => rx?.server.close(r));
  });

  it.each([
    ['a CIDR', '127.0.0.1/32', (port: number) => `http://127.0.0.1:${port}/backchannel`],
    ['a host name', 'localhost', (port: number) => `http://localhost:${port}/backchannel`],
  ])('allow-listed by %s', async (_what, allow, uri) => {
    const t = await createTestApp({ env: { ISSUER, OUTBOUND_ALLOWLIST: allow } });
    apps.push(t);
    await createUser(t, 'alice@example.com');
    const client = await createWebClient(t, { firstParty: true, postLogoutRedirectUris: [AFTER_LOGOUT], backchannelLogoutUri: uri(rx.port) });
    rx.received.length = 0;
    await signInAndLogOut(t, client);
    expect(await settle(() => rx.received.length === 1)).toBe(true);
    expect(new URLSearchParams(rx.received[0]!).get('logout_token')).toMatch(/^eyJ/);
  });

  it('a CIDR that does not cover the target does not help', async () => {
    const log = capturingLogger();
    const t = await createTestApp({ env: { ISSUER, OUTBOUND_ALLOWLIST: '10.0.0.0/8,backchannel.internal' }, logger: log.logger });
    apps.push(t);
    await createUser(t, 'alice@example.com');
    const client = await createWebClient(t, {
      firstParty: true,
      postLogoutRedirectUris: [AFTER_LOGOUT],
      backchannelLogoutUri: `http://127.0.0.1:${rx.port}/backchannel`,
    });
    rx.received.length = 0;
    await signInAndLogOut(t, client);
    expect(await settle(() => log.lines.some((l) => l.msg === 'outgoing request refused'))).toBe(true);
    expect(rx.received).toEqual([]);
  });
});
