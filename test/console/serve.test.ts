// The admin console's files at /console: the page (no-cache, the login
// pages' CSP or stricter, the issuer named for the app), the hashed bundle
// (immutable), nothing else. The bundle is built by the global setup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/http/console.ts';
import { HTML_CSP } from '../../src/http/security-headers.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';

describe('/console serves the built admin console', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ISSUER: 'http://gatehouse.test/idp' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers the page at /console and at every page of the app, never cached stale', async () => {
    for (const p of ['/idp/console', '/idp/console/', '/idp/console/clients', '/idp/console/callback?code=x&state=y']) {
      const res = await t.request.get(p).set('Host', 'gatehouse.test');
      expect(res.status, p).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(res.text).toContain('<meta name="gatehouse-issuer" content="http://gatehouse.test/idp">');
      // the asset URLs carry the issuer's path
      expect(res.text).toMatch(/<script type="module" crossorigin src="\/idp\/console\/assets\/[^"]+\.js">/);
      expect(res.text).not.toMatch(/(src|href)="\/console\//);
      expect(res.text, 'no inline script').not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    }
  });

  it('has a CSP at least as strict as the login pages', () => {
    for (const directive of HTML_CSP.split('; ')) expect(CONSOLE_CSP.split('; ')).toContain(directive);
    expect(CONSOLE_CSP).toContain("form-action 'none'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe|https?:|\*/);
  });

  it('serves the hashed bundle for a year, immutable, and nothing outside it', async () => {
    const page = await t.request.get('/idp/console/').set('Host', 'gatehouse.test');
    const urls = [...page.text.matchAll(/(?:src|href)="(\/idp\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(urls.some((u) => u.endsWith('.js'))).toBe(true);
    expect(urls.some((u) => u.endsWith('.css'))).toBe(true);
    for (const u of urls) {
      const res = await t.request.get(u).set('Host', 'gatehouse.test');
      expect(res.status, u).toBe(200);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(res.headers['content-type']).toMatch(u.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    for (const bad of ['/idp/console/assets/nope.js', '/idp/console/assets/..%2Findex.html', '/idp/console/assets/../../package.json']) {
      const res = await t.request.get(bad).set('Host', 'gatehouse.test');
      expect(res.status, bad).not.toBe(200);
    }
    const post = await t.request.post('/idp/console/clients').set('Host', 'gatehouse.test');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });
});
