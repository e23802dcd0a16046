// "Continue with …" in a real browser: Debian's Chromium (/usr/bin/chromium)
// driven by playwright-core, against a Gatehouse on 127.0.0.1, a second
// identity provider (a bare oidc-provider, test/federation/upstream.ts) on
// 127.0.0.1, and a small relying party that receives the redirect.
//
//   /auth → login page ("Continue with Example SSO") → the upstream (signs
//   in at once) → Gatehouse's callback → consent → Allow → the relying
//   party with a code → tokens for the new Gatehouse account.
//
// Also: the login page with its provider button at 390 px in dark mode
// (nothing to scroll sideways, the button named and on screen), and no
// console error, CSP violation or script error on the way.
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdp } from '../../src/federation/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { basic, createWebClient, pkce, type TestClient } from '../sso/flow.ts';
import { startUpstream, type Upstream } from '../federation/upstream.ts';
import { AXE_SOURCE, BROWSER_ARGS, CHROMIUM, listen, runBrowserTest, stop } from './kit.ts';

const WAIT_MS = 5_000;
const SHOTS = fileURLToPath(new URL('../../test-results/browser/', import.meta.url));
const CLIENT_NAME = 'Acme Notes';
const IDP_NAME = 'Example SSO';

/** axe-core, evaluated through the DevTools protocol (the pages' CSP allows no injected script, and needs not). */
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/** The WCAG 2.2 A/AA violations axe-core finds on the page: "rule: target" lines. */
async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const r = await page.evaluate<{ passes: number; violations: string[] }>(`axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(WCAG_TAGS)} } })
    .then((r) => ({ passes: r.passes.length, violations: r.violations.flatMap((v) => v.nodes.map((n) => v.id + ': ' + n.target.join(' '))) }))`);
  expect(r.passes, 'axe-core ran its rules').toBeGreaterThan(5);
  return r.violations;
}

describe.skipIf(!runBrowserTest)('browser: "Continue with …" through an upstream identity provider in headless Chromium', () => {
  let t: TestApp | undefined;
  let gatehouse: http.Server | undefined;
  let rpServer: http.Server | undefined;
  let upstream: Upstream | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  let callbackUrl: string;
  let client: TestClient;
  const callbacks: URLSearchParams[] = [];
  const problems: string[] = [];

  async function newContext(opts: Parameters<Browser['newContext']>[0]): Promise<BrowserContext> {
    const context = await browser!.newContext({ locale: 'en-US', ...opts });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(2 * WAIT_MS);
    await context.exposeBinding('__cspViolation', (_s, v: string) => void problems.push(`CSP violation: ${v}`));
    await context.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));`);
    context.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (/favicon\.ico/.test(m.location().url)) return;
      problems.push(`console error: ${m.text()} (${m.location().url})`);
    });
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    return context;
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    let handler: http.RequestListener = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    gatehouse = http.createServer((req, res) => handler(req, res));
    issuer = `http://127.0.0.1:${await listen(gatehouse)}`;
    t = await createTestApp({ env: { ISSUER: issuer } });
    handler = t.gatehouse.app.callback();

    rpServer = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname === '/callback') {
        callbacks.push(url.searchParams);
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${CLIENT_NAME}</title></head><body><h1>${CLIENT_NAME}</h1></body></html>`);
        return;
      }
      res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
      res.end();
    });
    callbackUrl = `http://127.0.0.1:${await listen(rpServer)}/callback`;

    upstream = await startUpstream(`${issuer}/federation/callback`);
    upstream.users.set('ext-ada', { email: 'ada@partner.example', email_verified: true, name: 'Ada Lovelace' });
    upstream.next = 'ext-ada';
    await createIdp(t.gatehouse.db.prisma, t.config.keyEncryptionKey, {
      name: IDP_NAME,
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      clientSecret: upstream.clientSecret,
      domains: ['partner.example'],
    });
    client = await createWebClient(t, { name: CLIENT_NAME, redirectUris: [callbackUrl], scopes: ['openid', 'email', 'profile'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: BROWSER_ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stop(gatehouse);
    await stop(rpServer);
    await upstream?.stop().catch(() => {});
    await t?.close();
  });

  it('signs in with "Continue with Example SSO" and gets Gatehouse tokens for a new linked account', { timeout: 60_000 }, async () => {
    const { verifier, challenge } = pkce();
    const auth = new URL('/auth', issuer);
    const params = { client_id: client.id, response_type: 'code', redirect_uri: callbackUrl, scope: 'openid email profile', state: 'st-fed', nonce: 'n-fed', code_challenge: challenge, code_challenge_method: 'S256' };
    for (const [k, v] of Object.entries(params)) auth.searchParams.set(k, v);

    const context = await newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    const page = await context.newPage();
    await page.goto(auth.href, { waitUntil: 'load' });
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    const button = page.getByRole('button', { name: `Continue with ${IDP_NAME}` });
    expect(await button.isVisible()).toBe(true);
    expect(await page.getByRole('heading', { level: 2, name: 'Or sign in with' }).isVisible()).toBe(true);
    expect(await axeViolations(page), 'axe-core, WCAG 2.2 AA, login page (light)').toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'federation-login-desktop.png') });

    await button.click();
    // through the upstream (it signs in at once) and back: Gatehouse's consent page
    await page.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
    expect(new URL(page.url()).origin).toBe(issuer);
    expect(await page.locator('main').innerText()).toContain('ada@partner.example');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(callbackUrl), { waitUntil: 'load' });
    expect(callbacks).toHaveLength(1);
    const cb = callbacks[0]!;
    expect(cb.get('state')).toBe('st-fed');
    expect(cb.get('iss')).toBe(issuer);

    const res = await t!.request
      .post('/token')
      .type('form')
      .set('Authorization', basic(client.id, client.secret!))
      .send({ grant_type: 'authorization_code', code: cb.get('code')!, code_verifier: verifier, redirect_uri: callbackUrl });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const account = await t!.gatehouse.db.prisma.account.findUniqueOrThrow({ where: { email: 'ada@partner.example' } });
    const id = decodeJwt(res.body.id_token as string);
    expect(id).toMatchObject({ iss: issuer, sub: account.id, nonce: 'n-fed', amr: ['fed'] });
    expect(problems, 'console errors, CSP violations, script errors').toEqual([]);
    await context.close();
  });

  it('the login page with its provider button works at 390 px in dark mode, and routes by email domain', { timeout: 60_000 }, async () => {
    const auth = new URL('/auth', issuer);
    const params = { client_id: client.id, response_type: 'code', redirect_uri: callbackUrl, scope: 'openid email', state: 'st-2', code_challenge: pkce().challenge, code_challenge_method: 'S256' };
    for (const [k, v] of Object.entries(params)) auth.searchParams.set(k, v);
    const context = await newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
    const page = await context.newPage();
    await page.goto(auth.href, { waitUntil: 'load' });
    const button = page.getByRole('button', { name: `Continue with ${IDP_NAME}` });
    await button.waitFor();
    const box = await button.boundingBox();
    expect(box).not.toBeNull();
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    expect(box!.height, 'a target of at least 24 px (WCAG 2.2 2.5.8)').toBeGreaterThanOrEqual(24);
    const widths = await page.evaluate<{ scroll: number; inner: number }>('({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })');
    expect(widths.scroll).toBeLessThanOrEqual(widths.inner);
    const colours = await page.evaluate<{ bg: string; fg: string }>(`(() => { const s = getComputedStyle(document.querySelector('.providers .button')); return { bg: getComputedStyle(document.body).backgroundColor, fg: s.color }; })()`);
    expect(colours.bg).not.toBe(colours.fg);
    expect(await axeViolations(page), 'axe-core, WCAG 2.2 AA, login page (dark, 390 px)').toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'federation-login-phone-dark.png') });

    // an email of a routed domain and no password: straight to the provider and back
    await page.getByLabel('Email address').fill('ada@partner.example');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
    expect(upstream!.requests.at(-1)!.get('login_hint')).toBe('ada@partner.example');
    expect(problems).toEqual([]);
    await context.close();
  });
});
