// Shared pieces of the browser tests (Debian's Chromium through
// playwright-core against a Gatehouse listening on a real port):
//
//   - CHROMIUM, BROWSER_ARGS, runBrowserTest: where Chromium is, how it is
//     launched, and whether the browser tests run here (always in CI);
//   - AXE_SOURCE: axe-core to inject for the WCAG checks;
//   - listen / stop: an http.Server on 127.0.0.1 and a free port;
//   - serveGatehouse(host, env): the real app (createTestApp) on a port,
//     its ISSUER being that port's address;
//   - codeFlow(t, issuer, callbackUrl): an authorization request (code +
//     PKCE S256) and the code's exchange at /token once the browser is back
//     at the relying party;
//   - relyingParty(): a tiny application whose /callback page shows
//     "Signed in" or the error that came back;
//   - pageWithAuthenticator(context): a page with Chromium's virtual
//     authenticator (CDP WebAuthn.addVirtualAuthenticator: CTAP2, internal,
//     resident keys, user verification);
//   - addPasskey / signOutHere: the account page's passkey form and its
//     "sign out on this device" button, as a person uses them.
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import type { Env } from '../../src/config/config.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { basic, pkce, type TestClient } from '../sso/flow.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const inCi = Boolean(process.env.CI) && !/^(0|false)$/i.test(process.env.CI ?? '');
/** Chromium is here, or this is CI (where a missing Chromium must fail, not skip). */
export const runBrowserTest = existsSync(CHROMIUM) || inCi;
/** axe-core's source, injected with page.addScriptTag({ content }) (the pages' CSP allows no remote script). */
export const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export function stop(server: http.Server | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The real app on a fresh database, listening on `host` and a free port, with
 * ISSUER set to that address (the server starts first, so the port is known).
 * WebAuthn needs `localhost`: an IP address cannot be an RP ID.
 */
export async function serveGatehouse(host: 'localhost' | '127.0.0.1', env: Env = {}): Promise<{ t: TestApp; server: http.Server; issuer: string }> {
  let handler: http.RequestListener = (_req, res) => {
    res.writeHead(503);
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  const issuer = `http://${host}:${await listen(server)}`;
  try {
    const t = await createTestApp({ env: { ...env, ISSUER: issuer } });
    handler = t.gatehouse.app.callback();
    return { t, server, issuer };
  } catch (e) {
    await stop(server);
    throw e;
  }
}

/** The relying party: a page at /callback showing what came back. */
export function relyingParty(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    res.writeHead(url.pathname === '/callback' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><title>App</title></head><body><h1>App</h1><p id="result">${url.searchParams.get('code') ? 'Signed in' : `Error ${url.searchParams.get('error') ?? ''}`}</p></body></html>`);
  });
}

export interface CodeFlow {
  /** the /auth URL for `client` (scope openid email unless `extra` says otherwise), and its PKCE verifier */
  authUrl(client: TestClient, extra?: Record<string, string>): { url: string; verifier: string };
  /** waits for the browser to be back at the callback with a code, and exchanges it: the token response */
  exchange(client: TestClient, page: Page, verifier: string): Promise<Record<string, unknown>>;
}

export function codeFlow(t: TestApp, issuer: string, callbackUrl: string, waitMs = 8_000): CodeFlow {
  return {
    authUrl(client, extra = {}) {
      const { verifier, challenge } = pkce();
      const u = new URL('/auth', issuer);
      for (const [k, v] of Object.entries({ client_id: client.id, redirect_uri: callbackUrl, response_type: 'code', scope: 'openid email', code_challenge: challenge, code_challenge_method: 'S256', ...extra })) {
        u.searchParams.set(k, v);
      }
      return { url: u.href, verifier };
    },
    async exchange(client, page, verifier) {
      await page.waitForURL((u) => u.href.startsWith(callbackUrl), { timeout: waitMs });
      const code = new URL(page.url()).searchParams.get('code');
      expect(code, page.url()).toBeTruthy();
      const res = await t.request
        .post('/token')
        .type('form')
        .set('Authorization', basic(client.id, client.secret!))
        .send({ grant_type: 'authorization_code', code: code!, code_verifier: verifier, redirect_uri: callbackUrl });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as Record<string, unknown>;
    },
  };
}

export type AuthenticatorPage = Page & { setUserVerified(v: boolean): Promise<void> };

/** A page with a virtual authenticator (user-verifying platform authenticator with resident keys). */
export async function pageWithAuthenticator(context: BrowserContext): Promise<AuthenticatorPage> {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return Object.assign(page, {
    setUserVerified: async (v: boolean) => {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: v });
    },
  });
}

/** On the account page: names and adds a passkey; the page confirms it and lists it. */
export async function addPasskey(page: Page, name: string): Promise<void> {
  await page.getByLabel('Name of the new passkey').fill(name);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('Your passkey is added.').waitFor();
  expect(await page.locator('#passkey-list').innerText()).toContain(name);
}

/** On the account page: signs out of Gatehouse on this device. */
export async function signOutHere(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out of Gatehouse on this device' }).click();
  await page.getByRole('heading', { level: 1, name: 'You are signed out' }).waitFor();
}
