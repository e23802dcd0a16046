// A person's account lifecycle in a real browser (Debian's Chromium through
// playwright-core) against Gatehouse on 127.0.0.1, a small relying party,
// and a real SMTP server (smtp-server) that receives the mails:
//
//   - forgotten password: "Forgot password?" → reset request → mailed link →
//     new password → sign in; the session signed in before is gone;
//   - open sign-up: "Create an account" → mailed confirmation → sign in;
//   - invitation: mailed link → choose a password → sign in.
//
// Every page is checked with axe-core (no serious or critical violation),
// in light and dark, at 390 px wide with nothing to scroll sideways. With
// UPDATE_SCREENSHOTS=1 the pages are also saved to docs/screens/ (light and
// dark); otherwise screenshots go to test-results/browser/.
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../src/accounts/store.ts';
import { invite } from '../../src/lifecycle/writes.ts';
import { operator } from '../../src/kernel/actor.ts';
import type { TestApp } from '../helpers/app.ts';
import { linkIn, startSmtpServer, type TestSmtp } from '../helpers/smtp.ts';
import { createWebClient, type TestClient } from '../sso/flow.ts';
import { BROWSER_ARGS, CHROMIUM, listen, runBrowserTest, serveGatehouse, stop } from './kit.ts';

const WAIT_MS = 8_000;
const PHONE = { width: 390, height: 844 };
const SHOTS = fileURLToPath(new URL('../../test-results/browser/', import.meta.url));
const DOCS = fileURLToPath(new URL('../../docs/screens/', import.meta.url));
const updateDocs = process.env.UPDATE_SCREENSHOTS === '1';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const PASSWORD = 'old horse battery staple';
const NEW_PASSWORD = 'new zebra battery staple';

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core in the page (its source evaluated through the DevTools protocol, which the page's CSP does not govern). */
async function axeProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = await page.evaluate<AxeViolation[]>(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)`);
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * The page as a person sees it at 390 px, in light and in dark: no serious
 * or critical axe violation, no sideways scrolling, a visible h1.
 */
async function checkPage(page: Page, name: string): Promise<void> {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    expect(await axeProblems(page), `${name} (${scheme}): axe`).toEqual([]);
    const widths = await page.evaluate<{ scroll: number; inner: number }>('({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })');
    expect(widths.scroll, `${name} (${scheme}): horizontal scrolling`).toBeLessThanOrEqual(widths.inner);
    await page.getByRole('heading', { level: 1 }).waitFor({ timeout: WAIT_MS });
    const file = `${name}-${scheme}.png`;
    await page.screenshot({ path: join(SHOTS, file), fullPage: true, animations: 'disabled', caret: 'hide' });
    if (updateDocs) await page.screenshot({ path: join(DOCS, file), fullPage: true, animations: 'disabled', caret: 'hide' });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

describe.skipIf(!runBrowserTest)('browser: reset, sign-up and invitation with a real mail server', () => {
  let t: TestApp | undefined;
  let smtp: TestSmtp | undefined;
  let gatehouse: http.Server | undefined;
  let rp: http.Server | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  let callbackUrl: string;
  let client: TestClient;
  const problems: string[] = [];

  async function newContext(): Promise<BrowserContext> {
    const context = await browser!.newContext({ viewport: PHONE, colorScheme: 'light', locale: 'en-US' });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(2 * WAIT_MS);
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('response', (r) => {
      if (r.request().resourceType() !== 'document' && r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()} for ${r.url()}`);
    });
    return context;
  }

  const authUrl = (extra: Record<string, string> = {}) => {
    const u = new URL('/auth', issuer);
    for (const [k, v] of Object.entries({ client_id: client.id, response_type: 'code', redirect_uri: callbackUrl, scope: 'openid email', ...extra })) u.searchParams.set(k, v);
    return u.href;
  };

  /** Signs in on the login page; resolves once the relying party got the code. */
  async function signIn(page: Page, email: string, password: string): Promise<void> {
    await page.goto(authUrl());
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(callbackUrl));
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    if (updateDocs) mkdirSync(DOCS, { recursive: true });
    smtp = await startSmtpServer();
    ({ t, server: gatehouse, issuer } = await serveGatehouse('127.0.0.1', { SMTP_URL: smtp.url, SIGNUP: 'open' }));
    rp = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Notes</title></head><body><h1>Notes</h1></body></html>');
    });
    callbackUrl = `http://127.0.0.1:${await listen(rp)}/callback`;
    client = await createWebClient(t, { name: 'Acme Notes', redirectUris: [callbackUrl], firstParty: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: BROWSER_ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stop(gatehouse);
    await stop(rp);
    await t?.close();
    await smtp?.close();
  });

  it('the axe check finds real violations (so a clean result means something)', { timeout: 60_000 }, async () => {
    const page = await (await newContext()).newPage();
    await page.setContent('<!doctype html><html><head><title>x</title></head><body><input type="text"><img src="data:,"></body></html>');
    const found = await axeProblems(page);
    expect(found.some((p) => p.startsWith('label (critical)'))).toBe(true);
    expect(found.some((p) => p.startsWith('html-has-lang (serious)'))).toBe(true);
  });

  it('forgotten password → reset → sign in; the session from before is gone', { timeout: 120_000 }, async () => {
    await createAccount(t!.gatehouse.db.prisma, { email: 'ada@example.com', password: PASSWORD, emailVerified: true });
    // an earlier session, in another browser
    const before = await newContext();
    const old = await before.newPage();
    await signIn(old, 'ada@example.com', PASSWORD);

    const context = await newContext();
    const page = await context.newPage();
    await page.goto(authUrl());
    await checkPage(page, 'login-with-links');
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByRole('heading', { level: 1, name: 'Reset your password' }).waitFor();
    expect(await page.locator('main').innerText()).toContain('Acme Notes');
    await checkPage(page, 'reset-request');
    await page.getByLabel('Email address').fill('ada@example.com');
    await page.getByRole('button', { name: 'Send me a reset link' }).click();
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
    await checkPage(page, 'reset-check-email');

    const mail = await smtp!.waitForMail('ada@example.com');
    expect(mail.text).toContain('Acme Notes');
    await page.goto(linkIn(mail, '/reset/'));
    await page.getByRole('heading', { level: 1, name: 'Choose a new password' }).waitFor();
    await checkPage(page, 'reset-new-password');
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('Repeat the new password').fill('not the same');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('do not match');
    await checkPage(page, 'reset-error');
    await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel('Repeat the new password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your password is changed' }).waitFor();
    await checkPage(page, 'reset-done');

    // the old password no longer works; the new one does
    await page.goto(authUrl());
    await page.getByLabel('Email address').fill('ada@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').waitFor();
    await signIn(page, 'ada@example.com', NEW_PASSWORD);

    // the earlier browser's session ended: prompt=none now says login_required
    await old.goto(authUrl({ prompt: 'none' }));
    await old.waitForURL((u) => u.href.startsWith(callbackUrl));
    expect(new URL(old.url()).searchParams.get('error')).toBe('login_required');

    // the link is spent: a clear page with a way back
    await page.goto(linkIn(mail, '/reset/'));
    await page.getByRole('heading', { level: 1, name: 'This password reset link was already used' }).waitFor();
    await checkPage(page, 'link-used');
    expect(problems).toEqual([]);
  });

  it('open sign-up with email verification → sign in', { timeout: 120_000 }, async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(authUrl());
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Create an account' }).waitFor();
    await checkPage(page, 'signup');
    await page.getByLabel('Your name').fill('Grace Hopper');
    await page.getByLabel('Email address').fill('grace@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();

    // before the address is confirmed: no sign-in, and the page says why
    await page.goto(authUrl());
    await page.getByLabel('Email address').fill('grace@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    expect(await page.getByRole('alert').innerText()).toContain('verify your email first');

    const mail = await smtp!.waitForMail('grace@example.com');
    await page.goto(linkIn(mail, '/signup/'));
    await page.getByRole('heading', { level: 1, name: 'Confirm your email address' }).waitFor();
    await checkPage(page, 'signup-confirm');
    await page.getByRole('button', { name: 'Confirm and create my account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account is ready' }).waitFor();
    await checkPage(page, 'signup-done');
    await signIn(page, 'grace@example.com', PASSWORD);
    expect(problems).toEqual([]);
  });

  it('invitation → choose a password → sign in', { timeout: 120_000 }, async () => {
    const r = await invite({ db: t!.gatehouse.db.prisma, mailer: t!.gatehouse.mailer, issuer }, operator('admin'), { email: 'linus@example.com', name: 'Linus' });
    expect(r.mailed).toBe(true);
    const mail = await smtp!.waitForMail('linus@example.com');
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(linkIn(mail, '/invite/'));
    await page.getByRole('heading', { level: 1, name: 'Welcome to Gatehouse' }).waitFor();
    await checkPage(page, 'invite-password');
    await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Repeat the new password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Set password and continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account is ready' }).waitFor();
    await checkPage(page, 'invite-done');
    // the optional two-step set-up page
    await page.getByRole('button', { name: 'Set up two-step verification' }).click();
    await page.getByRole('heading', { level: 1, name: 'Set up two-step verification' }).waitFor();
    await checkPage(page, 'invite-enrol');
    await signIn(page, 'linus@example.com', PASSWORD);
    // an expired invitation: a clear page
    const late = await invite({ db: t!.gatehouse.db.prisma, mailer: t!.gatehouse.mailer, issuer }, operator('admin'), { email: 'late@example.com' });
    await t!.gatehouse.db.prisma.$executeRaw`UPDATE action_tokens SET expires_at = now() - interval '1 second' WHERE account_id = ${late.result.account.id}::uuid`;
    await page.goto(linkIn(await smtp!.waitForMail('late@example.com'), '/invite/'));
    await page.getByRole('heading', { level: 1, name: 'This invitation has expired' }).waitFor();
    await checkPage(page, 'link-expired');
    expect(problems).toEqual([]);
  });
});
