// Plain HTTP helpers for the walk-throughs and tests: call an API with a
// token, and talk to Gatehouse's token endpoint directly (including the
// requests an attacker would try, which the verifier library's token client
// is not meant for).

export interface ApiResponse {
  status: number;
  /** the JSON body (or the text when it is not JSON) */
  body: unknown;
  /** the WWW-Authenticate challenge, when the API refused the token */
  challenge: string | undefined;
}

/** Calls an API: `Authorization: Bearer <token>` when a token is given, JSON body for POST. */
export async function callApi(
  url: string,
  opts: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, challenge: res.headers.get('www-authenticate') ?? undefined };
}

export interface TokenResponse {
  status: number;
  body: {
    access_token?: string;
    token_type?: string;
    expires_in?: number;
    scope?: string;
    refresh_token?: string;
    id_token?: string;
    issued_token_type?: string;
    error?: string;
    error_description?: string;
    [field: string]: unknown;
  };
}

export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** POST /token as `client` (Basic auth; a public client sends only its client_id). */
export async function tokenRequest(issuer: string, client: { id: string; secret?: string }, form: Record<string, string>): Promise<TokenResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(form);
  if (client.secret !== undefined) headers.authorization = basicAuth(client.id, client.secret);
  else body.set('client_id', client.id);
  const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body: body.toString(), signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as TokenResponse['body'] };
}

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** client_credentials for one API. */
export function clientCredentials(issuer: string, client: { id: string; secret: string }, resource: string, scope?: string): Promise<TokenResponse> {
  return tokenRequest(issuer, client, { grant_type: 'client_credentials', resource, ...(scope !== undefined ? { scope } : {}) });
}

/** RFC 8693 token exchange of `subjectToken` for a token for `resource`, as `actor`. */
export function exchange(
  issuer: string,
  actor: { id: string; secret: string },
  subjectToken: string,
  resource: string,
  scope?: string,
): Promise<TokenResponse> {
  return tokenRequest(issuer, actor, {
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    resource,
    ...(scope !== undefined ? { scope } : {}),
  });
}

/** POST /token/introspection as `client`. */
export async function introspect(issuer: string, client: { id: string; secret: string }, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basicAuth(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return (await res.json()) as Record<string, unknown>;
}

/** The (unverified) payload of a JWT: for display and assertions only, never for decisions. */
export function peek(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1];
  if (!part) return {};
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Polls `probe` until it returns true or `ms` pass (bounded wait for a change to reach every cache). */
export async function eventually(probe: () => Promise<boolean>, ms = 3_000, every = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, every));
  }
}
