// The admin console in a real browser: Debian's Chromium (/usr/bin/chromium)
// driven by playwright-core, against a Gatehouse listening on 127.0.0.1 and a
// small relying party. Everything goes through the console's pages, which
// call only the public admin API with the signed-in person's token.
//
//   sign in as an admin (gatehouse-admin role) → create an API → create a
//   service client, copy its secret, get a token with fetch → create a web
//   app, copy its secret, log a person in through it → rotate keys (planned,
//   emergency) → find the audit events of all of it → a clients:read-only
//   admin sees clients read-only and nothing else → two tabs edit one client:
//   the second sees the conflict with both versions → a person's factors and
//   sessions: remove a lost passkey, end one session (confirmed, audited).
//
// On every page, light and dark: axe-core reports no serious or critical
// violation; no console error, CSP violation or script error. The first load
// weighs under 200 KB compressed (gzip of every response body, measured).
// Screenshots go to test-results/console/, and to docs/console/ when
// CONSOLE_SCREENSHOTS=docs.
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { decodeJwt } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPasskey, listFactors, userHandleOf } from '../../src/accounts/passkeys.ts';
import { listSessions } from '../../src/oidc/session-activity.ts';
import { addRoleToAccount, createRole } from '../../src/resources/roles.ts';
import { ADMIN_RESOURCE } from '../../src/resources/store.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { SoftAuthenticator } from '../helpers/webauthn.ts';
import { Browser as FormBrowser, codeFlowTokens, createUser, createWebClient, pkce } from '../sso/flow.ts';
import { AXE_SOURCE, BROWSER_ARGS, CHROMIUM, listen, runBrowserTest, stop } from '../browser/kit.ts';

const WAIT_MS = 8_000;
const SHOTS = fileURLToPath(new URL('../../test-results/console/', import.meta.url));
const DOCS_SHOTS = fileURLToPath(new URL('../../docs/console/', import.meta.url));

const ADMIN = { email: 'root@example.com', password: 'admin console passphrase 1' };
const READER = { email: 'reader@example.com', password: 'reader console passphrase 2' };
const PERSON = { email: 'ada@example.com', password: 'analytical engine 1843' };
const GRACE = { email: 'grace@example.com' };
const API_ID = 'https://orders.example.com';

/** The web app's side: records what comes to /callback. */
function relyingParty() {
  const codes: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/callback') {
      if (url.searchParams.get('code')) codes.push(url.searchParams.get('code')!);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html lang="en"><head><title>Shop</title></head><body><h1>Shop</h1><p id="result">Signed in</p></body></html>');
      return;
    }
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
    res.end();
  });
  return { server, codes };
}

describe.skipIf(!runBrowserTest)('admin console in headless Chromium', () => {
  let t: TestApp | undefined;
  let gatehouse: http.Server | undefined;
  let rp: ReturnType<typeof relyingParty> | undefined;
  let browser: Browser | undefined;
  let issuer: string;
  let callbackUrl: string;
  let adminId: string;
  let admin: BrowserContext;
  let adminPage: Page;
  let serviceClientId: string;
  /** a person with a passkey and a session left (after the factors and sessions test) */
  let graceId: string;
  let webClient: { id: string; secret: string };
  const problems: string[] = [];
  /** statuses a page may get from the API on purpose (a refused field, a conflict) */
  const expectedStatuses = new Set<number>();

  async function newContext(opts: { dark?: boolean } = {}): Promise<BrowserContext> {
    const context = await browser!.newContext({ colorScheme: opts.dark ? 'dark' : 'light', locale: 'en-GB', viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(2 * WAIT_MS);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: issuer });
    await context.exposeBinding('__cspViolation', (_s, v: string) => {
      problems.push(`CSP violation: ${v}`);
    });
    await context.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' on ' + e.documentURI);
    });`);
    context.on('console', (m) => {
      if (m.type() !== 'error' && !/content security policy/i.test(m.text())) return;
      const status = /status of (\d{3})/.exec(m.text());
      if (status && expectedStatuses.has(Number(status[1]))) return;
      if (/favicon/.test(m.location().url)) return;
      problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
    });
    context.on('weberror', (e) => problems.push(`script error: ${e.error().message}`));
    context.on('response', (r) => {
      if (r.request().resourceType() === 'document' || r.status() < 400 || expectedStatuses.has(r.status())) return;
      problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
    });
    return context;
  }
  const expectNoProblems = (where: string) => {
    const seen = problems.splice(0);
    expect(seen, `${where}: console errors, CSP violations, script errors, failed requests`).toEqual([]);
  };
  /** whether this Gatehouse's admin API has the access map (another feature, merged separately) */
  const offersAccessMap = async () => {
    const doc = (await (await fetch(`${issuer}/admin/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    return Boolean(doc.paths['/access-map']?.get);
  };

  /** Through Gatehouse's own login page to the console. */
  async function signIn(context: BrowserContext, who: { email: string; password: string }, path = '/console/'): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${issuer}${path}`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await page.getByLabel('Email address').fill(who.email);
    await page.getByLabel('Password', { exact: true }).fill(who.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('navigation', { name: 'Console sections' }).waitFor();
    return page;
  }

  /** In-app navigation (no reload: the token stays in memory). */
  async function open(page: Page, path: string, heading: string | RegExp): Promise<void> {
    await page.evaluate(`(() => { history.pushState(null, '', ${JSON.stringify(`/console${path}`)}); dispatchEvent(new PopStateEvent('popstate')); })()`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    await page.getByText('Loading…').waitFor({ state: 'detached' }).catch(() => {});
  }

  async function axe(page: Page, name: string): Promise<void> {
    // evaluated through the DevTools protocol: the page's CSP (no inline script) stays in force
    if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
    const violations = await page.evaluate<{ id: string; impact: string; help: string; nodes: { target: string[] }[] }[]>(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))`,
    );
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious, `${name}: serious or critical accessibility violations`).toEqual([]);
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, animations: 'disabled', caret: 'hide' });
    if (process.env.CONSOLE_SCREENSHOTS === 'docs') await page.screenshot({ path: join(DOCS_SHOTS, `${name}.png`), fullPage: false, animations: 'disabled', caret: 'hide' });
  }

  async function clipboard(page: Page): Promise<string> {
    return page.evaluate<string>('navigator.clipboard.readText()');
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    if (process.env.CONSOLE_SCREENSHOTS === 'docs') mkdirSync(DOCS_SHOTS, { recursive: true });
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

    const db = t.gatehouse.db.prisma;
    const a = await createUser(t, ADMIN.email, { name: 'Root Admin', password: ADMIN.password });
    adminId = a.id;
    await addRoleToAccount(db, a.id, 'gatehouse-admin');
    const r = await createUser(t, READER.email, { name: 'Clients Reader', password: READER.password });
    await createRole(db, { name: 'clients-reader', resource: ADMIN_RESOURCE, scopes: ['gatehouse:clients:read'] });
    await addRoleToAccount(db, r.id, 'clients-reader');
    await createUser(t, PERSON.email, { name: 'Ada Lovelace', password: PERSON.password });

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: BROWSER_ARGS, timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stop(gatehouse);
    await stop(rp?.server);
    await t?.close();
  });

  it('an admin signs in through Gatehouse and lands on the overview; the keyboard reaches everything', { timeout: 60_000 }, async () => {
    admin = await newContext();
    adminPage = await signIn(admin, ADMIN);
    const page = adminPage;
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/console/overview');
    // every section of a full admin
    const nav = page.getByRole('navigation', { name: 'Console sections' });
    const sections = ['Overview', 'Clients', 'APIs', 'Roles', 'People', 'Keys', 'Audit', ...((await offersAccessMap()) ? ['Access map'] : [])];
    expect(await nav.getByRole('link').allInnerTexts()).toEqual(sections);
    await page.getByText('tokens issued').waitFor();
    await page.getByText(/RS256: key .* signs/).waitFor();
    // the token lives in memory only
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    expect(await page.evaluate<string>('JSON.stringify(Object.keys(sessionStorage))')).toBe('[]');

    // keyboard: the first Tab reaches the skip link; the sections are links; Enter opens one and focus goes to its heading
    await nav.getByRole('link', { name: 'Overview' }).focus();
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate<string>('document.activeElement.textContent'), 'the skip link comes first').toBe('Skip to content');
    await nav.getByRole('link', { name: 'Clients' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Clients' }).waitFor();
    expect(await page.evaluate<string>('document.activeElement.tagName + ":" + document.activeElement.textContent')).toBe('H1:Clients');
    expect(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none');
    expectNoProblems('sign-in');
  });

  it('the first load weighs under 200 KB compressed', { timeout: 30_000 }, async () => {
    const page = await admin.newPage();
    let bytes = 0;
    let gzipped = 0;
    const pending: Promise<void>[] = [];
    page.on('response', (r) => {
      if (!r.url().startsWith(issuer) || r.status() >= 300) return;
      pending.push(
        r.body().then(
          (b) => {
            bytes += b.length;
            gzipped += gzipSync(b).length;
          },
          () => {},
        ),
      );
    });
    await page.goto(`${issuer}/console/clients`);
    await page.getByRole('heading', { level: 1, name: 'Clients' }).waitFor();
    await page.waitForLoadState('networkidle');
    await Promise.all(pending);
    console.log(`console first load: ${bytes} bytes, ${gzipped} bytes gzip (${(gzipped / 1024).toFixed(1)} KB)`);
    expect(gzipped).toBeGreaterThan(5_000);
    expect(gzipped).toBeLessThan(200 * 1024);
    await page.close();
  });

  it('creates an API, then a service client whose copied secret gets a token', { timeout: 60_000 }, async () => {
    const page = adminPage;
    await open(page, '/apis/new', 'New API');
    await page.getByLabel("Identifier (the tokens' audience)").fill(API_ID);
    await page.getByLabel('Name', { exact: true }).fill('Orders');
    await page.getByLabel('Scopes', { exact: true }).fill('orders:read orders:write');
    await page.getByRole('button', { name: 'Create API' }).click();
    await page.getByRole('heading', { level: 1, name: 'Orders' }).waitFor();

    await open(page, '/clients/new', 'New client');
    // a field the API refuses shows its message next to the field
    expectedStatuses.add(422);
    await page.getByLabel('Web app').check();
    await page.getByLabel('Name', { exact: true }).fill('Broken');
    await page.getByLabel('Redirect URIs').fill('not a uri');
    await page.getByRole('button', { name: 'Create client' }).click();
    const fieldError = page.locator('#redirectUris-error');
    await fieldError.waitFor();
    expect(await fieldError.innerText()).not.toBe('');
    expect(await page.getByLabel('Redirect URIs').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Redirect URIs').getAttribute('aria-describedby')).toContain('redirectUris-error');

    await page.getByLabel('Service').check();
    await page.getByLabel('Name', { exact: true }).fill('Billing');
    await page.getByLabel('APIs it may get tokens for').fill(API_ID);
    await page.getByLabel('Scopes', { exact: true }).fill('orders:read');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('heading', { level: 1, name: 'Client created: Billing' }).waitFor();
    serviceClientId = await page.locator('#new-client-id').innerText();
    const shown = await page.locator('#secret-value').inputValue();
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    const secret = await clipboard(page);
    expect(secret).toBe(shown);
    expect(secret.length).toBeGreaterThan(30);
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('heading', { level: 1, name: 'Billing' }).waitFor();
    expect(await page.locator('main').innerText(), 'the secret is not shown again').not.toContain(secret);

    // curl -u id:secret -d grant_type=client_credentials -d resource=… <issuer>/token
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${serviceClientId}:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API_ID, scope: 'orders:read' }),
    });
    const body = (await res.json()) as { access_token: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(decodeJwt(body.access_token)).toMatchObject({ aud: API_ID, client_id: serviceClientId, scope: 'orders:read' });
    expectNoProblems('service client');
  });

  it('creates a web app and logs a person in through it', { timeout: 60_000 }, async () => {
    const page = adminPage;
    await open(page, '/clients/new', 'New client');
    await page.getByLabel('Web app').check();
    await page.getByLabel('Name', { exact: true }).fill('Shop');
    await page.getByLabel('Redirect URIs').fill(callbackUrl);
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('heading', { level: 1, name: 'Client created: Shop' }).waitFor();
    const id = await page.locator('#new-client-id').innerText();
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    webClient = { id, secret: await clipboard(page) };
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('heading', { level: 1, name: 'Shop' }).waitFor();

    // a person signs in to the web app
    const person = await newContext();
    const p = await person.newPage();
    const { verifier, challenge } = pkce();
    const auth = new URL('/auth', issuer);
    for (const [k, v] of Object.entries({ client_id: id, response_type: 'code', redirect_uri: callbackUrl, scope: 'openid email', state: 'st', code_challenge: challenge, code_challenge_method: 'S256' })) {
      auth.searchParams.set(k, v);
    }
    await p.goto(auth.href);
    await p.getByLabel('Email address').fill(PERSON.email);
    await p.getByLabel('Password', { exact: true }).fill(PERSON.password);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'Allow access?' }).waitFor();
    await p.getByRole('button', { name: 'Allow' }).click();
    await p.getByRole('heading', { level: 1, name: 'Shop' }).waitFor();
    const code = rp!.codes.at(-1)!;
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${webClient.id}:${webClient.secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: callbackUrl, code_verifier: verifier }),
    });
    const body = (await res.json()) as { id_token: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(decodeJwt(body.id_token)).toMatchObject({ aud: webClient.id, iss: issuer });
    await person.close();
    expectNoProblems('web app');
  });

  it('plans a key rotation, and makes an emergency one only after a typed confirmation', { timeout: 60_000 }, async () => {
    const page = adminPage;
    await open(page, '/keys', 'Signing keys');
    await page.getByRole('button', { name: 'Plan rotation' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Plan a rotation of the RS256 key' }).waitFor();
    await dialog.getByRole('button', { name: 'Plan rotation' }).click();
    await page.getByText(/New RS256 key .* signs from/).waitFor();
    await page.getByRole('cell', { name: 'pending' }).first().waitFor();

    await page.getByRole('button', { name: 'Emergency rotation…' }).click();
    await dialog.getByText('The new key signs at once.').waitFor();
    const go = dialog.getByRole('button', { name: 'Rotate now' });
    expect(await go.isDisabled(), 'not before ROTATE is typed').toBe(true);
    // Escape cancels
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Emergency rotation…' }).click();
    await dialog.getByLabel(/Type ROTATE to confirm/).fill('ROTATE');
    await go.click();
    await page.getByText(/New RS256 key .* signs from/).waitFor();
    expectNoProblems('keys');
  });

  it('finds the audit events of all of the above', { timeout: 60_000 }, async () => {
    const page = adminPage;
    await open(page, `/audit?actor=${adminId}`, 'Audit');
    const table = page.locator('table.audit tbody');
    await table.locator('tr').first().waitFor();
    const text = await table.innerText();
    for (const action of ['resource.create', 'client.create', 'key.rotate']) expect(text, action).toContain(action);
    expect((text.match(/client\.create/g) ?? []).length).toBe(2);
    expect((text.match(/key\.rotate/g) ?? []).length).toBe(2);
    // the filter is in the URL, and the action filter narrows
    await page.getByLabel(/^Action/).fill('client.*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/action=client\.\*/);
    await expect.poll(() => table.innerText(), { timeout: WAIT_MS }).not.toContain('key.rotate');
    // before/after of a change
    await page.getByRole('button', { name: /Show/ }).first().click();
    await page.locator('table.diff').first().waitFor();
    // the person's login through the web app
    await open(page, '/audit?action=login.*', 'Audit');
    await page.locator('table.audit tbody tr').first().waitFor();
    expect(await page.locator('table.audit tbody').innerText()).toContain('login.success');
    expectNoProblems('audit');
  });

  it('a clients:read-only admin sees clients read-only and nothing else', { timeout: 60_000 }, async () => {
    const reader = await newContext();
    const page = await signIn(reader, READER);
    await page.getByRole('heading', { level: 1, name: 'Clients' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Console sections' }).getByRole('link').allInnerTexts()).toEqual(['Clients']);
    await page.getByText('Read-only').waitFor();
    expect(await page.getByRole('link', { name: 'New client' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Billing' }).click();
    await page.getByRole('heading', { level: 1, name: 'Billing' }).waitFor();
    expect(await page.getByLabel('Name', { exact: true }).isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: /Save|Delete|Rotate|Disable/ }).count()).toBe(0);
    for (const path of ['/people', '/keys', '/audit', '/apis', '/overview', '/clients/new']) {
      await open(page, path, /Not found|Billing|Clients/);
      expect(await page.getByRole('heading', { level: 1 }).innerText(), path).toMatch(/Not found|Clients/);
      expect(await page.getByRole('button', { name: /Create|Rotate|Invite/ }).count(), path).toBe(0);
    }
    await reader.close();
    expectNoProblems('narrow admin');
  });

  it('a conflicting edit from two tabs shows both versions', { timeout: 60_000 }, async () => {
    const path = `/clients/${serviceClientId}`;
    const a = adminPage;
    await open(a, path, 'Billing');
    const b = await admin.newPage();
    await b.goto(`${issuer}/console${path}`);
    await b.getByRole('heading', { level: 1, name: 'Billing' }).waitFor();

    await a.getByLabel('Name', { exact: true }).fill('Billing (tab A)');
    await a.getByRole('button', { name: 'Save changes' }).click();
    await a.getByText('Saved.').waitFor();

    expectedStatuses.add(412);
    await b.getByLabel('Name', { exact: true }).fill('Billing (tab B)');
    await b.getByRole('button', { name: 'Save changes' }).click();
    const conflict = b.getByRole('alert').filter({ hasText: 'Someone else changed this' });
    await conflict.waitFor();
    const versions = await conflict.locator('table').innerText();
    expect(versions).toContain('Billing (tab A)');
    expect(versions).toContain('Billing (tab B)');
    await axe(b, 'conflict view');
    await shot(b, 'conflict-light');
    await b.getByRole('button', { name: 'Save mine over theirs' }).click();
    await b.getByText('Saved.').waitFor();
    await b.close();
    expectNoProblems('conflict');
  });

  it("shows a person's factors and sessions; removes a lost passkey and ends one session, each after a confirmation, audited", { timeout: 60_000 }, async () => {
    const db = t!.gatehouse.db.prisma;
    // Grace signs in to an app from two devices (two sessions), then registers two passkeys
    const grace = await createUser(t!, GRACE.email, { name: 'Grace Hopper' });
    graceId = grace.id;
    const app = await createWebClient(t!, { firstParty: true, scopes: ['openid'] });
    for (let i = 0; i < 2; i++) await codeFlowTokens(new FormBrowser(t!), app, {}, { email: GRACE.email });
    const { hostname, origin } = new URL(issuer);
    const passkey = async (name: string) => {
      const auth = new SoftAuthenticator(hostname, origin, userHandleOf(grace.id));
      const key = { accountId: grace.id, credentialId: auth.credentialId, publicKey: auth.cosePublicKey().toString('base64url'), counter: 0, transports: ['usb'] };
      return insertPasskey(db, { ...key, name, backedUp: false, deviceType: 'singleDevice' });
    };
    const lost = await passkey('Lost YubiKey');
    const kept = await passkey('Desk YubiKey');
    const before = await listSessions(db, grace.id);
    expect(before).toHaveLength(2);

    const page = adminPage;
    await open(page, `/people/${grace.id}`, 'Grace Hopper');
    const factors = page.getByRole('table', { name: 'Second factors' });
    await factors.waitFor();
    expect(await factors.getByRole('row').allInnerTexts()).toEqual([
      expect.stringMatching(/^Name\s+Kind\s+Added\s+Last used\s+Action$/),
      expect.stringMatching(/^Lost YubiKey\s+Passkey \(this device only\)\s+\d/),
      expect.stringMatching(/^Desk YubiKey\s+Passkey/),
    ]);
    const sessions = page.getByRole('table', { name: 'Sessions' });
    expect(await sessions.getByRole('row').count()).toBe(3);
    expect(await sessions.getByRole('row').nth(1).innerText()).toContain(app.id);
    await axe(page, 'person with factors and sessions');
    await shot(page, 'person-factors-light');

    // removing a factor asks first; cancelling keeps it
    await page.getByRole('button', { name: 'Remove the passkey “Lost YubiKey”' }).click();
    let dialog = page.getByRole('dialog', { name: `Remove the passkey “Lost YubiKey” of ${GRACE.email}?` });
    await dialog.waitFor();
    await axe(page, 'remove factor dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect((await listFactors(db, grace.id)).items).toHaveLength(2);
    await page.getByRole('button', { name: 'Remove the passkey “Lost YubiKey”' }).click();
    await dialog.getByRole('button', { name: 'Remove passkey' }).click();
    await page.getByRole('status').filter({ hasText: 'Removed the passkey “Lost YubiKey”.' }).waitFor();
    await page.getByRole('button', { name: 'Remove the passkey “Lost YubiKey”' }).waitFor({ state: 'detached' });
    expect(await factors.getByRole('row').count()).toBe(2);
    expect((await listFactors(db, grace.id)).items.map((f) => f.id)).toEqual([kept.id]);

    // ending one session (the first row) leaves the other
    await sessions.getByRole('button', { name: /^End session from / }).first().click();
    dialog = page.getByRole('dialog', { name: /^End this session from / });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'End session' }).click();
    await page.getByRole('status').filter({ hasText: /^Ended the session from / }).waitFor();
    await expect.poll(() => sessions.getByRole('row').count()).toBe(2);
    const after = await listSessions(db, grace.id);
    expect(after).toHaveLength(1);
    expect(before.map((x) => x.uid)).toContain(after[0]!.uid);
    await axe(page, 'person after removals');

    const audit = await db.auditEvent.findMany({ where: { targetId: grace.id, action: { in: ['passkey.remove', 'user.session_end'] } }, orderBy: { id: 'asc' } });
    // done as the signed-in admin, through the public admin API
    expect(audit.map((e) => [e.action, e.actorType, e.actorId])).toEqual([
      ['passkey.remove', 'user', adminId],
      ['user.session_end', 'user', adminId],
    ]);
    expect(JSON.stringify(audit.map((e) => e.details))).toContain(lost.id);
    expectNoProblems('person factors and sessions');
  });

  it('every page passes axe-core (no serious or critical violation), light and dark', { timeout: 120_000 }, async () => {
    const pages: [string, string, string | RegExp][] = [
      ['overview', '/overview', 'Overview'],
      ['clients', '/clients', 'Clients'],
      ['client', `/clients/${serviceClientId}`, /Billing/],
      ['client-new', '/clients/new', 'New client'],
      ['apis', '/apis', 'APIs'],
      ['api', `/apis/${encodeURIComponent(API_ID)}`, 'Orders'],
      ['roles', '/roles', 'Roles'],
      ['role', '/roles/gatehouse-admin', 'Role gatehouse-admin'],
      ['people', '/people', 'People'],
      ['people-new', '/people/new', /Invite someone|Add a person/],
      ['role-new', '/roles/new', 'New role'],
      ['person', `/people/${adminId}`, 'Root Admin'],
      ['person-factors', `/people/${graceId}`, 'Grace Hopper'],
      ['keys', '/keys', 'Signing keys'],
      ['audit', '/audit', 'Audit'],
    ];
    const page = adminPage;
    const mapOffered = (await page.getByRole('navigation', { name: 'Console sections' }).getByRole('link', { name: 'Access map' }).count()) > 0;
    if (mapOffered) pages.push(['access-map', '/access-map', 'Access map']);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [name, path, heading] of pages) {
        await open(page, path, heading);
        await axe(page, `${name} (${scheme})`);
        await shot(page, `${name}-${scheme}`);
      }
    }
    // a confirmation dialog too
    await open(page, '/keys', 'Signing keys');
    await page.getByRole('button', { name: 'Emergency rotation…' }).click();
    await page.getByRole('dialog').waitFor();
    await axe(page, 'emergency rotation dialog (dark)');
    await shot(page, 'keys-emergency-dark');
    await page.keyboard.press('Escape');
    // a phone-sized screen: nothing to scroll sideways on the list
    await page.setViewportSize({ width: 390, height: 844 });
    await open(page, '/clients', 'Clients');
    const widths = await page.evaluate<{ scroll: number; inner: number }>('({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })');
    expect(widths.scroll).toBeLessThanOrEqual(widths.inner);
    await shot(page, 'clients-phone-dark');
    expectNoProblems('axe pages');
  });
});
