// A minimal scripted browser (fetch + a cookie jar, redirects followed by
// hand) for the walk-throughs and tests: it signs people in through
// Gatehouse's real login page, exactly as a person would with a browser.
import { createHash, randomBytes } from 'node:crypto';
import { tokenRequest, type TokenResponse } from './http.ts';

interface Cookie {
  name: string;
  value: string;
  path: string;
}

export interface Page {
  url: string;
  status: number;
  html: string;
}

/** Where a navigation ended: a page, or a redirect the caller asked to stop at. */
export type Landing = { kind: 'page'; page: Page } | { kind: 'redirect'; location: string };

const unescapeHtml = (s: string) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

export class Browser {
  /** keyed by host, like a browser (cookies do not isolate ports) */
  private readonly jar = new Map<string, Cookie>();

  private cookieHeader(url: URL): string {
    return [...this.jar.entries()]
      .filter(([key, c]) => key.startsWith(`${url.hostname}|`) && (c.path === '/' || url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .map(([, c]) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(url: URL, res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k = '', v = ''] = a.split('=');
        if (k.toLowerCase() === 'path') path = v || '/';
        if (k.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${url.hostname}|${name}|${path}`;
      if (expired) this.jar.delete(key);
      else this.jar.set(key, { name, value, path });
    }
  }

  /** One request, no redirect followed. */
  async request(method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<Response> {
    const u = new URL(url);
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = this.cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(u, {
      method,
      headers,
      redirect: 'manual',
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    this.store(u, res);
    return res;
  }

  /**
   * Navigates and follows redirects (at most 20). Stops at a page, or at a
   * redirect whose target `stopAt` accepts (a client's redirect URI whose
   * code the caller wants), or that is not http(s) (an app's private scheme).
   */
  async go(method: 'GET' | 'POST', url: string, form?: Record<string, string>, stopAt?: (location: string) => boolean): Promise<Landing> {
    let res = await this.request(method, url, form);
    let at = url;
    for (let hops = 0; hops < 20; hops++) {
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, at).href;
        if (stopAt?.(next) || !/^https?:/.test(next)) {
          await res.body?.cancel();
          return { kind: 'redirect', location: next };
        }
        await res.body?.cancel();
        at = next;
        res = await this.request('GET', next);
        continue;
      }
      return { kind: 'page', page: { url: at, status: res.status, html: await res.text() } };
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

export const isLoginPage = (p: Page): boolean => /<form[^>]*action="[^"]*\/login"/.test(p.html) && /name="password"/.test(p.html);
export const isConsentPage = (p: Page): boolean => /<form[^>]*action="[^"]*\/consent"/.test(p.html);

function formAction(p: Page, suffix: string): string {
  for (const m of p.html.matchAll(/<form[^>]*action="([^"]*)"/g)) {
    const action = unescapeHtml(m[1]!);
    if (action.endsWith(suffix)) return new URL(action, p.url).href;
  }
  throw new Error(`no form posting to …${suffix} on ${p.url}`);
}

function csrfOf(p: Page): string {
  const m = /name="csrf" value="([^"]*)"/.exec(p.html);
  if (!m) throw new Error(`no csrf input on ${p.url}`);
  return unescapeHtml(m[1]!);
}

/**
 * Fills in Gatehouse's login page (and approves a consent page) wherever a
 * navigation lands on one, until it ends elsewhere. Throws if the login is
 * refused (the login page comes back).
 */
export async function completeSignIn(browser: Browser, landing: Landing, email: string, password: string, stopAt?: (location: string) => boolean): Promise<Landing> {
  let step = landing;
  for (let i = 0; i < 5 && step.kind === 'page'; i++) {
    const p = step.page;
    if (isLoginPage(p)) {
      if (i > 0 && /role="alert"|class="alert/.test(p.html)) throw new Error(`sign-in refused for ${email}`);
      step = await browser.go('POST', formAction(p, '/login'), { csrf: csrfOf(p), login: email, password }, stopAt);
    } else if (isConsentPage(p)) {
      step = await browser.go('POST', formAction(p, '/consent'), { csrf: csrfOf(p), decision: 'approve' }, stopAt);
    } else {
      break;
    }
  }
  return step;
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface CodeFlowOptions {
  issuer: string;
  client: { id: string; secret?: string };
  redirectUri: string;
  /** the API the access token is for (RFC 8707) */
  resource: string;
  scope: string;
  email: string;
  password: string;
  /** reuse a browser (and its Gatehouse session: no second login) */
  browser?: Browser;
}

/**
 * The authorization code flow with PKCE, end to end, as `client`: a person
 * signs in on Gatehouse's login page, the code comes back to `redirectUri`
 * (intercepted here, not delivered) and is exchanged at the token endpoint.
 * What a web client or a mobile app does, for scripts and tests.
 */
export async function codeFlowTokens(opts: CodeFlowOptions): Promise<TokenResponse['body'] & { access_token: string }> {
  const browser = opts.browser ?? new Browser();
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString('base64url');
  const q = new URLSearchParams({
    client_id: opts.client.id,
    response_type: 'code',
    redirect_uri: opts.redirectUri,
    scope: opts.scope,
    resource: opts.resource,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const stopAt = (location: string) => location.startsWith(opts.redirectUri);
  const landing = await completeSignIn(browser, await browser.go('GET', `${opts.issuer}/auth?${q}`, undefined, stopAt), opts.email, opts.password, stopAt);
  if (landing.kind !== 'redirect') throw new Error(`sign-in did not come back to ${opts.redirectUri} (ended at ${landing.page.url}, ${landing.page.status})`);
  const back = new URL(landing.location);
  const code = back.searchParams.get('code');
  if (!code || back.searchParams.get('state') !== state) {
    throw new Error(`no code in the redirect: ${back.searchParams.get('error') ?? ''} ${back.searchParams.get('error_description') ?? ''}`.trim());
  }
  const res = await tokenRequest(opts.issuer, opts.client, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: opts.redirectUri,
  });
  if (res.status !== 200 || typeof res.body.access_token !== 'string') {
    throw new Error(`code exchange failed: ${res.status} ${res.body.error ?? ''} ${res.body.error_description ?? ''}`);
  }
  return res.body as TokenResponse['body'] & { access_token: string };
}

export interface DeviceFlowOptions {
  issuer: string;
  client: { id: string; secret?: string };
  /** the API the access token is for (RFC 8707) */
  resource: string;
  scope: string;
  email: string;
  password: string;
  browser?: Browser;
  /** what the device saw while it waited: each poll's error (authorization_pending …) */
  polls?: string[];
}

function xsrfOf(p: Page): string {
  const m = /name="xsrf" value="([^"]*)"/.exec(p.html);
  if (!m) throw new Error(`no xsrf input on ${p.url}`);
  return unescapeHtml(m[1]!);
}

/**
 * The device authorization grant (RFC 8628) end to end, as a TV does it: the
 * device asks for a code and polls; a person enters the code at /device on
 * another screen (here: the scripted browser), checks which device asks,
 * signs in; the device's next poll gets the tokens.
 */
export async function deviceFlowTokens(opts: DeviceFlowOptions): Promise<TokenResponse['body'] & { access_token: string }> {
  const browser = opts.browser ?? new Browser();
  const form = new URLSearchParams({ scope: opts.scope, resource: opts.resource });
  if (!opts.client.secret) form.set('client_id', opts.client.id);
  const started = await fetch(`${opts.issuer}/device/auth`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(opts.client.secret ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(opts.client.id)}:${encodeURIComponent(opts.client.secret)}`).toString('base64')}` } : {}),
    },
    body: form.toString(),
    signal: AbortSignal.timeout(10_000),
  });
  const device = (await started.json()) as { device_code?: string; user_code?: string; verification_uri?: string; interval?: number; error?: string };
  if (started.status !== 200 || !device.device_code || !device.user_code || !device.verification_uri) {
    throw new Error(`device authorization failed: ${started.status} ${device.error ?? ''}`);
  }
  const poll = () => tokenRequest(opts.issuer, opts.client, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code! });
  // the device polls once before anyone has entered the code
  const early = await poll();
  opts.polls?.push(String(early.body.error));

  // the person, on a phone: /device, the code (typed in lower case), the device's name, sign-in
  const entry = await browser.go('GET', device.verification_uri);
  if (entry.kind !== 'page') throw new Error('/device did not show a page');
  const confirm = await browser.go('POST', device.verification_uri, { xsrf: xsrfOf(entry.page), user_code: device.user_code.toLowerCase() });
  if (confirm.kind !== 'page' || !/name="confirm"/.test(confirm.page.html)) throw new Error(`the code was not accepted at /device (${confirm.kind === 'page' ? confirm.page.status : 'redirect'})`);
  const signIn = await browser.go('POST', device.verification_uri, { xsrf: xsrfOf(confirm.page), user_code: device.user_code, confirm: 'yes' });
  const done = await completeSignIn(browser, signIn, opts.email, opts.password);
  if (done.kind !== 'page' || !/is connected/.test(done.page.html)) throw new Error('the device was not connected');

  // approved: the device's next poll (at its interval) gets the tokens
  await new Promise((resolve) => setTimeout(resolve, (device.interval ?? 5) * 1000));
  const res = await poll();
  if (res.status !== 200 || typeof res.body.access_token !== 'string') {
    throw new Error(`device code exchange failed: ${res.status} ${res.body.error ?? ''} ${res.body.error_description ?? ''}`);
  }
  return res.body as TokenResponse['body'] & { access_token: string };
}
