// RP-initiated logout (/session/end) and back-channel logout.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { listAuditEvents } from '../../src/audit/audit.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, codeFlowTokens, createUser, createWebClient, formAction, page, pkce, redirect, type TestClient } from './flow.ts';

const ISSUER = 'http://localhost:3000';
const AFTER_LOGOUT = 'https://app.example.com/logged-out';

interface Received {
  path: string;
  contentType: string | undefined;
  body: string;
}

describe('logout', () => {
  let t: TestApp;
  let alice: { id: string };
  let web: TestClient;
  let other: TestClient;
  let receiver: Server;
  const received: Received[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;

    t = await createTestApp({ env: { ISSUER, LOGIN_IP_MAX_FAILURES: '1000' } });
    alice = await createUser(t, 'alice@example.com');
    web = await createWebClient(t, {
      name: 'Web',
      firstParty: true,
      postLogoutRedirectUris: [AFTER_LOGOUT],
      backchannelLogoutUri: `http://127.0.0.1:${port}/backchannel-logout`,
    });
    other = await createWebClient(t, { name: 'Other', firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => receiver?.close(r));
  });

  async function signedIn(b: Browser, client: TestClient): Promise<boolean> {
    const { challenge } = pkce();
    const r = redirect(await authorize(b, { client_id: client.id, prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    return r.searchParams.has('code');
  }

  it('RP-initiated: confirmation page, then back to the registered post_logout_redirect_uri with state; back-channel logout delivered', async () => {
    const b = new Browser(t);
    const tokens = await codeFlowTokens(b, web, { scope: 'openid' }, { email: 'alice@example.com' });
    await codeFlowTokens(b, other, { scope: 'openid' });
    const idToken = tokens.id_token as string;
    const jwks = createLocalJWKSet((await t.request.get('/jwks')).body);
    const { payload: id } = await jwtVerify(idToken, jwks, { issuer: ISSUER, audience: web.id });
    expect(typeof id.sid).toBe('string');

    const q = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: AFTER_LOGOUT, state: 'bye-123' });
    const confirm = page(await b.get(`/session/end?${q}`));
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Gatehouse');
    expect(confirm.html).toContain('Sign out?');
    expect(confirm.html).toMatch(/<form id="op\.logoutForm" method="post" action="[^"]*\/session\/end\/confirm">/);
    expect(confirm.html).toMatch(/name="xsrf" value="[^"]+"/);
    expect(confirm.html).toContain('form="op.logoutForm" name="logout" value="yes"');
    const csp = String(confirm.res.headers['content-security-policy']);
    expect(csp).not.toContain('unsafe-inline');
    expect(confirm.html).not.toMatch(/<script|<style|\sstyle=/i);

    // a forged confirmation (wrong xsrf) changes nothing
    const forged = await b.request('POST', formAction(confirm.html, '/session/end/confirm'), { xsrf: 'forged', logout: 'yes' });
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('Gatehouse');
    expect(await signedIn(b, other)).toBe(true);

    const again = page(await b.get(`/session/end?${q}`));
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(again.html)![1]!;
    received.length = 0;
    const back = redirect(await b.post(formAction(again.html, '/session/end/confirm'), { xsrf, logout: 'yes' }));
    expect(`${back.origin}${back.pathname}`).toBe(AFTER_LOGOUT);
    expect(back.searchParams.get('state')).toBe('bye-123');

    // signed out of every client on this browser
    expect(await signedIn(b, web)).toBe(false);
    expect(await signedIn(b, other)).toBe(false);

    // back-channel: one logout token to the client that registered a URI
    expect(received).toHaveLength(1);
    expect(received[0]!.path).toBe('/backchannel-logout');
    expect(received[0]!.contentType).toMatch(/application\/x-www-form-urlencoded/);
    const logoutToken = new URLSearchParams(received[0]!.body).get('logout_token')!;
    const { payload, protectedHeader } = await jwtVerify(logoutToken, jwks, { issuer: ISSUER, audience: web.id });
    expect(protectedHeader.typ).toBe('logout+jwt');
    expect(payload.sub).toBe(alice.id);
    expect(payload.sid).toBe(id.sid);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(typeof payload.jti).toBe('string');
    expect(payload.nonce).toBeUndefined();

    // the audit trail has the logout (written after the response: wait, bounded)
    const deadline = Date.now() + 5_000;
    let events = await listAuditEvents(t.gatehouse.db.prisma, { action: 'logout' });
    while (events.items.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      events = await listAuditEvents(t.gatehouse.db.prisma, { action: 'logout' });
    }
    expect(events.items[0]).toMatchObject({ actorType: 'user', actorId: alice.id, details: { client: web.id } });
  });

  it('an unregistered post_logout_redirect_uri is refused with an error page', async () => {
    const b = new Browser(t);
    const tokens = await codeFlowTokens(b, web, { scope: 'openid' }, { email: 'alice@example.com' });
    const q = new URLSearchParams({ id_token_hint: tokens.id_token as string, post_logout_redirect_uri: 'https://evil.example.com/', state: 's' });
    const p = page(await b.get(`/session/end?${q}`));
    expect(p.status).toBe(400);
    expect(p.html).toContain('post_logout_redirect_uri');
    expect(await signedIn(b, web)).toBe(true);
  });

  it('without a client: confirmation, then the signed-out page', async () => {
    const b = new Browser(t);
    await codeFlowTokens(b, other, { scope: 'openid' }, { email: 'alice@example.com' });
    const confirm = page(await b.get('/session/end'));
    expect(confirm.html).toContain('Sign out of Gatehouse on this device?');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)![1]!;
    const done = page(await b.post(formAction(confirm.html, '/session/end/confirm'), { xsrf, logout: 'yes' }));
    expect(done.status).toBe(200);
    expect(done.url).toMatch(/^\/session\/end\/success/);
    expect(done.html).toContain('You are signed out');
    expect(await signedIn(b, other)).toBe(false);
  });
});
