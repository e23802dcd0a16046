// The interaction routes themselves (src/interactions/routes.ts): the route
// label of their requests in the metrics, unknown addresses and wrong
// methods, and form bodies that are malformed, nested, repeated, compressed
// or cut short: each gets an HTML answer, never a 5xx.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { Browser, authorize, createUser, createWebClient, csrfOf, formAction, isLoginPage, page, pkce, redirect, submitLogin, type Page, type TestClient } from './flow.ts';

describe('interaction routes', () => {
  let t: TestApp;
  let client: TestClient;

  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_IP_MAX_FAILURES: '1000' } });
    await createUser(t, 'alice@example.com');
    client = await createWebClient(t, { firstParty: true });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function loginPage(b = new Browser(t)): Promise<{ b: Browser; p: Page; uid: string }> {
    const { challenge } = pkce();
    const p = page(await authorize(b, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(isLoginPage(p)).toBe(true);
    return { b, p, uid: /\/interaction\/([A-Za-z0-9_-]+)/.exec(p.url)![1]! };
  }

  const isHtmlPage = (res: { headers: Record<string, string>; text: string }) =>
    res.headers['content-type']?.startsWith('text/html') && res.text.startsWith('<!doctype html>');

  it('labels every interaction request with its route pattern in the metrics: /interaction/:uid, and /interaction/:uid/<form> for the forms', async () => {
    const { b, p } = await loginPage();
    await submitLogin(b, p, 'alice@example.com', 'a wrong password');
    const css = /<link rel="stylesheet" href="([^"]+)"/.exec(p.html)![1]!;
    expect((await b.request('GET', css)).status).toBe(200);
    const metrics = (await t.request.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^gatehouse_http_requests_total\{method="GET",route="\/interaction\/:uid",status="200"\} [1-9]/m);
    expect(metrics).toMatch(/^gatehouse_http_requests_total\{method="POST",route="\/interaction\/:uid\/login",status="400"\} [1-9]/m);
    expect(metrics).toMatch(/^gatehouse_http_requests_total\{method="GET",route="\/static\/gatehouse\.css",status="200"\} [1-9]/m);
    expect(metrics).not.toMatch(/route="\/interaction\/[A-Za-z0-9_-]{5,}/); // never a uid
  });

  it('unknown addresses are a 404 page, wrong methods a 405 page with Allow', async () => {
    const { b, uid } = await loginPage();
    for (const path of [`/interaction/${uid}/nope`, '/interaction/bad$uid', '/interaction', `/interaction/${uid}/`, `/interaction/${uid}/login/more`]) {
      const res = await b.request('GET', path);
      expect(res.status, path).toBe(404);
      expect(isHtmlPage(res), path).toBe(true);
      expect(res.text).toContain('Page not found');
    }
    const put = await t.request.put(`/interaction/${uid}`).set('Accept', 'text/html');
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, HEAD');
    expect(put.text).toContain('This page can only be viewed.');
    const get = await b.request('GET', `/interaction/${uid}/login`);
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.text).toContain('This address only accepts form submissions.');
    const head = await t.request.head(`/interaction/${uid}`).set('Cookie', [...b.cookies.values()].map((c) => `${c.name}=${c.value}`).join('; '));
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toMatch(/^text\/html/);
  });

  it('a repeated field counts once (the first); a nested field is no field at all', async () => {
    const { b, p } = await loginPage();
    const action = formAction(p.html, '/login');
    const csrf = csrfOf(p.html);
    // repeated: the first value is the one used (here: the right email first)
    const twice = await b.post(action, `csrf=${csrf}&login=alice%40example.com&login=mallory%40example.com&password=${encodeURIComponent('correct horse battery staple')}`);
    expect(redirect(twice).searchParams.get('code')).toBeTruthy();

    const { b: b2, p: p2 } = await loginPage();
    const action2 = formAction(p2.html, '/login');
    const csrf2 = csrfOf(p2.html);
    const nested = page(await b2.post(action2, `csrf=${csrf2}&login[a]=alice%40example.com&password=x`));
    expect(nested.status).toBe(400);
    expect(nested.html).toContain('Enter your email address and your password');
    const deep = page(await b2.post(action2, `csrf=${csrf2}&a${'[b]'.repeat(50)}=1&login=alice%40example.com&password[k][l]=x`));
    expect(deep.status).toBe(400);
    expect(deep.html).toContain('Enter your email address and your password');
    // qs's array notation is a repeated field
    const listed = page(await b2.post(action2, `csrf=${csrf2}&login=alice%40example.com&password[]=wrong-password&password[]=x`));
    expect(listed.status).toBe(400);
    expect(listed.html).toContain('Email or password is incorrect');
    const csrfAsObject = await b2.request('POST', action2, `csrf[x]=${csrf2}&login=alice%40example.com&password=x`);
    expect(csrfAsObject.status).toBe(403);
    const many = await b2.request('POST', action2, `csrf=${csrf2}&${Array.from({ length: 1500 }, (_, n) => `f${n}=1`).join('&')}`.slice(0, 15_000));
    expect(many.status).toBeLessThan(500);
    expect(isHtmlPage(many)).toBe(true);
  });

  it('compressed and oddly encoded bodies get an HTML answer, never a 5xx', async () => {
    const { b, p } = await loginPage();
    const action = formAction(p.html, '/login');
    const csrf = csrfOf(p.html);
    const cookie = [...b.cookies.values()].map((c) => `${c.name}=${c.value}`).join('; ');
    // (serialize: supertest would otherwise re-encode a Buffer as a form)
    const post = () =>
      t.request
        .post(action)
        .set('Cookie', cookie)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .set('Accept', 'text/html')
        .serialize((body: unknown) => body as string);

    // gzip is read, and the size limit applies to what it inflates to
    const small = await post().set('Content-Encoding', 'gzip').send(gzipSync(`csrf=${csrf}&login=alice%40example.com&password=wrong-password`));
    expect(small.status).toBe(400);
    expect(small.text).toContain('Email or password is incorrect');
    const bomb = await post().set('Content-Encoding', 'gzip').send(gzipSync(`csrf=${csrf}&login=${'a'.repeat(200_000)}`));
    expect(bomb.status).toBe(413);
    expect(bomb.text).toContain('the form is too large');
    // an encoding nobody supports
    const unknownEncoding = await post().set('Content-Encoding', 'x-unknown').send('csrf=x');
    expect(unknownEncoding.status).toBe(415);
    expect(isHtmlPage(unknownEncoding)).toBe(true);
    // bytes that are not UTF-8, and a charset nobody asked for
    const latin = await post().set('Content-Type', 'application/x-www-form-urlencoded; charset=latin1').send(Buffer.from(`csrf=${csrf}&login=\xe9&password=x`, 'latin1'));
    expect(latin.status).toBe(400);
    expect(isHtmlPage(latin)).toBe(true);
    // still serving
    expect(isLoginPage(page(await b.get(p.url)))).toBe(true);
  });
});
