// Sign-in (code + PKCE S256 with the built-in public client) and calls to
// the public admin API with the person's token. The token is held in this
// module's memory only: a reload signs in again through the Gatehouse
// session, without a prompt. The PKCE verifier and state of a sign-in in
// progress wait in sessionStorage until the callback, then are removed.

const meta = document.querySelector<HTMLMetaElement>('meta[name="gatehouse-issuer"]');
export const ISSUER = (meta?.content || location.origin).replace(/\/+$/, '');
const issuerPath = new URL(ISSUER).pathname.replace(/\/+$/, '');
/** the console's own path, e.g. /console or /idp/console */
export const BASE = `${issuerPath}/console`;
export const CLIENT_ID = 'gatehouse-console';
export const ADMIN_RESOURCE = 'urn:gatehouse:admin';
const REDIRECT_URI = `${ISSUER}/console/callback`;
const API = `${issuerPath}/admin/v1`;
export const SCOPES = [
  'openid',
  'profile',
  'email',
  'gatehouse:admin',
  'gatehouse:clients:read',
  'gatehouse:clients:write',
  'gatehouse:users:read',
  'gatehouse:users:write',
  'gatehouse:resources:read',
  'gatehouse:resources:write',
  'gatehouse:keys:read',
  'gatehouse:keys:write',
  'gatehouse:audit:read',
];

export interface Session {
  token: string;
  idToken?: string;
  scopes: Set<string>;
  subject: string;
  name: string;
  expiresAt: number;
}

let session: Session | undefined;
export const currentSession = () => session;

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n = 32) => b64url(crypto.getRandomValues(new Uint8Array(n)));

function decodePayload(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

/** Goes to Gatehouse's sign-in; comes back to `returnTo` (a console path) after the callback. */
export async function signIn(returnTo: string): Promise<void> {
  const verifier = random();
  const state = random(16);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem(`gh-console-${state}`, JSON.stringify({ verifier, returnTo }));
  const q = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: SCOPES.join(' '),
    resource: ADMIN_RESOURCE,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  location.assign(`${ISSUER}/auth?${q.toString()}`);
}

/** On /console/callback: exchanges the code; returns where to go next. */
export async function completeSignIn(params: URLSearchParams): Promise<string> {
  const state = params.get('state') ?? '';
  const saved = sessionStorage.getItem(`gh-console-${state}`);
  sessionStorage.removeItem(`gh-console-${state}`);
  if (params.get('error')) throw new Error(`Sign-in failed: ${params.get('error_description') ?? params.get('error')}`);
  if (!saved) throw new Error('This sign-in was not started here (or was already used). Sign in again.');
  const { verifier, returnTo } = JSON.parse(saved) as { verifier: string; returnTo: string };
  const res = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: CLIENT_ID,
      code: params.get('code') ?? '',
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
      resource: ADMIN_RESOURCE,
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`Sign-in failed: ${String(body.error_description ?? body.error ?? res.status)}`);
  const token = String(body.access_token);
  const claims = decodePayload(token);
  const id = typeof body.id_token === 'string' ? decodePayload(body.id_token) : {};
  session = {
    token,
    ...(typeof body.id_token === 'string' && { idToken: body.id_token }),
    scopes: new Set(String(claims.scope ?? '').split(' ').filter(Boolean)),
    subject: String(claims.sub ?? ''),
    name: String(id.email ?? id.name ?? claims.sub ?? ''),
    expiresAt: Number(claims.exp ?? 0) * 1000,
  };
  return returnTo.startsWith(`${BASE}/`) || returnTo === BASE ? returnTo : `${BASE}/`;
}

export function signOut(): void {
  const idToken = session?.idToken;
  session = undefined;
  const q = new URLSearchParams({ client_id: CLIENT_ID, post_logout_redirect_uri: `${ISSUER}/console/` });
  if (idToken) q.set('id_token_hint', idToken);
  location.assign(`${ISSUER}/session/end?${q.toString()}`);
}

/** gatehouse:admin holds every scope; otherwise exactly the one named. */
export function can(scope: string): boolean {
  const s = session?.scopes;
  return !!s && (s.has('gatehouse:admin') || s.has(scope));
}

export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  status: number;
  title: string;
  detail: string;
  errors?: FieldError[];
}

export class ApiError extends Error {
  constructor(
    readonly problem: Problem,
    readonly etag: string | null = null,
  ) {
    super(problem.detail || problem.title);
  }
  get status() {
    return this.problem.status;
  }
  /** the message for a field (`redirectUris`, `redirectUris.0` …) */
  fieldError(field: string): string | undefined {
    return this.problem.errors?.find((e) => e.field === field || e.field.startsWith(`${field}.`) || e.field.startsWith(`${field}[`))?.message;
  }
}

export interface Reply<T> {
  body: T;
  etag: string | null;
  status: number;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  ifMatch?: string | null;
  query?: Record<string, string | undefined>;
  accept?: string;
}

export async function call<T = unknown>(path: string, opts: CallOptions = {}): Promise<Reply<T>> {
  if (!session) throw new ApiError({ status: 401, title: 'Unauthorized', detail: 'not signed in' });
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') q.set(k, v);
  const url = `${API}${path}${q.size ? `?${q.toString()}` : ''}`;
  const headers: Record<string, string> = { Authorization: `Bearer ${session.token}`, Accept: opts.accept ?? 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.ifMatch) headers['If-Match'] = opts.ifMatch;
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }) });
  const etag = res.headers.get('ETag');
  const type = res.headers.get('Content-Type') ?? '';
  const body: unknown = res.status === 204 ? undefined : type.includes('json') ? await res.json() : await res.text();
  if (res.status === 401 && session) {
    // the token expired or was revoked: sign in again (silently, while the Gatehouse session lasts), back to this page
    session = undefined;
    void signIn(`${location.pathname}${location.search}`);
  }
  if (!res.ok) {
    const p = (typeof body === 'object' && body ? body : {}) as Partial<Problem>;
    throw new ApiError({ status: res.status, title: p.title ?? res.statusText, detail: p.detail ?? String(body ?? res.statusText), ...(p.errors && { errors: p.errors }) }, etag);
  }
  return { body: body as T, etag, status: res.status };
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Optional features, known once signed in (from the OpenAPI document). */
export const features = { accessMap: false, sensitiveScopes: false };
export async function loadFeatures(): Promise<void> {
  const doc = await document_();
  features.accessMap = doc.operations.has('get /access-map');
  features.sensitiveScopes = doc.resourceFields.has('sensitiveScopes');
}

interface ApiDocument {
  operations: Set<string>;
  resourceFields: Set<string>;
}
let doc: Promise<ApiDocument> | undefined;
function document_(): Promise<ApiDocument> {
  type Doc = { paths?: Record<string, Record<string, unknown>>; components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> } };
  doc ??= fetch(`${API}/openapi.json`)
    .then((r): Promise<Doc> | Doc => (r.ok ? (r.json() as Promise<Doc>) : {}))
    .then((d) => {
      const operations = new Set<string>();
      for (const [p, ops] of Object.entries(d.paths ?? {})) for (const m of Object.keys(ops)) operations.add(`${m} ${p}`);
      return { operations, resourceFields: new Set(Object.keys(d.components?.schemas?.ResourceInput?.properties ?? {})) };
    })
    .catch(() => ({ operations: new Set<string>(), resourceFields: new Set<string>() }));
  return doc;
}

/**
 * Whether this Gatehouse's admin API offers an operation ("get",
 * "/users/{id}/factors"): the console hides a feature whose operation is
 * missing rather than failing on it.
 */
export function offers(method: string, path: string): Promise<boolean> {
  return document_().then((d) => d.operations.has(`${method.toLowerCase()} ${path}`));
}
