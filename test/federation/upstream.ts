// A second identity provider for the federation tests: a bare oidc-provider
// (in memory) on 127.0.0.1:<port>. Its people are `users`; its interaction
// signs in whoever `next` names at once (no pages), so a browser — supertest
// or Chromium — goes straight through it and back to Gatehouse.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface UpstreamUser {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export interface Upstream {
  issuer: string;
  clientId: string;
  clientSecret: string;
  users: Map<string, UpstreamUser>;
  /** the subject the next sign-in at the upstream is for */
  next: string;
  /** authorization requests seen (their query parameters) */
  requests: URLSearchParams[];
  stop(): Promise<void>;
}

export async function startUpstream(redirectUri: string, opts: { clientSecret?: string } = {}): Promise<Upstream> {
  let handler: http.RequestListener = (_req, res) => res.end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const clientSecret = opts.clientSecret ?? 'upstream-client-secret-for-tests-0123456789';

  const upstream: Upstream = {
    issuer,
    clientId: 'gatehouse',
    clientSecret,
    users: new Map(),
    next: '',
    requests: [],
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'gatehouse',
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    cookies: { keys: ['upstream-cookie-key-for-tests'] },
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    async findAccount(_ctx, sub) {
      const user = upstream.users.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: () => ({ sub, ...user }) };
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('upstream server_error', err));

  // The interaction: sign in `upstream.next` and grant what was asked, with no page.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/auth' && ctx.method === 'GET') upstream.requests.push(new URLSearchParams(ctx.querystring));
    if (!ctx.path.startsWith('/interaction/')) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const accountId = upstream.next;
    const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
  });
  handler = provider.callback();
  return upstream;
}

/** A cookie-keeping client for the upstream (redirects not followed). */
export class UpstreamBrowser {
  private cookies = new Map<string, string>();

  async get(url: string): Promise<Response> {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return res;
  }

  /** Follows the upstream's redirects until one leaves it; returns that URL. */
  async through(url: string, upstreamOrigin: string): Promise<URL> {
    let at = new URL(url);
    for (let i = 0; i < 10; i++) {
      if (at.origin !== upstreamOrigin) return at;
      const res = await this.get(at.href);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) throw new Error(`upstream answered ${res.status} at ${at.href}: ${(await res.text()).slice(0, 300)}`);
      at = new URL(location, at);
    }
    throw new Error('too many upstream redirects');
  }
}
