// Drives the browser side of the sign-in flow through supertest: follows
// redirects by hand, carries cookies (with their paths) like a browser, and
// fills in the forms of the pages it lands on.
import { createHash, randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { expect } from 'vitest';
import { createAccount } from '../../src/accounts/store.ts';
import { createClient, type ClientInput } from '../../src/clients/store.ts';
import type { TestApp } from '../helpers/app.ts';

export const REDIRECT_URI = 'https://app.example.com/callback';
export const PASSWORD = 'correct horse battery staple';

interface Cookie {
  name: string;
  value: string;
  path: string;
}

export interface Page {
  status: number;
  /** path (and query) on Gatehouse */
  url: string;
  html: string;
  res: Response;
}

/** Where a navigation ended: a Gatehouse page, or a redirect leaving Gatehouse. */
export type Step = { kind: 'page'; page: Page } | { kind: 'redirect'; location: URL; res: Response };

export class Browser {
  readonly cookies = new Map<string, Cookie>();

  constructor(
    readonly t: TestApp,
    readonly issuer = t.config.issuer,
  ) {}

  private cookieHeader(path: string): string {
    return [...this.cookies.values()]
      .filter((c) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(res: Response): void {
    const raw = res.headers['set-cookie'] as unknown;
    const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
    for (const line of list) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        if (k!.toLowerCase() === 'path') path = v;
        if (k!.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true;
        if (k!.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name};${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  /** A Gatehouse URL (absolute on the issuer, or a path) as a path; undefined for anything else. */
  local(url: string): string | undefined {
    const u = new URL(url, this.issuer);
    const issuer = new URL(this.issuer);
    return u.origin === issuer.origin ? `${u.pathname}${u.search}` : undefined;
  }

  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string> | string): Promise<Response> {
    const path = this.local(url);
    if (!path) throw new Error(`not a Gatehouse URL: ${url}`);
    const pathname = path.split('?')[0]!;
    let req = method === 'GET' ? this.t.request.get(path) : this.t.request.post(path).type('form');
    const cookie = this.cookieHeader(pathname);
    if (cookie) req = req.set('Cookie', cookie);
    req = req.set('Accept', 'text/html');
    const res = await (form === undefined ? req : req.send(form));
    this.store(res);
    return res;
  }

  /** Follows redirects within Gatehouse; stops at a page or at a redirect that leaves it. */
  async follow(res: Response, url: string): Promise<Step> {
    let current = res;
    let at = url;
    for (let hops = 0; hops < 20; hops++) {
      const location = current.headers.location as string | undefined;
      if (current.status >= 300 && current.status < 400 && location) {
        const next = this.local(location);
        if (!next) return { kind: 'redirect', location: new URL(location), res: current };
        at = next;
        current = await this.request('GET', next);
        continue;
      }
      return { kind: 'page', page: { status: current.status, url: at, html: current.text, res: current } };
    }
    throw new Error('too many redirects');
  }

  async get(url: string): Promise<Step> {
    return this.follow(await this.request('GET', url), url);
  }

  async post(url: string, form: Record<string, string> | string): Promise<Step> {
    return this.follow(await this.request('POST', url, form), url);
  }
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function page(step: Step): Page {
  if (step.kind !== 'page') throw new Error(`expected a page, got a redirect to ${step.location.href}`);
  return step.page;
}

export function redirect(step: Step): URL {
  if (step.kind !== 'redirect') {
    throw new Error(`expected a redirect, got a ${step.page.status} page at ${step.page.url}: ${step.page.html.slice(0, 600)}`);
  }
  return step.location;
}

/** The hidden CSRF input of the first form on the page. */
export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]*)"/.exec(html);
  if (!m) throw new Error('no csrf input on the page');
  return m[1]!;
}

/** The action of the form whose action ends with `suffix`. */
export function formAction(html: string, suffix: string): string {
  for (const m of html.matchAll(/<form[^>]*action="([^"]*)"/g)) {
    const action = m[1]!.replace(/&amp;/g, '&');
    if (action.endsWith(suffix)) return action;
  }
  throw new Error(`no form posting to …${suffix}`);
}

export const isLoginPage = (p: Page) => /<form[^>]*action="[^"]*\/login"/.test(p.html) && /name="password"/.test(p.html);
export const isConsentPage = (p: Page) => /<form[^>]*action="[^"]*\/consent"/.test(p.html);

export interface AuthParams {
  client_id: string;
  redirect_uri?: string;
  scope?: string;
  state?: string;
  nonce?: string;
  code_challenge?: string;
  code_challenge_method?: string;
  response_type?: string;
  [param: string]: string | undefined;
}

export function authUrl(params: AuthParams): string {
  const q = new URLSearchParams();
  const all: AuthParams = { response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', ...params };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) q.set(k, v);
  return `/auth?${q.toString()}`;
}

export async function authorize(browser: Browser, params: AuthParams): Promise<Step> {
  return browser.get(authUrl(params));
}

export async function submitLogin(browser: Browser, p: Page, login: string, password: string, extra: Record<string, string> = {}): Promise<Step> {
  return browser.post(formAction(p.html, '/login'), { csrf: csrfOf(p.html), login, password, ...extra });
}

export async function submitConsent(browser: Browser, p: Page, decision: 'approve' | 'deny'): Promise<Step> {
  return browser.post(formAction(p.html, '/consent'), { csrf: csrfOf(p.html), decision });
}

export interface SignInResult {
  /** the redirect back to the client */
  callback: URL;
  code: string | null;
  sawLogin: boolean;
  sawConsent: boolean;
}

/**
 * The whole browser side: /auth → (login) → (consent: approve) → back to the
 * client. Logs in with `email` / `password` when a login page appears.
 */
export async function signIn(
  browser: Browser,
  params: AuthParams,
  opts: { email?: string; password?: string; consent?: 'approve' | 'deny' } = {},
): Promise<SignInResult> {
  let step = await authorize(browser, params);
  let sawLogin = false;
  let sawConsent = false;
  for (let i = 0; i < 4 && step.kind === 'page'; i++) {
    const p = step.page;
    if (isLoginPage(p)) {
      if (!opts.email) throw new Error('login page shown but no credentials given');
      sawLogin = true;
      step = await submitLogin(browser, p, opts.email, opts.password ?? PASSWORD);
    } else if (isConsentPage(p)) {
      sawConsent = true;
      step = await submitConsent(browser, p, opts.consent ?? 'approve');
    } else {
      break;
    }
  }
  const callback = redirect(step);
  return { callback, code: callback.searchParams.get('code'), sawLogin, sawConsent };
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export interface TestClient {
  id: string;
  secret?: string;
}

/** POST /token with the client's credentials (basic for confidential, client_id for public). */
export function token(t: TestApp, client: TestClient, form: Record<string, string>) {
  const req = t.request.post('/token').type('form');
  if (client.secret) return req.set('Authorization', basic(client.id, client.secret)).send(form);
  return req.send({ client_id: client.id, ...form });
}

export function exchangeCode(t: TestApp, client: TestClient, code: string, verifier: string, redirectUri = REDIRECT_URI) {
  return token(t, client, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri });
}

export function refresh(t: TestApp, client: TestClient, refreshToken: string) {
  return token(t, client, { grant_type: 'refresh_token', refresh_token: refreshToken });
}

export async function createUser(t: TestApp, email: string, opts: { name?: string; password?: string } = {}) {
  return createAccount(t.gatehouse.db.prisma, { email, name: opts.name ?? null, password: opts.password ?? PASSWORD, emailVerified: true });
}

export async function createWebClient(t: TestApp, input: Partial<ClientInput> = {}): Promise<TestClient> {
  const created = await createClient(t.gatehouse.db.prisma, {
    name: 'Web app',
    grants: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    ...input,
  });
  return { id: created.client.id, ...(created.clientSecret ? { secret: created.clientSecret } : {}) };
}

/** Code flow to the end: signs in and exchanges the code. Returns the token response body. */
export async function codeFlowTokens(
  browser: Browser,
  client: TestClient,
  params: Partial<AuthParams>,
  opts: { email?: string; password?: string } = {},
): Promise<Record<string, unknown>> {
  const { verifier, challenge } = pkce();
  const r = await signIn(browser, { client_id: client.id, code_challenge: challenge, code_challenge_method: 'S256', ...params }, opts);
  expect(r.code, `no code in ${r.callback.href}`).toBeTruthy();
  const res = await exchangeCode(browser.t, client, r.code!, verifier);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as Record<string, unknown>;
}
