// The storefront: the web shop customers use (client `storefront`, a
// confidential web client). It signs customers in with Gatehouse's
// authorization code flow + PKCE, keeps their tokens server-side (the browser
// holds only a random session cookie), and calls the orders API with the
// customer's own access token. It decides nothing about who may see which
// order: the orders API does.
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { tokenRequest } from '../../shared/http.ts';
import { HttpError, createService, portFromEnv, required, runStandalone, type Env, type LogSink, type PublicCall, type ServiceHandle } from '../../shared/service.ts';
import { ORDERS_API } from '../apis.ts';

interface Session {
  /** during sign-in */
  pending?: { state: string; verifier: string; nonce: string };
  user?: { sub: string; name: string; email: string };
  accessToken?: string;
  refreshToken?: string;
  idToken?: string;
  /** ms since the epoch */
  expiresAt?: number;
  flash?: string;
}

const COOKIE = 'storefront_sid';
const SCOPE = 'openid profile email offline_access orders:read orders:write';

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const money = (cents: number) => `€${(cents / 100).toFixed(2)}`;

interface Product {
  sku: string;
  name: string;
  price: number;
}
interface OrderView {
  id: string;
  total: number;
  status: string;
  createdAt: string;
  items: { name: string; quantity: number }[];
}

export async function start(env: Env, log?: LogSink): Promise<ServiceHandle> {
  const issuer = required(env, 'ISSUER');
  const client = { id: required(env, 'CLIENT_ID'), secret: required(env, 'CLIENT_SECRET') };
  const ordersUrl = required(env, 'ORDERS_URL');
  const sessions = new Map<string, Session>();
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));

  const session = (call: PublicCall, create = false): Session | undefined => {
    const sid = call.ctx.cookies.get(COOKIE);
    const existing = sid ? sessions.get(sid) : undefined;
    if (existing || !create) return existing;
    const id = randomBytes(32).toString('base64url');
    const fresh: Session = {};
    sessions.set(id, fresh);
    // SameSite=Lax: other sites cannot make the browser POST here with it
    call.ctx.cookies.set(COOKIE, id, { httpOnly: true, sameSite: 'lax', path: '/', overwrite: true });
    return fresh;
  };

  /** The customer's access token, refreshed when it is about to expire. */
  const accessToken = async (s: Session): Promise<string | undefined> => {
    if (!s.accessToken) return undefined;
    if ((s.expiresAt ?? 0) - Date.now() > 5_000) return s.accessToken;
    if (!s.refreshToken) return undefined;
    const r = await tokenRequest(issuer, client, { grant_type: 'refresh_token', refresh_token: s.refreshToken });
    if (r.status !== 200 || !r.body.access_token) {
      delete s.user;
      delete s.accessToken;
      return undefined;
    }
    s.accessToken = r.body.access_token;
    s.refreshToken = r.body.refresh_token ?? s.refreshToken;
    s.expiresAt = Date.now() + (r.body.expires_in ?? 60) * 1000;
    return s.accessToken;
  };

  const orders = async (s: Session): Promise<{ status: number; orders: OrderView[] }> => {
    const token = await accessToken(s);
    if (!token) return { status: 401, orders: [] };
    const res = await fetch(`${ordersUrl}/orders`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    const body = (await res.json().catch(() => ({}))) as { orders?: OrderView[] };
    return { status: res.status, orders: body.orders ?? [] };
  };

  const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}.flash{background:#eef6ee;padding:.5rem}</style>
</head><body><h1>Tea &amp; Kettles</h1>${body}</body></html>`;

  return createService({
    name: 'storefront',
    issuer,
    port: portFromEnv(env),
    ...(log ? { log } : {}),
    routes: [
      {
        method: 'GET',
        path: '/',
        public: true,
        async handler(call) {
          const s = session(call);
          const products = ((await (await fetch(`${ordersUrl}/products`, { signal: AbortSignal.timeout(10_000) })).json()) as { products: Product[] }).products;
          call.ctx.type = 'html';
          if (!s?.user) {
            return page(
              'Tea & Kettles',
              `<p><a href="/login">Sign in</a> to order.</p><ul>${products.map((p) => `<li>${esc(p.name)}: ${money(p.price)}</li>`).join('')}</ul>`,
            );
          }
          const mine = await orders(s);
          if (mine.status === 401) {
            sessions.delete(call.ctx.cookies.get(COOKIE) ?? '');
            return page('Signed out', '<p>Your session has ended. <a href="/login">Sign in again</a>.</p>');
          }
          const flash = s.flash ? `<p class="flash">${esc(s.flash)}</p>` : '';
          delete s.flash;
          return page(
            'Your orders',
            `<p>Signed in as <strong>${esc(s.user.name)}</strong> (${esc(s.user.email)}).</p>
<form method="post" action="/logout"><button>Sign out</button></form>${flash}
<h2>Order</h2><form method="post" action="/orders"><select name="sku">${products.map((p) => `<option value="${esc(p.sku)}">${esc(p.name)}: ${money(p.price)}</option>`).join('')}</select>
<input name="quantity" type="number" min="1" max="99" value="1"><button>Buy</button></form>
<h2>Your orders</h2>${
              mine.orders.length === 0
                ? '<p>No orders yet.</p>'
                : `<table><tr><th>Order</th><th>Items</th><th>Total</th><th>Status</th></tr>${mine.orders
                    .map((o) => `<tr><td>${esc(o.id)}</td><td>${o.items.map((i) => `${i.quantity} × ${esc(i.name)}`).join(', ')}</td><td>${money(o.total)}</td><td>${esc(o.status)}</td></tr>`)
                    .join('')}</table>`
            }`,
          );
        },
      },
      {
        method: 'GET',
        path: '/login',
        public: true,
        handler(call) {
          const s = session(call, true)!;
          const verifier = randomBytes(32).toString('base64url');
          s.pending = { state: randomBytes(16).toString('base64url'), verifier, nonce: randomBytes(16).toString('base64url') };
          const q = new URLSearchParams({
            client_id: client.id,
            response_type: 'code',
            redirect_uri: `${call.service.url}/callback`,
            scope: SCOPE,
            prompt: 'consent', // offline_access (a refresh token) is granted only with prompt=consent; first-party: no screen
            resource: ORDERS_API,
            // the name and email in the ID token itself (by default they would be only at /me)
            claims: JSON.stringify({ id_token: { name: null, email: null } }),
            state: s.pending.state,
            nonce: s.pending.nonce,
            code_challenge: createHash('sha256').update(verifier).digest('base64url'),
            code_challenge_method: 'S256',
          });
          call.ctx.redirect(`${issuer}/auth?${q}`);
        },
      },
      {
        method: 'GET',
        path: '/callback',
        public: true,
        async handler(call) {
          const s = session(call);
          const pending = s?.pending;
          const q = call.ctx.query;
          if (!s || !pending || q.state !== pending.state) throw new HttpError(400, 'invalid_request', 'unexpected sign-in response; start again at /login');
          delete s.pending;
          if (typeof q.code !== 'string') throw new HttpError(400, 'access_denied', `sign-in failed: ${String(q.error ?? 'no code')}`);
          const r = await tokenRequest(issuer, client, {
            grant_type: 'authorization_code',
            code: q.code,
            code_verifier: pending.verifier,
            redirect_uri: `${call.service.url}/callback`,
          });
          if (r.status !== 200 || !r.body.access_token || !r.body.id_token) throw new HttpError(502, 'sign_in_failed', 'the sign-in could not be completed');
          // who signed in: the ID token, checked (issuer, audience = us, nonce, signature)
          const { payload } = await jwtVerify(r.body.id_token, jwks, { issuer, audience: client.id });
          if (payload.nonce !== pending.nonce) throw new HttpError(400, 'invalid_request', 'sign-in response replayed');
          s.user = { sub: String(payload.sub), name: String(payload.name ?? payload.email ?? payload.sub), email: String(payload.email ?? '') };
          s.accessToken = r.body.access_token;
          if (r.body.refresh_token) s.refreshToken = r.body.refresh_token;
          s.idToken = r.body.id_token;
          s.expiresAt = Date.now() + (r.body.expires_in ?? 60) * 1000;
          call.ctx.redirect('/');
        },
      },
      {
        method: 'POST',
        path: '/orders',
        public: true,
        async handler(call) {
          const s = session(call);
          const token = s?.user ? await accessToken(s) : undefined;
          if (!s || !token) return call.ctx.redirect('/login');
          const res = await fetch(`${ordersUrl}/orders`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ items: [{ sku: String(call.body.sku ?? ''), quantity: Number(call.body.quantity ?? 1) }] }),
            signal: AbortSignal.timeout(10_000),
          });
          const body = (await res.json().catch(() => ({}))) as { id?: string; error_description?: string };
          s.flash = res.status === 201 ? `Thank you! Order ${body.id} is paid.` : `The order failed: ${body.error_description ?? res.status}`;
          call.ctx.redirect('/');
        },
      },
      {
        // the signed-in customer's orders as JSON (what the page shows), for scripts
        method: 'GET',
        path: '/my/orders',
        public: true,
        async handler(call) {
          const s = session(call);
          if (!s?.user) throw new HttpError(401, 'login_required', 'sign in at /login');
          const mine = await orders(s);
          if (mine.status !== 200) throw new HttpError(mine.status === 401 ? 401 : 502, 'orders_unavailable', `the orders API answered ${mine.status}`);
          return { customer: s.user, orders: mine.orders };
        },
      },
      {
        method: 'POST',
        path: '/logout',
        public: true,
        handler(call) {
          const sid = call.ctx.cookies.get(COOKIE);
          const s = sid ? sessions.get(sid) : undefined;
          if (sid) sessions.delete(sid);
          call.ctx.cookies.set(COOKIE, '', { httpOnly: true, sameSite: 'lax', path: '/', maxAge: 0, overwrite: true });
          const q = new URLSearchParams({ client_id: client.id, post_logout_redirect_uri: `${call.service.url}/` });
          if (s?.idToken) q.set('id_token_hint', s.idToken);
          call.ctx.redirect(`${issuer}/session/end?${q}`);
        },
      },
    ],
  });
}

runStandalone(import.meta.url, start);
