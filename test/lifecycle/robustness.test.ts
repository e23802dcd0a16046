// Bad input on every new page and form gets a clear HTML answer, never a 5xx
// or a stack trace; and the secret of a link never reaches the access log.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueLink } from '../../src/accounts/links.ts';
import { createAccount } from '../../src/accounts/store.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { startSmtpServer, type TestSmtp } from '../helpers/smtp.ts';
import { Browser, csrfOf, textOf } from './helpers.ts';

let t: TestApp;
let smtp: TestSmtp;
const logLines: string[] = [];

beforeAll(async () => {
  smtp = await startSmtpServer();
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  t = await createTestApp({ env: { SMTP_URL: smtp.url, SIGNUP: 'open', LOG_LEVEL: 'info' }, logger: createLogger('info', stream) });
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});

const FORMS = ['/reset', '/signup', '/invite/enrol'];
const LINK_PAGES = ['/reset', '/invite', '/signup', '/verify-email'];

/** An answer people can read: HTML, not a 5xx, no stack trace. */
function expectClearPage(res: { status: number; text: string; headers: Record<string, string> }, where: string): void {
  expect(res.status, `${where}: ${res.text.slice(0, 200)}`).toBeLessThan(500);
  expect(res.status, where).toBeGreaterThanOrEqual(200);
  expect(res.headers['content-type'], where).toMatch(/text\/html/);
  expect(res.text, where).not.toMatch(/\bat .*\.ts:\d+|node_modules|Error:/);
  expect(textOf(res.text).length, where).toBeGreaterThan(20);
}

describe('bad input on the account pages', () => {
  it('every form: no body, wrong type, oversized, wrong CSRF, odd fields → a clear page', async () => {
    const b = new Browser(t);
    const page = await b.request('GET', '/reset');
    const csrf = csrfOf(page.text);
    const bodies: (string | Record<string, string>)[] = [
      '',
      'csrf=nope',
      `csrf=${csrf}`,
      `csrf=${csrf}&email[]=a@example.com&email[]=b@example.com`,
      `csrf=${csrf}&email[$gt]=x&name[a][b][c][d][e][f]=1`,
      `csrf=${csrf}&email=%00%01%02&name=%E2%80%AE&password=%FF`,
      `csrf=${csrf}&email=${encodeURIComponent('a'.repeat(5000))}&name=${'n'.repeat(5000)}&password=${'p'.repeat(5000)}`,
      `csrf=${csrf}&state=${'A'.repeat(3000)}&code=123456`,
      `csrf=${csrf}&state=v1.a.b.c&code=`,
      `csrf=${csrf}&password=${encodeURIComponent('pässwörd 🔑 long enough')}&confirm=x`,
    ];
    for (const path of FORMS) {
      for (const body of bodies) expectClearPage(await b.request('POST', path, body), `POST ${path} ${String(body).slice(0, 40)}`);
      const json = await t.request.post(path).set('Content-Type', 'application/json').send('{"email":"x"}');
      expectClearPage(json, `POST ${path} json`);
      expect(json.status).toBe(415);
      const big = await b.request('POST', path, `csrf=${csrf}&x=${'a'.repeat(40_000)}`);
      expect(big.status).toBe(413);
      expectClearPage(big, `POST ${path} big`);
      const broken = await t.request.post(path).set('Content-Type', 'application/x-www-form-urlencoded; charset=utf-7').send('a=%');
      expectClearPage(broken, `POST ${path} charset`);
    }
  });

  it('every link page: malformed, unknown, injected tokens → 404 or 410 pages with a way on', async () => {
    const b = new Browser(t);
    const form = await b.request('GET', '/reset');
    const csrf = csrfOf(form.text);
    const tokens = ['x', 'A'.repeat(43), 'A'.repeat(44), '%00', "'%20OR%201=1--", '..%2F..%2Fetc%2Fpasswd', '%E2%80%AE', encodeURIComponent('<script>')];
    for (const base of LINK_PAGES) {
      for (const token of tokens) {
        const get = await b.request('GET', `${base}/${token}`);
        expectClearPage(get, `GET ${base}/${token}`);
        expect([404, 410, 405]).toContain(get.status);
        const post = await b.request('POST', `${base}/${token}`, { csrf, password: 'long enough password', confirm: 'long enough password' });
        expectClearPage(post, `POST ${base}/${token}`);
      }
      expectClearPage(await t.request.delete(`${base}/${'A'.repeat(43)}`), `DELETE ${base}`);
      expectClearPage(await t.request.get(`${base}/a/b/c`), `GET ${base}/a/b/c`);
    }
  });

  it('the secret of a link never reaches the access log (the route pattern is logged)', async () => {
    const from = logLines.length;
    const a = await createAccount(t.gatehouse.db.prisma, { email: 'log@example.com' });
    const link = await issueLink(t.gatehouse.db.prisma, { purpose: 'reset', accountId: a.id, email: a.email });
    const b = new Browser(t);
    const p = await b.request('GET', `/reset/${link.secret}`);
    expect(p.status).toBe(200);
    await b.request('POST', `/reset/${link.secret}`, { csrf: csrfOf(p.text), password: 'short', confirm: 'short' });
    const requests = logLines.slice(from).filter((l) => l.includes('"msg":"request"') && l.includes('/reset/'));
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests.every((l) => l.includes('"path":"/reset/:token"'))).toBe(true);
    expect(logLines.join('\n')).not.toContain(link.secret);
  });
});
