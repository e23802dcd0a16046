// The device flow across two Gatehouse instances on one database: the code is
// issued by one, approved through the other, polls alternate between them.
// slow_down is judged in the database (a fast poll at the other instance is
// still too fast), and of 10 polls racing after approval, 5 at each
// instance, exactly one gets tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { Browser, createUser, isConsentPage, isLoginPage, page, PASSWORD, submitConsent, submitLogin } from '../sso/flow.ts';

const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
const xsrfOf = (html: string) => /name="xsrf" value="([^"]*)"/.exec(html)![1]!;

describe('device flow on two instances', () => {
  let database: TestDatabase;
  let a: TestApp;
  let b: TestApp;
  const email = 'two@example.com';

  beforeAll(async () => {
    database = await createTestDatabase();
    a = await createTestApp({ database });
    b = await createTestApp({ database });
    await createClient(a.gatehouse.db.prisma, { id: 'tv', name: 'Kitchen TV', public: true, grants: [DEVICE] });
    await createUser(a, email);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  const poll = (t: TestApp, code: string) => t.request.post('/token').type('form').send({ client_id: 'tv', grant_type: DEVICE, device_code: code });

  it('issued by one, approved through the other; slow_down and single use hold across both', async () => {
    const started = await a.request.post('/device/auth').type('form').send({ client_id: 'tv', scope: 'openid' });
    expect(started.status).toBe(200);
    const { device_code: code, user_code: userCode } = started.body as { device_code: string; user_code: string };

    expect((await poll(a, code)).body.error).toBe('authorization_pending');
    expect((await poll(b, code)).body.error).toBe('slow_down');

    const browser = new Browser(b);
    const entry = page(await browser.get('/device'));
    const confirm = page(await browser.post('/device', { xsrf: xsrfOf(entry.html), user_code: userCode }));
    expect(confirm.html).toContain('Kitchen TV');
    let step = await browser.post('/device', { xsrf: xsrfOf(confirm.html), user_code: userCode, confirm: 'yes' });
    for (let i = 0; i < 4; i++) {
      const p = page(step);
      if (isLoginPage(p)) step = await submitLogin(browser, p, email, PASSWORD);
      else if (isConsentPage(p)) step = await submitConsent(browser, p, 'approve');
      else break;
    }
    expect(page(step).html).toContain('Kitchen TV is connected');

    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => poll(i % 2 === 0 ? a : b, code)));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of answers.filter((x) => x.status !== 200)) expect(r.body.error).toBe('invalid_grant');
  });
});
