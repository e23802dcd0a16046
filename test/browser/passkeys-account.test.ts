// Passkeys and the account page in a real browser: Debian's Chromium
// (/usr/bin/chromium) driven by playwright-core, with Chromium's virtual
// authenticator (CDP WebAuthn.addVirtualAuthenticator: CTAP2, internal,
// resident keys, user verification), against a Gatehouse listening on
// localhost (an IP address cannot be a WebAuthn RP ID) and a small relying
// party that receives the redirects.
//
//   - a passkey is added on the account page (navigator.credentials.create
//     through @simplewebauthn/browser served by Gatehouse), then signs in
//     without a password: acr mfa, amr with "mfa";
//   - a passkey as the second factor after the password;
//   - step-up: a password-only session at a client that requires MFA is
//     asked only for the second factor;
//   - the account page: sign out another session (that browser's session is
//     gone), revoke a grant (the client's refresh token is then refused);
//   - consent shows "Not you?" and the application's host;
//   - axe-core (injected) finds nothing serious or critical on the pages, in
//     light and dark, at 390 px; screenshots go to docs/screens/.
import { mkdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.ts';
import { basic, createUser, createWebClient, type TestClient } from '../sso/flow.ts';
import { addPasskey, BROWSER_ARGS, CHROMIUM, codeFlow, type CodeFlow, listen, pageWithAuthenticator, relyingParty, runBrowserTest, signOutHere, serveGatehouse, stop } from './kit.ts';

const WAIT_MS = 8_000;
const SCREENS = fileURLToPath(new URL('../../docs/screens/', import.meta.url));
const AXE = readFileSync(fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const PASSWORD = 'correct horse battery staple';

describe.skipIf(!runBrowserTest)('browser: passkeys and the account page in headless Chromium', () => {
  let t: TestApp;
  let gatehouse: http.Server;
  let rp: http.Server;
  let browser: Browser;
  let issuer: string;
  let callbackUrl: string;
  let web: TestClient;
  let strict: TestClient;
  let authUrl: CodeFlow['authUrl'];
  let exchange: CodeFlow['exchange'];
  const problems: string[] = [];

  async function newContext(opts: { viewport?: { width: number; height: number }; colorScheme?: 'light' | 'dark' } = {}): Promise<BrowserContext> {
    const context = await browser.newContext({ colorScheme: opts.colorScheme ?? 'light', locale: 'en-US', viewport: opts.viewport ?? DESKTOP });
    context.setDefaultTimeout(WAIT_MS);
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('console', (m) => {
      if (/content security policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
    return context;
  }

  /** axe-core, injected through CDP (not subject to the page's CSP): no serious or critical violation. */
  async function expectAccessible(page: Page, where: string): Promise<void> {
    await page.evaluate(AXE);
    const found = await page.evaluate<{ id: string; impact: string; nodes: number }[]>(`(async () => {
      const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    })()`);
    expect(
      found.filter((v) => v.impact === 'serious' || v.impact === 'critical'),
      `${where}: axe violations`,
    ).toEqual([]);
    const widths = await page.evaluate<{ scroll: number; inner: number }>('({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })');
    expect(widths.scroll, `${where}: horizontal scrolling`).toBeLessThanOrEqual(widths.inner);
  }

  async function passwordSignIn(page: Page, email: string): Promise<void> {
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  async function openAccount(page: Page, email: string): Promise<void> {
    await page.goto(new URL('/account', issuer).href);
    if (await page.getByRole('heading', { level: 1, name: 'Sign in' }).isVisible()) await passwordSignIn(page, email);
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
  }

  beforeAll(async () => {
    mkdirSync(SCREENS, { recursive: true });
    ({ t, server: gatehouse, issuer } = await serveGatehouse('localhost'));
    rp = relyingParty();
    callbackUrl = `http://127.0.0.1:${await listen(rp)}/callback`;
    ({ authUrl, exchange } = codeFlow(t, issuer, callbackUrl, WAIT_MS));
    web = await createWebClient(t, { name: 'Acme Notes', redirectUris: [callbackUrl], scopes: ['openid', 'email', 'offline_access'] });
    strict = await createWebClient(t, { name: 'Payroll', redirectUris: [callbackUrl], firstParty: true, requireMfa: true, scopes: ['openid', 'email'] });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: BROWSER_ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stop(gatehouse);
    await stop(rp);
    await t?.close();
  });

  it('adds a passkey on the account page, then signs in with it without a password; consent shows "Not you?" and the host', { timeout: 90_000 }, async () => {
    await createUser(t, 'ada@example.com', { password: PASSWORD });
    const context = await newContext();
    const page = await pageWithAuthenticator(context);
    await openAccount(page, 'ada@example.com');
    await expectAccessible(page, 'account page');
    await addPasskey(page, 'This laptop');
    await page.screenshot({ path: `${SCREENS}account-light.png`, fullPage: true });
    await signOutHere(page);

    // passwordless, through the email field's passkey autofill (conditional mediation): Chromium's
    // virtual authenticator answers the login page's conditional request by itself, as a person
    // picking the passkey from the autofill list would; no password is typed
    const { url, verifier } = authUrl(web);
    const loginPage = page.waitForResponse((r) => /\/interaction\/[\w-]+$/.test(new URL(r.url()).pathname) && r.request().method() === 'GET');
    await page.goto(url);
    expect((await loginPage).status()).toBe(200);
    await page.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
    const consent = await page.locator('main').innerText();
    expect(consent).toContain('ada@example.com');
    expect(consent).toContain(new URL(callbackUrl).host);
    expect(await page.getByRole('link', { name: 'Not you?' }).getAttribute('href')).toMatch(/prompt=login/);
    await expectAccessible(page, 'consent page');
    await page.getByRole('button', { name: 'Allow' }).click();
    const tokens = await exchange(web, page, verifier);
    const claims = decodeJwt(tokens.id_token as string);
    expect(claims.acr).toBe('urn:gatehouse:acr:mfa');
    expect(claims.amr).toContain('mfa');
    expect(claims.amr).toContain('user');
    expect(claims.amr).not.toContain('pwd');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('uses a passkey as the second factor after the password', { timeout: 60_000 }, async () => {
    await createUser(t, 'bob@example.com', { password: PASSWORD });
    const context = await newContext({ viewport: PHONE, colorScheme: 'dark' });
    const page = await pageWithAuthenticator(context);
    await openAccount(page, 'bob@example.com');
    await addPasskey(page, 'Phone');
    await expectAccessible(page, 'account page, dark, 390 px');
    await page.screenshot({ path: `${SCREENS}account-dark-390.png`, fullPage: true });
    await signOutHere(page);

    // without user verification the passkey cannot sign in alone: the login page stays
    await page.setUserVerified(false);
    const { url, verifier } = authUrl(strict);
    await page.goto(url);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(await page.getByLabel('Email address').getAttribute('autocomplete')).toBe('username webauthn');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
    await expectAccessible(page, 'login page, dark, 390 px');
    await page.screenshot({ path: `${SCREENS}login-passkey-dark-390.png`, fullPage: true });
    await passwordSignIn(page, 'bob@example.com');
    await page.getByRole('heading', { level: 1, name: 'Two-step verification' }).waitFor();
    await expectAccessible(page, 'second factor page, dark, 390 px');
    await page.screenshot({ path: `${SCREENS}mfa-passkey-dark-390.png`, fullPage: true });
    // (this virtual authenticator refuses any request while it cannot verify the user)
    await page.setUserVerified(true);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    const claims = decodeJwt((await exchange(strict, page, verifier)).id_token as string);
    expect((claims.amr as string[])[0]).toBe('pwd');
    expect(claims.amr).toContain('mfa');
    expect(claims.acr).toBe('urn:gatehouse:acr:mfa');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('step-up: a password-only session at a client that requires MFA is asked only for the second factor', { timeout: 60_000 }, async () => {
    await createUser(t, 'cy@example.com', { password: PASSWORD });
    const context = await newContext();
    const page = await pageWithAuthenticator(context);
    // signed in with the password only (no factor yet) to the account page; a passkey is added there
    await openAccount(page, 'cy@example.com');
    await addPasskey(page, 'Laptop');
    const { url, verifier } = authUrl(strict);
    await page.goto(url);
    await page.getByRole('heading', { level: 1, name: 'Two-step verification' }).waitFor();
    expect(await page.getByLabel('Password', { exact: true }).count()).toBe(0);
    expect(await page.locator('main').innerText()).toContain('Signed in as cy@example.com');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    const claims = decodeJwt((await exchange(strict, page, verifier)).id_token as string);
    expect(claims.acr).toBe('urn:gatehouse:acr:mfa');
    expect(problems).toEqual([]);
    await context.close();
  });

  it('account page: signs out another session, and revoking a grant makes its refresh token refused', { timeout: 60_000 }, async () => {
    await createUser(t, 'dee@example.com', { password: PASSWORD });
    // the "phone": signed in to Acme Notes with offline access
    const phone = await newContext();
    const phonePage = await phone.newPage();
    const { url, verifier } = authUrl(web, { scope: 'openid email offline_access', prompt: 'consent' });
    await phonePage.goto(url);
    await passwordSignIn(phonePage, 'dee@example.com');
    await phonePage.getByRole('button', { name: 'Allow' }).click();
    const tokens = await exchange(web, phonePage, verifier);
    expect(tokens.refresh_token).toBeTruthy();

    // the "desk": the account page
    const desk = await newContext();
    const page = await desk.newPage();
    await openAccount(page, 'dee@example.com');
    const sessions = page.locator('#session-list > li');
    expect(await sessions.count()).toBe(2);
    const other = sessions.filter({ hasNot: page.locator('.badge') });
    await other.getByRole('button', { name: /^Sign out/ }).click();
    await page.getByText('That session is signed out.').waitFor();
    expect(await page.locator('#session-list > li').count()).toBe(1);
    // the phone's session is gone: a silent sign-in is refused
    const silent = authUrl(web, { prompt: 'none' });
    await phonePage.goto(silent.url);
    await phonePage.waitForURL((u) => u.href.startsWith(callbackUrl));
    expect(new URL(phonePage.url()).searchParams.get('error')).toBe('login_required');

    // the phone signs in again (a new grant); the desk revokes Acme Notes' access
    const again = authUrl(web, { scope: 'openid email offline_access', prompt: 'consent' });
    await phonePage.goto(again.url);
    await passwordSignIn(phonePage, 'dee@example.com');
    await phonePage.getByRole('button', { name: 'Allow' }).click();
    const fresh = await exchange(web, phonePage, again.verifier);
    const refreshWith = (rt: unknown) =>
      t.request.post('/token').type('form').set('Authorization', basic(web.id, web.secret!)).send({ grant_type: 'refresh_token', refresh_token: rt as string });
    // the refresh token works (and rotates): the unused new one is what the revocation must stop
    const rotated = await refreshWith(fresh.refresh_token);
    expect(rotated.status).toBe(200);
    const current = rotated.body.refresh_token ?? fresh.refresh_token;
    await page.reload();
    await expectAccessible(page, 'account page with sessions and applications');
    await page.getByRole('button', { name: 'Revoke access of Acme Notes' }).first().click();
    await page.getByText('access is revoked').waitFor();
    const refused = await refreshWith(current);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    expect(problems).toEqual([]);
    await phone.close();
    await desk.close();
  });
});
