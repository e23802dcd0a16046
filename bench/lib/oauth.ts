// Building and checking the requests the scenarios repeat: token requests,
// introspection requests, and a strict check of a sample access token.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import type { Alg, LoadRequest, RunningTarget } from './types.ts';

export interface Discovery {
  issuer: string;
  token_endpoint: string;
  introspection_endpoint?: string;
  jwks_uri: string;
}

const discoveryCache = new Map<string, Promise<Discovery>>();

export function discovery(target: RunningTarget): Promise<Discovery> {
  let d = discoveryCache.get(target.url);
  if (!d) {
    d = getJson<Discovery>(`${target.url}/.well-known/openid-configuration`);
    discoveryCache.set(target.url, d);
  }
  return d;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** `client_secret_basic`: id and secret form-encoded, then base64 (RFC 6749 §2.3.1). */
export function basicAuth(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

/** The path of an endpoint URL announced in discovery, relative to the target. */
export function endpointPath(target: RunningTarget, endpoint: string): string {
  const u = new URL(endpoint);
  const base = new URL(target.url);
  if (u.host !== base.host) throw new Error(`${target.name}: endpoint ${endpoint} is not on ${target.url}`);
  return u.pathname;
}

export async function clientCredentialsRequest(target: RunningTarget, alg: Alg): Promise<LoadRequest> {
  const d = await discovery(target);
  const f = target.fixtures;
  return {
    method: 'POST',
    path: endpointPath(target, d.token_endpoint),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(f.clientId, f.clientSecret) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: f.resources[alg], scope: f.scope }).toString(),
  };
}

export async function introspectionRequest(target: RunningTarget, token: string): Promise<LoadRequest> {
  const d = await discovery(target);
  if (!d.introspection_endpoint) throw new Error(`${target.name}: discovery names no introspection_endpoint`);
  const f = target.fixtures;
  return {
    method: 'POST',
    path: endpointPath(target, d.introspection_endpoint),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(f.clientId, f.clientSecret) },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
  };
}

export interface Sample {
  status: number;
  body: unknown;
  text: string;
}

export async function send(target: RunningTarget, req: LoadRequest): Promise<Sample> {
  const res = await fetch(`${target.url}${req.path}`, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

function short(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Sends one token request and checks that the answer is a valid RFC 9068 JWT access token; returns it. */
export async function sampleAccessToken(target: RunningTarget, req: LoadRequest, alg: Alg): Promise<string> {
  const res = await send(target, req);
  const body = res.body as { access_token?: unknown; token_type?: unknown; expires_in?: unknown } | undefined;
  if (res.status !== 200 || typeof body?.access_token !== 'string') {
    throw new Error(`${target.name}: sample token request answered HTTP ${res.status}: ${short(res.text)}`);
  }
  if (body.token_type !== 'Bearer') throw new Error(`${target.name}: token_type is ${String(body.token_type)}, expected Bearer`);
  const token = body.access_token;
  const d = await discovery(target);
  const jwks = createLocalJWKSet(await getJson<JSONWebKeySet>(d.jwks_uri));
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new Error(`${target.name}: the access token is not a JWT`);
  }
  if (header.alg !== alg) throw new Error(`${target.name}: token signed with ${String(header.alg)}, expected ${alg}`);
  const { payload } = await jwtVerify(token, jwks, {
    issuer: d.issuer,
    audience: target.fixtures.resources[alg],
    typ: 'at+jwt',
    algorithms: [alg],
    requiredClaims: ['exp', 'iat', 'jti', 'client_id', 'sub'],
  }).catch((err: Error) => {
    throw new Error(`${target.name}: the ${alg} access token does not verify: ${err.message}`);
  });
  if (payload.client_id !== target.fixtures.clientId) throw new Error(`${target.name}: token client_id is ${String(payload.client_id)}`);
  const scopes = String(payload.scope ?? '').split(' ').sort().join(' ');
  const wanted = target.fixtures.scope.split(' ').sort().join(' ');
  if (scopes !== wanted) throw new Error(`${target.name}: token scope is '${String(payload.scope)}', expected '${target.fixtures.scope}'`);
  return token;
}
