// An invited admin, end to end in Chromium: an admin invites a colleague
// from the console's People page with the role gatehouse-admin; the mail
// arrives at a real SMTP server in this process; the colleague opens the
// link, chooses a password, and signs in to the console, where they see
// every section, and the invitation in the audit trail.
import http from 'node:http';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRoleToAccount } from '../../src/resources/roles.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { linkIn, startSmtpServer, type TestSmtp } from '../helpers/smtp.ts';
import { createUser } from '../sso/flow.ts';
import { CHROMIUM, listen, runBrowserTest } from '../browser/kit.ts';

const WAIT_MS = 8_000;

const ROOT = { email: 'root@example.com', password: 'root console passphrase 1' };
const INVITED = { email: 'grace@example.com', name: 'Grace Hopper', password: 'cobol compiler 1959 passphrase' };

describe.skipIf(!runBrowserTest)('console: sign in as an invited admin', () => {
  let t: TestApp | undefined;
  let smtp: TestSmtp | undefined;
  let server: http.Server | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  const problems: string[] = [];

  async function newContext(): Promise<BrowserContext> {
    const context = await browser!.newContext({ colorScheme: 'light', locale: 'en-GB' });
    context.setDefaultTimeout(WAIT_MS);
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('console', (m) => {
      // the browser asks every page for /favicon.ico, which Gatehouse does not have
      if (/favicon\.ico$/.test(m.location().url)) return;
      if (m.type() === 'error' || /content security policy/i.test(m.text())) problems.push(`console: ${m.text()} (${m.location().url})`);
    });
    return context;
  }

  async function signIn(context: BrowserContext, who: { email: string; password: string }): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${issuer}/console/`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await page.getByLabel('Email address').fill(who.email);
    await page.getByLabel('Password', { exact: true }).fill(who.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('navigation', { name: 'Console sections' }).waitFor();
    return page;
  }

  beforeAll(async () => {
    smtp = await startSmtpServer();
    let handler: http.RequestListener = (_req, res) => {
      res.writeHead(503);
      res.end();
    };
    server = http.createServer((req, res) => handler(req, res));
    issuer = `http://127.0.0.1:${await listen(server)}`;
    t = await createTestApp({ env: { ISSUER: issuer, SMTP_URL: smtp.url } });
    handler = t.gatehouse.app.callback();
    const root = await createUser(t, ROOT.email, { name: 'Root', password: ROOT.password });
    await addRoleToAccount(t.gatehouse.db.prisma, root.id, 'gatehouse-admin');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'], timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    await t?.close();
    await smtp?.close();
  });

  it('invites from the People page; the invited person sets a password from the mail and signs in to the console', { timeout: 90_000 }, async () => {
    const admin = await newContext();
    const page = await signIn(admin, ROOT);
    await page.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'People' }).click();
    await page.getByRole('link', { name: 'Invite someone' }).click();
    await page.getByRole('heading', { level: 1, name: 'Invite someone' }).waitFor();
    await page.getByLabel('Email address').fill(INVITED.email);
    await page.getByLabel('Name (optional)').fill(INVITED.name);
    await page.getByLabel('Roles (optional)').fill('gatehouse-admin');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page.getByText(`Invitation sent to ${INVITED.email}.`).waitFor();

    const mail = await smtp!.waitForMail(INVITED.email);
    const link = linkIn(mail, '/invite/');
    expect(new URL(link).origin).toBe(issuer);

    const invited = await newContext();
    const p = await invited.newPage();
    await p.goto(link);
    await p.getByLabel('New password', { exact: true }).fill(INVITED.password);
    await p.getByLabel('Repeat the new password').fill(INVITED.password);
    await p.locator('form button[type="submit"]').click();
    await p.getByText('Your account is ready').waitFor();

    const console_ = await signIn(invited, INVITED);
    await console_.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    const sections = await console_.getByRole('navigation', { name: 'Console sections' }).getByRole('link').allInnerTexts();
    expect(sections).toEqual(expect.arrayContaining(['Overview', 'Clients', 'People', 'Keys', 'Audit']));

    // the invitation, by the root admin, is in the audit trail
    await console_.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Audit' }).click();
    await console_.getByLabel(/^Action/).fill('user.*');
    await console_.getByRole('button', { name: 'Filter' }).click();
    await console_.waitForURL(/action=user\.\*/);
    await expect.poll(() => console_.locator('table.audit tbody').innerText(), { timeout: WAIT_MS }).toContain('user.invite');
    expect(problems).toEqual([]);
  });
});
