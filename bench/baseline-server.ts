// The bare baseline: oidc-provider alone, in-memory storage (its default
// MemoryAdapter), one static confidential client, client_credentials with
// JWT access tokens for fixed resources — no Gatehouse code. What it serves
// on this machine is the library's ceiling that Gatehouse is compared with.
//
// Environment (set by bench/run.ts):
//   PORT                  port on 127.0.0.1
//   BENCH_CLIENT_ID       the static client
//   BENCH_CLIENT_SECRET
//   BENCH_RESOURCES       JSON {"RS256": "<identifier>", "ES256": …, "EdDSA": …}
//   BENCH_SCOPE           space-separated scopes the client gets on every resource
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, type Configuration } from 'oidc-provider';

type Alg = 'RS256' | 'ES256' | 'EdDSA';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

async function signingKey(alg: Alg): Promise<JWK> {
  // Same key types as Gatehouse: RSA 2048, P-256, Ed25519.
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `${alg}-${randomBytes(4).toString('hex')}`, alg, use: 'sig' };
}

async function main(): Promise<void> {
  const port = Number(need('PORT'));
  const clientId = need('BENCH_CLIENT_ID');
  const clientSecret = need('BENCH_CLIENT_SECRET');
  const resources = JSON.parse(need('BENCH_RESOURCES')) as Record<Alg, string>;
  const scope = need('BENCH_SCOPE');
  const algByResource = new Map<string, Alg>(Object.entries(resources).map(([alg, id]) => [id, alg as Alg]));

  const issuer = `http://127.0.0.1:${port}`;
  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: await Promise.all((['RS256', 'ES256', 'EdDSA'] as const).map(signingKey)) } as Configuration['jwks'],
    scopes: scope.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, identifier) => {
          const alg = algByResource.get(identifier);
          if (!alg) throw new errors.InvalidTarget();
          return { audience: identifier, scope, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
        },
      },
    },
  };
  const provider = new Provider(issuer, configuration);
  const server = http.createServer(provider.callback());
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  process.stdout.write(`baseline listening on ${issuer}\n`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 3_000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`baseline: ${(err as Error).message}\n`);
  process.exit(1);
});
