// Issue 14's first acceptance test, in a real browser (Debian's Chromium
// through playwright-core) against Gatehouse listening on localhost (an IP
// address cannot be a WebAuthn RP ID), a real SMTP server (smtp-server, in
// this process) and a small relying party:
//
//   an operator invites a person (`gatehouse users invite`) → the mail
//   arrives → the person opens its link, chooses a password (the address is
//   now verified) → signs in to /account → adds a passkey with Chromium's
//   virtual authenticator (CDP WebAuthn.addVirtualAuthenticator) → signs out
//   → an application's authorization request (code + PKCE) reaches the login
//   page and the person signs in with the passkey alone: no password is sent;
//   the ID token's amr names the key (hwk or swk), never pwd, and userinfo
//   says email_verified: true.
import type http from 'node:http';
import { decodeJwt } from 'jose';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { cli } from '../helpers/cli.ts';
import { linkIn, startSmtpServer, type TestSmtp } from '../helpers/smtp.ts';
import { createWebClient, type TestClient } from '../sso/flow.ts';
import { addPasskey, BROWSER_ARGS, CHROMIUM, codeFlow, type CodeFlow, listen, pageWithAuthenticator, relyingParty, runBrowserTest, serveGatehouse, signOutHere, stop } from './kit.ts';

const WAIT_MS = 8_000;
const PASSWORD = 'violet kettle orbit lantern';
const EMAIL = 'mia@example.com';

describe.skipIf(!runBrowserTest)('browser: invitation to first sign-in, a passkey, then passwordless sign-in', () => {
  let t: TestApp | undefined;
  let smtp: TestSmtp | undefined;
  let gatehouse: http.Server | undefined;
  let rp: http.Server | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  let callbackUrl: string;
  let client: TestClient;
  let flow: CodeFlow;
  const problems: string[] = [];

  async function newContext(): Promise<BrowserContext> {
    const context = await browser!.newContext({ colorScheme: 'light', locale: 'en-US', viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(2 * WAIT_MS);
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('console', (m) => {
      if (/content security policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
    return context;
  }

  beforeAll(async () => {
    smtp = await startSmtpServer();
    ({ t, server: gatehouse, issuer } = await serveGatehouse('localhost', { SMTP_URL: smtp.url }));
    rp = relyingParty();
    callbackUrl = `http://127.0.0.1:${await listen(rp)}/callback`;
    flow = codeFlow(t, issuer, callbackUrl, WAIT_MS);
    // a third-party application (not first party): the person is asked to consent
    client = await createWebClient(t, { name: 'Acme Notes', redirectUris: [callbackUrl], scopes: ['openid', 'email'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: BROWSER_ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stop(gatehouse);
    await stop(rp);
    await t?.close();
    await smtp?.close();
  });

  it('invited → password (email verified) → passkey on /account → signs in with the passkey alone (amr hwk/swk, no pwd)', { timeout: 120_000 }, async () => {
    // 1. the operator invites Mia from the command line; the mail goes through the SMTP server
    const invited = await cli(t!.database.url, ['users', 'invite', '--email', EMAIL, '--name', 'Mia Wong'], { env: { ISSUER: issuer, SMTP_URL: smtp!.url } });
    expect(invited.code, invited.stderr).toBe(0);
    expect(invited.stdout).toContain(EMAIL);
    const mail = await smtp!.waitForMail(EMAIL);
    expect(mail.subject).toContain('You are invited to sign in with Gatehouse');
    const link = linkIn(mail, '/invite/');
    expect(link.startsWith(`${issuer}/invite/`), link).toBe(true);

    // 2. she opens the link in the browser that holds her (virtual) authenticator and chooses a password
    const context = await newContext();
    const page = await pageWithAuthenticator(context);
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'Welcome to Gatehouse' }).waitFor();
    expect(await page.locator('main').innerText()).toContain(EMAIL);
    await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Repeat the new password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Set password and continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account is ready' }).waitFor();
    const ready = await page.locator('main').innerText();
    expect(ready).toContain(EMAIL);
    expect(ready).toContain('is verified');

    // 3. she signs in to her account page with the new password and adds a passkey
    await page.goto(new URL('/account', issuer).href);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await page.getByLabel('Email address').fill(EMAIL);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
    expect(await page.locator('main').innerText()).toContain(EMAIL);
    expect(await page.locator('#passkey-list').count()).toBe(0);
    await addPasskey(page, 'Work laptop');
    await signOutHere(page);

    // the invitation is spent: opening it again says so
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'This invitation was already used' }).waitFor();

    // 4. Acme Notes sends her to Gatehouse; the login page offers the passkey, and Chromium's virtual
    // authenticator answers the email field's conditional (autofill) request as a person picking the
    // passkey would. Every form sent to Gatehouse from here on is recorded: none may carry a password.
    const posted: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().startsWith(issuer)) posted.push(`${new URL(r.url()).pathname} ${r.postData() ?? ''}`);
    });
    const { url, verifier } = flow.authUrl(client);
    const loginPage = page.waitForResponse((r) => /\/interaction\/[\w-]+$/.test(new URL(r.url()).pathname) && r.request().method() === 'GET');
    await page.goto(url);
    expect((await loginPage).status()).toBe(200);
    await page.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
    const consent = await page.locator('main').innerText();
    expect(consent).toContain('Acme Notes');
    expect(consent).toContain(EMAIL);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(callbackUrl));
    expect(await page.locator('#result').innerText()).toBe('Signed in');
    const tokens = await flow.exchange(client, page, verifier);

    // the passkey sign-in was a form post to Gatehouse (the assertion), and no post carried a password
    expect(posted.some((p) => /passkey|webauthn|assertion/i.test(p)), posted.join('\n')).toBe(true);
    expect(posted.filter((p) => /password/i.test(p))).toEqual([]);
    expect(posted.join('\n')).not.toContain(encodeURIComponent(PASSWORD));

    const claims = decodeJwt(tokens.id_token as string);
    const amr = claims.amr as string[];
    expect(amr.some((v) => v === 'hwk' || v === 'swk'), amr.join(' ')).toBe(true);
    expect(amr).not.toContain('pwd');
    // the application sees the address the invitation verified
    const me = await t!.request.get('/me').set('Authorization', `Bearer ${tokens.access_token as string}`);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ sub: claims.sub, email: EMAIL, email_verified: true });
    expect(problems).toEqual([]);
    await context.close();
  });
});
