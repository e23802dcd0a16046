// The device flow in a real browser: a "TV" asks Gatehouse for a code, a
// person opens /device in Debian's Chromium (phone size, dark mode), types
// the code in lower case without its dash, sees which device asks, signs in,
// allows access and sees the device named as connected; meanwhile the TV's
// polls get authorization_pending and slow_down, then tokens. A second code
// is cancelled on the confirmation page (access_denied) and a third one
// expires (expired_token).
//
// Along the way: the pages' accessibility basics (lang, title, one h1, a label
// for every control, a name for every button, no inline or foreign script), Gatehouse's
// stylesheet in force in dark mode, nothing wider than 390 px, axe-core's
// WCAG 2.2 A/AA rules with no violation on every page, and no console error,
// CSP violation or failed request.
import http from 'node:http';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/clients/store.ts';
import { DEVICE_MESSAGES } from '../../src/interactions/device.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { createUser } from '../sso/flow.ts';
import { AXE_SOURCE, CHROMIUM, listen, runBrowserTest } from './kit.ts';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT_MS = 5_000;
const PHONE = { width: 390, height: 844 };
const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
const EMAIL = 'grace@example.com';
const PASSWORD = 'cobol compiler 1959';
const TV = 'Living room TV';

/** axe-core, evaluated in the page through the DevTools protocol (the pages' CSP allows no injected script). */

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/** WCAG 2.2 A and AA rules of axe-core on the page as shown; returns the violations. */
async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const { violations, passes } = await page.evaluate<{ violations: AxeViolation[]; passes: number }>(
    `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } })
      .then((r) => ({ passes: r.passes.length, violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })) }))`,
  );
  // axe really looked: contrast, labels, landmarks, language … passed
  expect(passes, 'axe rules that passed').toBeGreaterThanOrEqual(8);
  return violations.map((v) => `${v.id} (${v.impact ?? '?'}): ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`);
}

interface Basics {
  lang: string;
  title: string;
  h1: string[];
  unlabelled: string[];
  unnamedButtons: string[];
  scripts: number;
  scrollWidth: number;
  background: string;
  colorScheme: string;
}

const basics = (page: Page) =>
  page.evaluate<Basics>(`(() => {
    const controls = [...document.querySelectorAll('input, select, textarea')].filter((e) => e.type !== 'hidden');
    const named = (e) => (e.labels && e.labels.length > 0) || e.hasAttribute('aria-label') || e.hasAttribute('aria-labelledby');
    return {
      lang: document.documentElement.lang,
      title: document.title,
      h1: [...document.querySelectorAll('h1')].map((h) => h.textContent.trim()),
      unlabelled: controls.filter((e) => !named(e)).map((e) => e.outerHTML),
      unnamedButtons: [...document.querySelectorAll('button')].filter((b) => !b.textContent.trim() && !b.hasAttribute('aria-label')).map((b) => b.outerHTML),
      // scripts only from Gatehouse itself, none inline (the sign-in page has passkey.js)
      scripts: [...document.scripts].filter((e) => !e.src || new URL(e.src).origin !== location.origin).length,
      scrollWidth: document.documentElement.scrollWidth,
      background: getComputedStyle(document.body).backgroundColor,
      colorScheme: getComputedStyle(document.documentElement).colorScheme,
    };
  })()`);

/** Dark when each of r, g, b is below 100. */
const isDark = (rgb: string) => {
  const m = /rgba?\((\d+), (\d+), (\d+)/.exec(rgb);
  return !!m && [m[1], m[2], m[3]].every((v) => Number(v) < 100);
};

describe.skipIf(!runBrowserTest)('browser: a TV signs in with the device flow', () => {
  let t: TestApp | undefined;
  let server: http.Server | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  const problems: string[] = [];

  async function phone(): Promise<BrowserContext> {
    const context = await browser!.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, colorScheme: 'dark', locale: 'en-US' });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(2 * WAIT_MS);
    context.on('console', (m) => {
      if (m.type() !== 'error' && !/content security policy/i.test(m.text())) return;
      if (/status of 400/.test(m.text()) || /favicon/.test(m.location().url)) return; // refused codes are 400 pages, on purpose
      problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
    });
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('response', (r) => {
      if (r.request().resourceType() !== 'document' && r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()} for ${r.url()}`);
    });
    return context;
  }

  async function checkPage(page: Page, h1: string): Promise<void> {
    await page.getByRole('heading', { level: 1, name: h1 }).waitFor();
    const b = await basics(page);
    expect(b.lang).toBe('en');
    expect(b.title).toMatch(/Gatehouse/);
    expect(b.h1).toEqual([h1]);
    expect(b.unlabelled, 'inputs without a label').toEqual([]);
    expect(b.unnamedButtons, 'buttons without a name').toEqual([]);
    expect(b.scripts, 'inline or foreign scripts').toBe(0);
    expect(b.scrollWidth, 'no sideways scrolling at 390 px').toBeLessThanOrEqual(PHONE.width);
    expect(isDark(b.background), `dark background, got ${b.background}`).toBe(true);
    expect(await axeViolations(page), `axe-core (WCAG 2.2 AA) on "${h1}"`).toEqual([]);
  }

  const startDevice = async (): Promise<{ device_code: string; user_code: string; verification_uri: string; interval: number }> => {
    const res = await fetch(`${issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'living-room-tv', scope: 'openid offline_access' }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { device_code: string; user_code: string; verification_uri: string; interval: number };
  };
  const poll = async (deviceCode: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'living-room-tv', grant_type: DEVICE, device_code: deviceCode }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    let handler: http.RequestListener = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    server = http.createServer((req, res) => handler(req, res));
    issuer = `http://127.0.0.1:${await listen(server)}`;
    t = await createTestApp({ env: { ISSUER: issuer } });
    handler = t.gatehouse.app.callback();
    await createClient(t.gatehouse.db.prisma, { id: 'living-room-tv', name: TV, public: true, grants: [DEVICE, 'refresh_token'] });
    await createUser(t, EMAIL, { name: 'Grace Hopper', password: PASSWORD });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    await t?.close();
  });

  it('the person approves the code on a phone; the TV polls pending, slow_down, then gets tokens', { timeout: 60_000 }, async () => {
    const tv = await startDevice();
    expect(tv.verification_uri).toBe(`${issuer}/device`);
    expect((await poll(tv.device_code)).body.error).toBe('authorization_pending');
    expect((await poll(tv.device_code)).body.error).toBe('slow_down');

    const context = await phone();
    const page = await context.newPage();
    expect((await page.goto(tv.verification_uri))?.status()).toBe(200);
    await checkPage(page, 'Connect a device');
    // typed as people type it: lower case, no dash
    await page.getByLabel('Device code').fill(tv.user_code.replace('-', '').toLowerCase());
    await page.getByRole('button', { name: 'Continue', exact: true }).click();

    await checkPage(page, `Connect ${TV}?`);
    expect(await page.locator('main').innerText()).toContain(tv.user_code);
    await page.getByRole('button', { name: 'Continue', exact: true }).click();

    await checkPage(page, 'Sign in');
    expect(await page.locator('main').innerText()).toContain(TV);
    await page.getByLabel('Email address').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();

    await checkPage(page, 'Allow access?');
    await page.getByRole('button', { name: 'Allow' }).click();

    await checkPage(page, `${TV} is connected`);
    expect(await page.locator('main').innerText()).toContain(`You are signed in on ${TV}`);
    expect(problems).toEqual([]);

    const done = await poll(tv.device_code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String), id_token: expect.any(String), refresh_token: expect.any(String) });
    await context.close();
  });

  it('Cancel on the confirmation page: the TV gets access_denied; an expired code: expired_token', { timeout: 60_000 }, async () => {
    const tv = await startDevice();
    const context = await phone();
    const page = await context.newPage();
    await page.goto(`${issuer}/device`);
    await page.getByLabel('Device code').fill(tv.user_code);
    await page.getByRole('button', { name: 'Continue', exact: true }).click();
    await checkPage(page, `Connect ${TV}?`);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await checkPage(page, 'Sign-in cancelled');
    expect(await page.locator('main').innerText()).toContain(DEVICE_MESSAGES.cancelled);
    expect(await poll(tv.device_code)).toMatchObject({ status: 400, body: { error: 'access_denied' } });

    const late = await startDevice();
    await t!.gatehouse.db.pool.query(
      `UPDATE oidc_payloads SET payload = jsonb_set(payload, '{exp}', to_jsonb(extract(epoch from now())::int - 1)) WHERE model = 'DeviceCode' AND user_code = $1`,
      [late.user_code.replace('-', '')],
    );
    expect(await poll(late.device_code)).toMatchObject({ status: 400, body: { error: 'expired_token' } });
    await page.goto(`${issuer}/device`);
    await page.getByLabel('Device code').fill(late.user_code);
    await page.getByRole('button', { name: 'Continue', exact: true }).click();
    await checkPage(page, 'Connect a device');
    await expect(page.getByRole('alert').innerText()).resolves.toContain(DEVICE_MESSAGES.expired);
    expect(await page.getByLabel('Device code').getAttribute('aria-invalid')).toBe('true');
    expect(problems).toEqual([]);
    await context.close();
  });
});
