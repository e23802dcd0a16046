// The sign-in flow in a real browser: Debian's Chromium (/usr/bin/chromium),
// driven by playwright-core, against a Gatehouse listening on 127.0.0.1 and a
// small relying party that receives the redirect.
//
//   /auth (code + PKCE S256, state, nonce) → login page → wrong password →
//   right password → consent page → Allow → the relying party's callback →
//   code exchanged at /token → ID token checked (nonce, sub).
//
// Along the way: accessibility basics of the pages (lang, labels, heading,
// focus order), the stylesheet applied under the CSP, no console error, CSP
// violation or script error, and screenshots at desktop and phone sizes that
// must show a rendered page. Screenshots go to test-results/browser/.
//
// Skipped only when /usr/bin/chromium is missing outside CI; in CI (.ci/run
// installs Debian's chromium) it always runs. Playwright never downloads a
// browser here: it only ever starts the executable given.
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN_FAILED } from '../../src/interactions/pages.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { basic, createUser, createWebClient, pkce, type TestClient } from '../sso/flow.ts';
import { readPng } from './png.ts';
import { CHROMIUM, listen, runBrowserTest, stop } from './kit.ts';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** every browser action and wait is bounded by this */
const WAIT_MS = 5_000;
const SHOTS = fileURLToPath(new URL('../../test-results/browser/', import.meta.url));

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const EMAIL = 'ada@example.com';
const PASSWORD = 'analytical engine 1843';
const CLIENT_NAME = 'Acme Notes';

// ------------------------------------------------------------- servers

interface Callback {
  code: string | null;
  state: string | null;
  iss: string | null;
  error: string | null;
}

/** The relying party: records what comes to /callback and shows a small page. */
function relyingParty() {
  const callbacks: Callback[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/callback') {
      const p = url.searchParams;
      callbacks.push({ code: p.get('code'), state: p.get('state'), iss: p.get('iss'), error: p.get('error') });
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${CLIENT_NAME}</title></head>` +
          `<body><h1>${CLIENT_NAME}</h1><p id="result">${p.get('code') ? 'Signed in' : 'Not signed in'}</p></body></html>`,
      );
      return;
    }
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
    res.end();
  });
  return { server, callbacks };
}

// ------------------------------------------------------------- page helpers

/**
 * The console errors Chromium logs that are not a fault: a refused login is
 * answered with a 400 page (on purpose), and the browser asks every origin
 * for /favicon.ico, which neither server has.
 */
function expectedConsoleError(text: string, url: string): boolean {
  if (!text.startsWith('Failed to load resource: the server responded with a status of')) return false;
  const path = URL.canParse(url) ? new URL(url).pathname : '';
  if (path === '/favicon.ico') return / 404 /.test(text);
  return / 400 /.test(text) && /^\/interaction\/[A-Za-z0-9_-]+\/login$/.test(path);
}

interface Focused {
  tag: string;
  id: string;
  type: string;
  text: string;
}

const activeElement = (page: Page) =>
  page.evaluate<Focused>(`(() => {
    const e = document.activeElement;
    return e ? { tag: e.tagName.toLowerCase(), id: e.id, type: e.getAttribute('type') ?? '', text: (e.textContent ?? '').trim() }
             : { tag: '', id: '', type: '', text: '' };
  })()`);

interface A11y {
  lang: string;
  title: string;
  h1: string[];
  unlabelled: string[];
  unnamedButtons: string[];
  scripts: number;
}

/** Basics every page must have: a language, a title, one h1, a label for every control, a name for every button, no script. */
const a11yBasics = (page: Page) =>
  page.evaluate<A11y>(`(() => {
    const controls = [...document.querySelectorAll('input, select, textarea')].filter((e) => e.type !== 'hidden');
    const named = (e) => (e.labels && e.labels.length > 0) || e.hasAttribute('aria-label') || e.hasAttribute('aria-labelledby');
    return {
      lang: document.documentElement.lang,
      title: document.title,
      h1: [...document.querySelectorAll('h1')].map((h) => h.textContent.trim()),
      unlabelled: controls.filter((e) => !named(e)).map((e) => e.outerHTML),
      unnamedButtons: [...document.querySelectorAll('button')].filter((b) => !b.textContent.trim() && !b.hasAttribute('aria-label')).map((b) => b.outerHTML),
      scripts: document.scripts.length,
    };
  })()`);

interface Styles {
  sheets: number;
  bodyFont: string;
  bodyMargin: string;
  bodyBackground: string;
  buttonBackground: string;
  buttonColor: string;
  cardMaxWidth: string;
}

const appliedStyles = (page: Page) =>
  page.evaluate<Styles>(`(() => {
    const body = getComputedStyle(document.body);
    const button = document.querySelector('button.primary');
    const card = document.querySelector('main');
    return {
      sheets: document.styleSheets.length,
      bodyFont: body.fontFamily,
      bodyMargin: body.marginTop,
      bodyBackground: body.backgroundColor,
      buttonBackground: button ? getComputedStyle(button).backgroundColor : '',
      buttonColor: button ? getComputedStyle(button).color : '',
      cardMaxWidth: card ? getComputedStyle(card).maxWidth : '',
    };
  })()`);

/** Gatehouse's stylesheet is in force: none of these is Chromium's default. */
async function expectStyled(page: Page): Promise<void> {
  const s = await appliedStyles(page);
  expect(s.sheets, 'stylesheets').toBeGreaterThanOrEqual(1);
  expect(s.bodyMargin, 'body margin (default 8px)').toBe('0px');
  expect(s.bodyFont, 'body font (default serif)').toMatch(/system-ui/);
  expect(s.bodyBackground, 'body background (default transparent)').not.toBe('rgba(0, 0, 0, 0)');
  expect(s.buttonBackground, 'primary button background (default buttonface)').not.toMatch(/^(rgba\(0, 0, 0, 0\)|rgb\(239, 239, 239\)|)$/);
  expect(s.buttonBackground).not.toBe(s.buttonColor);
  expect(s.cardMaxWidth, 'card max-width (default none)').not.toBe('none');
}

/**
 * A screenshot of the viewport that must show the page: a valid PNG of the
 * viewport's size, the h1 inside the viewport, nothing to scroll sideways.
 * Measured in this Chromium: the pages give 29–47 KB and 1,000–1,400 colours;
 * a blank 1280×800 page 4.7 KB and 1 colour, an unstyled "<h1>Hi</h1>" 5.3 KB
 * and 53 colours. The floors sit well between.
 */
async function screenshot(page: Page, name: string): Promise<void> {
  const viewport = page.viewportSize()!;
  const png = await page.screenshot({ path: join(SHOTS, `${name}.png`), animations: 'disabled', caret: 'hide', timeout: WAIT_MS });
  const info = readPng(png);
  expect([info.width, info.height], `${name}: size`).toEqual([viewport.width, viewport.height]);
  expect(png.length, `${name}: bytes`).toBeGreaterThan(12 * 1024);
  expect(info.colours, `${name}: distinct colours`).toBeGreaterThan(300);

  const box = await page.getByRole('heading', { level: 1 }).boundingBox({ timeout: WAIT_MS });
  expect(box, `${name}: h1 rendered`).not.toBeNull();
  expect(box!.width).toBeGreaterThan(20);
  expect(box!.height).toBeGreaterThan(10);
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.y).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, `${name}: h1 inside the viewport`).toBeLessThanOrEqual(viewport.width);
  expect(box!.y + box!.height).toBeLessThanOrEqual(viewport.height);

  const widths = await page.evaluate<{ scroll: number; inner: number }>('({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })');
  expect(widths.inner, `${name}: layout viewport`).toBe(viewport.width);
  expect(widths.scroll, `${name}: horizontal scrolling`).toBeLessThanOrEqual(widths.inner);
}

// ------------------------------------------------------------- the test

describe.skipIf(!runBrowserTest)('browser: login → consent → redirect in headless Chromium', () => {
  let t: TestApp | undefined;
  let gatehouse: http.Server | undefined;
  let rp: ReturnType<typeof relyingParty> | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  let callbackUrl: string;
  let client: TestClient;
  let account: { id: string };
  /** console errors, CSP violations, script errors, failed requests: each fails the test */
  const problems: string[] = [];

  /** A context with the listeners that turn console errors, CSP violations and script errors into failures. */
  async function newContext(opts: Parameters<Browser['newContext']>[0]): Promise<BrowserContext> {
    const context = await browser!.newContext({ colorScheme: 'light', locale: 'en-US', ...opts });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(2 * WAIT_MS);
    await context.exposeBinding('__gatehouseCspViolation', (_source, v: string) => {
      problems.push(`CSP violation: ${v}`);
    });
    // Runs before the page's own code; CDP-injected, so not itself subject to the CSP.
    await context.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => {
      window.__gatehouseCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' on ' + e.documentURI);
    });`);
    context.on('console', (m) => {
      if (m.type() !== 'error' && !/content security policy/i.test(m.text())) return;
      if (expectedConsoleError(m.text(), m.location().url)) return;
      problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
    });
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    context.on('response', (r) => {
      // Documents may answer 4xx (a refused login is a 400 page); what a page loads may not.
      if (r.request().resourceType() !== 'document' && r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
    });
    return context;
  }

  const expectNoProblems = (where: string) => expect(problems, `${where}: console errors, CSP violations, script errors, failed requests`).toEqual([]);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });

    // The port comes first (the issuer names it), the app second: the server
    // listens at once and hands requests to the app once it is built.
    let handler: http.RequestListener = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    gatehouse = http.createServer((req, res) => handler(req, res));
    issuer = `http://127.0.0.1:${await listen(gatehouse)}`;
    t = await createTestApp({ env: { ISSUER: issuer } });
    handler = t.gatehouse.app.callback();

    rp = relyingParty();
    callbackUrl = `http://127.0.0.1:${await listen(rp.server)}/callback`;

    client = await createWebClient(t, { name: CLIENT_NAME, redirectUris: [callbackUrl] });
    expect(client.secret, 'a confidential client').toBeTruthy();
    account = await createUser(t, EMAIL, { name: 'Ada Lovelace', password: PASSWORD });

    // Playwright gives every launch a fresh, temporary --user-data-dir of its own.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stop(gatehouse);
    await stop(rp?.server);
    await t?.close();
  });

  it('signs in with code + PKCE: login page, wrong then right password, consent, redirect with code and state, tokens', { timeout: 60_000 }, async () => {
    const { verifier, challenge } = pkce();
    const state = `st-${Date.now().toString(36)}`;
    const nonce = `n-${Math.random().toString(36).slice(2)}`;
    const auth = new URL('/auth', issuer);
    for (const [k, v] of Object.entries({
      client_id: client.id,
      response_type: 'code',
      redirect_uri: callbackUrl,
      scope: 'openid profile email',
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    })) {
      auth.searchParams.set(k, v);
    }

    const context = await newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    let stylesheetStatus: number | undefined;
    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/static/gatehouse.css') stylesheetStatus = r.status();
    });

    // ---- login page
    const first = await page.goto(auth.href, { waitUntil: 'load' });
    expect(first?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[A-Za-z0-9_-]+$/);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(await page.locator('main').innerText()).toContain(CLIENT_NAME);

    const login = await a11yBasics(page);
    expect(login.lang).toBe('en');
    expect(login.title).toMatch(/Gatehouse/);
    expect(login.h1).toEqual(['Sign in']);
    expect(login.unlabelled, 'inputs without a label').toEqual([]);
    expect(login.unnamedButtons, 'buttons without a name').toEqual([]);
    expect(login.scripts, 'only its own two scripts: passkeys (webauthn.js, passkey.js)').toBe(2);
    expect(await page.locator('.brand').innerText()).toContain('Gatehouse');
    // The labels are wired to the inputs (the accessible name, as a screen reader gets it).
    const emailInput = page.getByLabel('Email address');
    const passwordInput = page.getByLabel('Password', { exact: true });
    expect(await emailInput.getAttribute('name')).toBe('login');
    expect(await passwordInput.getAttribute('name')).toBe('password');
    expect(await passwordInput.getAttribute('type')).toBe('password');
    expect((await activeElement(page)).id, 'the email field has focus on arrival').toBe('login');
    expect(stylesheetStatus, 'the stylesheet loaded').toBe(200);
    await expectStyled(page);
    await screenshot(page, 'login-desktop');
    expectNoProblems('login page');

    // Focus order: Tab from the email field reaches the password, then the
    // submit button; only the form's own checkbox ("keep me signed in") may come between.
    await emailInput.focus();
    const stops: Focused[] = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press('Tab');
      const f = await activeElement(page);
      stops.push(f);
      if (f.tag === 'button') break;
    }
    expect(stops[0]).toMatchObject({ tag: 'input', id: 'password' });
    expect(stops.at(-1)).toMatchObject({ tag: 'button', type: 'submit', text: 'Sign in' });
    for (const between of stops.slice(1, -1)) expect(between).toMatchObject({ tag: 'input', type: 'checkbox' });
    // and the focused button shows it (a visible focus ring)
    expect(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none');

    // ---- a wrong email and a wrong password look the same: one generic message, the form again, the email kept
    const messages: string[] = [];
    for (const [email, password] of [
      ['nobody@example.com', PASSWORD],
      [EMAIL, 'not the password'],
    ] as const) {
      await emailInput.fill(email);
      await passwordInput.fill(password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor({ state: 'visible' });
      messages.push((await alert.innerText()).trim());
      await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
      expect(await emailInput.inputValue(), 'the email is kept').toBe(email);
      expect(await passwordInput.inputValue(), 'the password is not').toBe('');
      expect(await passwordInput.getAttribute('aria-describedby')).toBe('form-error');
      expect((await activeElement(page)).id, 'focus goes to the password').toBe('password');
    }
    expect(messages).toEqual([LOGIN_FAILED, LOGIN_FAILED]);
    expect((await a11yBasics(page)).unlabelled).toEqual([]);
    await expectStyled(page);
    await screenshot(page, 'login-error-desktop');
    expectNoProblems('refused login');

    // ---- the right password, submitted with Enter
    await passwordInput.fill(PASSWORD);
    await passwordInput.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
    const consentUrl = page.url();
    expect(new URL(consentUrl).pathname).toMatch(/^\/interaction\/[A-Za-z0-9_-]+$/);
    const consentText = await page.locator('main').innerText();
    expect(consentText).toContain(CLIENT_NAME);
    expect(consentText).toContain(EMAIL);
    for (const scope of ['Confirm who you are', 'See your name', 'See your email address']) expect(consentText).toContain(scope);
    const consent = await a11yBasics(page);
    expect(consent.lang).toBe('en');
    expect(consent.h1).toEqual(['Allow access?']);
    expect(consent.unnamedButtons).toEqual([]);
    expect(consent.scripts).toBe(0);
    await expectStyled(page);
    await screenshot(page, 'consent-desktop');
    expectNoProblems('consent page');

    // ---- the same two pages on a phone (same cookies, mobile emulation: the meta viewport must hold)
    const phone = await newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 1, storageState: await context.storageState() });
    try {
      const p = await phone.newPage();
      expect((await p.goto(consentUrl))?.status()).toBe(200);
      await p.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
      await expectStyled(p);
      await screenshot(p, 'consent-phone');
      await p.emulateMedia({ colorScheme: 'dark' });
      await screenshot(p, 'consent-phone-dark');
      // a fresh sign-in shows the login page
      const q = await phone.newPage();
      await q.context().clearCookies();
      expect((await q.goto(auth.href))?.status()).toBe(200);
      await q.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
      await expectStyled(q);
      await screenshot(q, 'login-phone');
      // the button to go on is reachable without scrolling on a phone
      const button = await q.getByRole('button', { name: 'Sign in', exact: true }).boundingBox();
      expect(button!.y + button!.height).toBeLessThanOrEqual(PHONE.height);
      await q.emulateMedia({ colorScheme: 'dark' });
      await screenshot(q, 'login-phone-dark');
    } finally {
      await phone.close();
    }

    // ---- Allow → back at the relying party with a code and the same state
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(callbackUrl), { waitUntil: 'load' });
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe(CLIENT_NAME);
    expect(await page.locator('#result').innerText()).toBe('Signed in');
    expect(rp!.callbacks).toHaveLength(1);
    const cb = rp!.callbacks[0]!;
    expect(cb.error).toBeNull();
    expect(cb.state).toBe(state);
    expect(cb.iss).toBe(issuer);
    expect(cb.code).toBeTruthy();

    // ---- the code, the verifier and the client secret buy tokens; the ID token carries the nonce and the account
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { Authorization: basic(client.id, client.secret!), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: cb.code!, code_verifier: verifier, redirect_uri: callbackUrl }),
      signal: AbortSignal.timeout(WAIT_MS),
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.scope).toBe('openid profile email');
    const { payload } = await jwtVerify(body.id_token as string, createRemoteJWKSet(new URL(`${issuer}/jwks`), { timeoutDuration: WAIT_MS }), {
      issuer,
      audience: client.id,
    });
    expect(payload.nonce).toBe(nonce);
    expect(payload.sub).toBe(account.id);

    await context.close();
    expectNoProblems('the whole flow');
  });
});
