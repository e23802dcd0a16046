// The device authorization grant (RFC 8628) through the real app: the device
// asks for a code, a person enters it at /device (any case, with or without
// the dash), sees which client asks, signs in, and the device's polls get
// every answer the RFC names: authorization_pending, slow_down,
// expired_token, access_denied, then tokens exactly once (10 concurrent
// polls after approval: one wins). Wrong codes are throttled per address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_CODE_MAX_FAILURES, DEVICE_MESSAGES } from '../../src/interactions/device.ts';
import { createClient } from '../../src/clients/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, createUser, isConsentPage, isLoginPage, page, PASSWORD, submitConsent, submitLogin, type Page } from '../sso/flow.ts';

const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';

interface DeviceAuth {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

function xsrfOf(html: string): string {
  const m = /name="xsrf" value="([^"]*)"/.exec(html);
  if (!m) throw new Error(`no xsrf input on the page: ${html.slice(0, 400)}`);
  return m[1]!;
}

describe('device authorization grant', () => {
  let t: TestApp;
  let clientId: string;
  const email = 'viewer@example.com';

  beforeAll(async () => {
    t = await createTestApp();
    clientId = (await createClient(t.gatehouse.db.prisma, { id: 'living-room-tv', name: 'Living room TV', public: true, grants: [DEVICE, 'refresh_token'] })).client.id;
    await createUser(t, email);
  });
  afterAll(async () => {
    await t?.close();
  });

  const start = async (scope = 'openid offline_access'): Promise<DeviceAuth> => {
    const res = await t.request.post('/device/auth').type('form').send({ client_id: clientId, scope });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as DeviceAuth;
  };
  const poll = (deviceCode: string) => t.request.post('/token').type('form').send({ client_id: clientId, grant_type: DEVICE, device_code: deviceCode });
  /** Lets the poll of `code` look older than its interval (instead of sleeping 5 s). */
  const agePoll = async () => {
    await t.gatehouse.db.pool.query(`UPDATE oidc_payloads SET payload = jsonb_set(payload, '{at}', to_jsonb((payload->>'at')::float8 - 60)) WHERE model = 'DevicePoll'`);
  };

  /** The person's side: /device, the code as typed, the confirmation, sign-in, consent. Returns the last page. */
  async function approve(browser: Browser, typed: string, opts: { consent?: 'approve' | 'deny'; signIn?: boolean } = {}): Promise<{ confirm: Page; last: Page }> {
    const entry = page(await browser.get('/device'));
    expect(entry.status).toBe(200);
    expect(entry.html).toContain('Connect a device');
    const confirm = page(await browser.post('/device', { xsrf: xsrfOf(entry.html), user_code: typed }));
    expect(confirm.html).toContain('<strong>Living room TV</strong> wants to sign in');
    let step = await browser.post('/device', { xsrf: xsrfOf(confirm.html), user_code: typed, confirm: 'yes' });
    for (let i = 0; i < 4; i++) {
      const p = page(step);
      if (isLoginPage(p) && opts.signIn !== false) step = await submitLogin(browser, p, email, PASSWORD);
      else if (isConsentPage(p)) step = await submitConsent(browser, p, opts.consent ?? 'approve');
      else break;
    }
    return { confirm, last: page(step) };
  }

  it('discovery lists the endpoint and the grant; the response carries an interval', async () => {
    const d = (await t.request.get('/.well-known/openid-configuration').expect(200)).body as Record<string, unknown>;
    expect(d.device_authorization_endpoint).toBe(`${t.config.issuer}/device/auth`);
    expect(d.grant_types_supported).toContain(DEVICE);
    const auth = await start();
    expect(auth.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(auth.verification_uri).toBe(`${t.config.issuer}/device`);
    expect(auth.interval).toBe(5);
    expect(auth.expires_in).toBeGreaterThan(0);
  });

  it('pending, slow_down when polled too fast, then tokens once the person approves (code typed in lower case without the dash)', async () => {
    const auth = await start();
    const first = await poll(auth.device_code);
    expect(first.status).toBe(400);
    expect(first.body.error).toBe('authorization_pending');
    const fast = await poll(auth.device_code);
    expect(fast.status).toBe(400);
    expect(fast.body.error).toBe('slow_down');
    await agePoll();
    // the interval grew by 5 s: a poll 6 s later would still be too soon; 60 s is not
    expect((await poll(auth.device_code)).body.error).toBe('authorization_pending');

    const browser = new Browser(t);
    const { last } = await approve(browser, auth.user_code.replace('-', '').toLowerCase());
    expect(last.status).toBe(200);
    expect(last.html).toContain('Living room TV is connected');
    expect(last.html).toContain('You are signed in on <strong>Living room TV</strong>');

    const done = await poll(auth.device_code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.access_token).toEqual(expect.any(String));
    expect(done.body.id_token).toEqual(expect.any(String));
    expect(done.body.refresh_token).toEqual(expect.any(String));
    const again = await poll(auth.device_code);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
  });

  it('10 concurrent polls after approval: exactly one gets tokens', async () => {
    const auth = await start('openid');
    await approve(new Browser(t), auth.user_code);
    const answers = await Promise.all(Array.from({ length: 10 }, () => poll(auth.device_code)));
    const ok = answers.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    for (const r of answers.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_grant');
    }
    // the loser's second use revoked the grant: the winner's token stands nowhere
    const intro = await t.request.get('/me').set('Authorization', `Bearer ${String(ok[0]!.body.access_token)}`);
    expect(intro.status).toBe(401);
  });

  it('access_denied when the person cancels on the confirmation page or denies consent', async () => {
    const a = await start();
    const browser = new Browser(t);
    const entry = page(await browser.get('/device'));
    const confirm = page(await browser.post('/device', { xsrf: xsrfOf(entry.html), user_code: a.user_code }));
    const cancelled = page(await browser.post('/device', { xsrf: xsrfOf(confirm.html), user_code: a.user_code, abort: 'yes' }));
    expect(cancelled.html).toContain(DEVICE_MESSAGES.cancelled);
    const r1 = await poll(a.device_code);
    expect(r1.status).toBe(400);
    expect(r1.body.error).toBe('access_denied');

    const b = await start();
    const { last } = await approve(new Browser(t), b.user_code, { consent: 'deny' });
    expect(last.html).toContain(DEVICE_MESSAGES.cancelled);
    const r2 = await poll(b.device_code);
    expect(r2.body.error).toBe('access_denied');
  });

  it('expired_token once the code has expired; the page says so', async () => {
    const auth = await start();
    await t.gatehouse.db.pool.query(
      `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{exp}', to_jsonb(extract(epoch from now())::int - 1)) WHERE model = 'DeviceCode' AND user_code = $1`,
      [auth.user_code.replace('-', '')],
    );
    const r = await poll(auth.device_code);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('expired_token');
    const browser = new Browser(t);
    const entry = page(await browser.get('/device'));
    const p = page(await browser.post('/device', { xsrf: xsrfOf(entry.html), user_code: auth.user_code }));
    expect(p.status).toBe(400);
    expect(p.html).toContain(DEVICE_MESSAGES.expired);
  });

  it('bad input gets OAuth error JSON, never a 5xx', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ client_id: 'nope' }, 'invalid_client'],
      [{}, 'invalid_client'],
      [{ client_id: clientId, scope: 'openid \u0000' }, ''],
      [{ client_id: clientId, scope: 'openid', resource: 'not a uri' }, 'invalid_target'],
    ];
    for (const [form, error] of cases) {
      const res = await t.request.post('/device/auth').type('form').send(form);
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.error).toEqual(error ? error : expect.any(String));
    }
    for (const form of [{ device_code: '' }, { device_code: 'x'.repeat(5000) }, { device_code: '\u0000' }, {}]) {
      const res = await t.request.post('/token').type('form').send({ client_id: clientId, grant_type: DEVICE, ...form });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toMatch(/^invalid_(request|grant)$/);
    }
    // a client without the grant may not start the flow
    const web = await createClient(t.gatehouse.db.prisma, { name: 'web', public: true, grants: ['authorization_code'], redirectUris: ['https://app.example.com/cb'] });
    const res = await t.request.post('/device/auth').type('form').send({ client_id: web.client.id, scope: 'openid' });
    expect(res.status).toBe(400);
    expect(res.body.error, JSON.stringify(res.body)).toBe('unauthorized_client');
    // the page: no xsrf, junk, very long code
    const browser = new Browser(t);
    for (const form of [{ user_code: 'BCDF-GHJK' }, { xsrf: 'x', user_code: 'x'.repeat(10_000) }] as Record<string, string>[]) {
      const r = await browser.request('POST', '/device', form);
      expect(r.status, `${JSON.stringify(form).slice(0, 80)} ${r.text.slice(-900)}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${JSON.stringify(form).slice(0, 80)} ${r.text.slice(-900)}`).toBeLessThan(500);
      expect(r.headers['content-type']).toMatch(/text\/html/);
    }
  });

  it(`wrong codes lock the address after ${DEVICE_CODE_MAX_FAILURES}; a right code is refused too while locked`, async () => {
    await t.gatehouse.db.pool.query(`DELETE FROM login_throttles WHERE key LIKE 'device-code:%'`); // the other tests' codes
    const auth = await start();
    const browser = new Browser(t);
    let p = page(await browser.get('/device'));
    // codes that match no device (the alphabet has no vowels, so these never exist)
    for (let i = 0; i < DEVICE_CODE_MAX_FAILURES; i++) {
      p = page(await browser.post('/device', { xsrf: xsrfOf(p.html), user_code: `AAAA-AA${String(i).padStart(2, '0')}` }));
      expect(p.status).toBe(400);
      expect(p.html).toContain(DEVICE_MESSAGES.wrong);
    }
    const xsrf = xsrfOf(p.html);
    const locked = await browser.request('POST', '/device', { xsrf, user_code: auth.user_code });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(locked.text).toContain('Too many codes tried');
    // the right code was not even looked up: the device still waits
    expect((await poll(auth.device_code)).body.error).toBe('authorization_pending');
  });
});
