// A tiny issuer for the verifier's unit tests: discovery + JWKS over node:http
// on 127.0.0.1, with locally generated keys, request counters and an outage switch.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(alg: 'RS256' | 'ES256' | 'EdDSA' = 'RS256', kid: string = randomUUID()): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

export interface StubIssuer {
  issuer: string;
  jwksUri: string;
  /** requests served per path */
  hits: { discovery: number; jwks: number };
  /** the keys the JWKS publishes */
  keys: TestKey[];
  /** when true, every endpoint answers 503 */
  down: boolean;
  /** overrides the `issuer` the metadata names */
  metadataIssuer?: string;
  close(): Promise<void>;
}

export async function startStubIssuer(keys: TestKey[] = []): Promise<StubIssuer> {
  const state: StubIssuer = {
    issuer: '',
    jwksUri: '',
    hits: { discovery: 0, jwks: 0 },
    keys,
    down: false,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      state.hits.discovery++;
      if (state.down) return send(503, { error: 'down' });
      return send(200, { issuer: state.metadataIssuer ?? state.issuer, jwks_uri: state.jwksUri, token_endpoint: `${state.issuer}/token` });
    }
    if (req.url === '/jwks') {
      state.hits.jwks++;
      if (state.down) return send(503, { error: 'down' });
      return send(200, { keys: state.keys.map((k) => k.publicJwk) });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  state.issuer = `http://127.0.0.1:${port}`;
  state.jwksUri = `${state.issuer}/jwks`;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

export const now = () => Math.floor(Date.now() / 1000);

/** An access token as Gatehouse issues it, with overridable claims and header. */
export async function accessToken(
  key: TestKey,
  claims: JWTPayload & Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    sub: 'frontend',
    client_id: 'frontend',
    scope: 'orders:read',
    jti: randomUUID(),
    iat: now(),
    exp: now() + 300,
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  const protectedHeader: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header };
  for (const k of Object.keys(protectedHeader)) if (protectedHeader[k] === undefined) delete protectedHeader[k];
  return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
}
