// The browser side of a sign-in, with fetch on 127.0.0.1: a cookie jar (with
// paths), redirects followed by hand, the login form filled in. Used by the
// login-flow scenario (one whole flow per iteration) and to get refresh and
// access tokens for the refresh / userinfo scenarios.
import { createHash, randomBytes } from 'node:crypto';
import { basicAuth } from './oauth.ts';
import { IterationError, assertLoopback } from './load.ts';
import type { RunningTarget, WebFixtures } from './types.ts';

const TIMEOUT_MS = 15_000;

export class Jar {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();

  header(pathname: string): string {
    return [...this.cookies.values()]
      .filter((c) => c.path === '/' || pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k = '', v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name};${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }
}

export async function navigate(base: string, jar: Jar, method: 'GET' | 'POST', pathAndQuery: string, form?: Record<string, string>): Promise<Response> {
  const url = new URL(pathAndQuery, base);
  const headers: Record<string, string> = { accept: 'text/html' };
  const cookie = jar.header(url.pathname);
  if (cookie) headers.cookie = cookie;
  if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(url, {
    method,
    headers,
    body: form ? new URLSearchParams(form).toString() : undefined,
    redirect: 'manual',
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  jar.store(res);
  return res;
}

/** Follows redirects on the target; returns the final page, or the first redirect that leaves it. */
async function follow(base: string, jar: Jar, first: Response): Promise<{ page?: { url: string; html: string }; leave?: URL }> {
  let res = first;
  let at = res.url;
  for (let hops = 0; hops < 10; hops++) {
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      const next = new URL(location, base);
      if (next.origin !== new URL(base).origin) return { leave: next };
      at = next.href;
      res = await navigate(base, jar, 'GET', `${next.pathname}${next.search}`);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new IterationError(`HTTP ${res.status} at ${new URL(at).pathname}: ${html.slice(0, 160)}`, res.status);
    return { page: { url: at, html } };
  }
  throw new Error('too many redirects');
}

function formAction(html: string, suffix: string): string | undefined {
  for (const m of html.matchAll(/<form[^>]*action="([^"]*)"/g)) {
    const action = m[1]!.replace(/&amp;/g, '&');
    if (action.endsWith(suffix)) return action;
  }
  return undefined;
}

export interface FlowTimings {
  /** ms: GET /auth … login page, POST login … code, POST /token, GET /me */
  authorize: number;
  login: number;
  token: number;
  userinfo: number;
}

export interface TokenSet {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
}

export interface LoginPage {
  jar: Jar;
  /** the login form's action (a path) and its CSRF token */
  action: string;
  csrf: string;
  /** PKCE verifier and state of the authorization request */
  verifier: string;
  state: string;
  /** the login page's markup (its passkey form and WebAuthn options) */
  html: string;
}

/** GET /auth → the login page (redirects followed, cookies kept). Throws IterationError if there is none. */
export async function openLoginPage(t: RunningTarget, web: WebFixtures, scope: string): Promise<LoginPage> {
  assertLoopback(t.url);
  const jar = new Jar();
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: web.clientId,
    redirect_uri: web.redirectUri,
    scope,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  if (scope.split(' ').includes('offline_access')) q.set('prompt', 'consent');
  const start = await follow(t.url, jar, await navigate(t.url, jar, 'GET', `/auth?${q.toString()}`));
  if (!start.page) throw new IterationError(`/auth left to ${start.leave!.href} without a login page`);
  const action = formAction(start.page.html, '/login');
  const csrf = /name="csrf" value="([^"]*)"/.exec(start.page.html)?.[1];
  if (!action || csrf === undefined) throw new IterationError(`no login form at ${start.page.url}`);
  return { jar, action, csrf, verifier, state, html: start.page.html };
}

/**
 * One whole passwordless sign-in with a passkey: GET /auth → login page (its
 * WebAuthn request options) → the software authenticator signs the challenge
 * (ES256, counter 0 like a synced passkey, user verified) → POST …/passkey →
 * redirect with the code → POST /token (PKCE) → GET /me. No argon2 anywhere.
 */
export async function passkeyLoginFlow(t: RunningTarget, web: WebFixtures, user: NonNullable<WebFixtures['passkeyUsers']>[number]): Promise<{ tokens: TokenSet; timings: FlowTimings }> {
  const t0 = performance.now();
  const { jar, csrf, verifier, state, html } = await openLoginPage(t, web, 'openid profile email');
  const m = /<form[^>]*action="([^"]*\/passkey)"[^>]*data-options="([^"]*)"/.exec(html);
  if (!m) throw new IterationError('no passkey form on the login page');
  const options = JSON.parse(m[2]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as { challenge: string };
  const answer = user.authenticator.assert(options.challenge, { counter: 0, origin: new URL(t.url).origin });
  const t1 = performance.now();
  const after = await follow(t.url, jar, await navigate(t.url, jar, 'POST', m[1]!, { csrf, response: JSON.stringify(answer) }));
  if (!after.leave) throw new IterationError(`after the passkey: a page at ${after.page!.url} instead of the redirect: ${after.page!.html.slice(0, 160)}`);
  const code = after.leave.searchParams.get('code');
  if (!code || after.leave.searchParams.get('state') !== state) throw new IterationError(`callback without code/state: ${after.leave.href.slice(0, 200)}`);
  const t2 = performance.now();
  const tokenRes = await fetch(`${t.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(web.clientId, web.clientSecret) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: web.redirectUri }).toString(),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const tokenText = await tokenRes.text();
  if (tokenRes.status !== 200) throw new IterationError(`code exchange: HTTP ${tokenRes.status}: ${tokenText.slice(0, 160)}`, tokenRes.status);
  const tokens = JSON.parse(tokenText) as TokenSet;
  const t3 = performance.now();
  // GET /me as well, so that one flow does what the password flow does, bar argon2
  await userinfo(t, tokens.access_token);
  const t4 = performance.now();
  return { tokens, timings: { authorize: t1 - t0, login: t2 - t1, token: t3 - t2, userinfo: t4 - t3 } };
}

/**
 * One whole sign-in: GET /auth → login page → POST login → redirect with the
 * code → POST /token (PKCE) → GET /me when `userinfo`. Throws IterationError
 * on any unexpected answer.
 */
export async function loginFlow(t: RunningTarget, web: WebFixtures, login: string, opts: { scope: string; userinfo: boolean }): Promise<{ tokens: TokenSet; timings: FlowTimings }> {
  const t0 = performance.now();
  const { jar, action, csrf, verifier, state } = await openLoginPage(t, web, opts.scope);
  const t1 = performance.now();
  let after = await follow(t.url, jar, await navigate(t.url, jar, 'POST', action, { csrf, login, password: web.password }));
  // a first-party client normally skips consent; prompt=consent (needed for offline_access) may still show it
  const consent = after.page && formAction(after.page.html, '/consent');
  if (after.page && consent) {
    const c = /name="csrf" value="([^"]*)"/.exec(after.page.html)?.[1] ?? '';
    after = await follow(t.url, jar, await navigate(t.url, jar, 'POST', consent, { csrf: c, decision: 'approve' }));
  }
  if (!after.leave) throw new IterationError(`after login: a page at ${after.page!.url} instead of the redirect to the client: ${after.page!.html.slice(0, 160)}`);
  const code = after.leave.searchParams.get('code');
  if (!code || after.leave.searchParams.get('state') !== state) throw new IterationError(`callback without code/state: ${after.leave.href.slice(0, 200)}`);
  const t2 = performance.now();
  const tokenRes = await fetch(`${t.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(web.clientId, web.clientSecret) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: web.redirectUri }).toString(),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const tokenText = await tokenRes.text();
  if (tokenRes.status !== 200) throw new IterationError(`code exchange: HTTP ${tokenRes.status}: ${tokenText.slice(0, 160)}`, tokenRes.status);
  const tokens = JSON.parse(tokenText) as TokenSet;
  const t3 = performance.now();
  if (opts.userinfo) await userinfo(t, tokens.access_token);
  const t4 = performance.now();
  return { tokens, timings: { authorize: t1 - t0, login: t2 - t1, token: t3 - t2, userinfo: t4 - t3 } };
}

export async function userinfo(t: RunningTarget, accessToken: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${t.url}/me`, { headers: { authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await res.text();
  if (res.status !== 200) throw new IterationError(`GET /me: HTTP ${res.status}: ${text.slice(0, 160)}`, res.status);
  return JSON.parse(text) as Record<string, unknown>;
}

/** POST /token grant_type=refresh_token; returns the new token set. */
export async function refreshTokens(t: RunningTarget, web: WebFixtures, refreshToken: string): Promise<TokenSet> {
  const res = await fetch(`${t.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(web.clientId, web.clientSecret) },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new IterationError(`refresh: HTTP ${res.status}: ${text.slice(0, 160)}`, res.status);
  return JSON.parse(text) as TokenSet;
}
