// The scenario list. A scenario = { name, target, setup() → request }: setup
// prepares and checks one sample answer, the runner then repeats the request
// for BENCH_DURATION seconds with BENCH_CONNECTIONS connections.
//
// To add one (issue 7: refresh, login flow, userinfo, /jwks, 2 workers), push
// an object here; a new server kind goes into TargetName + targets.ts.
import { clientCredentialsRequest, discovery, endpointPath, introspectionRequest, sampleAccessToken, send } from './lib/oauth.ts';
import { ALGS, SkipScenario, type Alg, type Scenario, type TargetName } from './lib/types.ts';

function clientCredentials(target: TargetName, alg: Alg): Scenario {
  return {
    name: `${target} client_credentials ${alg}`,
    target,
    compareKey: `client_credentials ${alg}`,
    async setup(t) {
      const request = await clientCredentialsRequest(t, alg);
      await sampleAccessToken(t, request, alg);
      return { request };
    },
  };
}

/** POST /token/introspection of a JWT access token, by the client that got it. */
function introspectJwt(target: TargetName, alg: Alg): Scenario {
  return {
    name: `${target} introspection JWT ${alg}`,
    target,
    compareKey: `introspection JWT ${alg}`,
    async setup(t) {
      const token = await sampleAccessToken(t, await clientCredentialsRequest(t, alg), alg);
      const request = await introspectionRequest(t, token);
      const res = await send(t, request);
      const body = res.body as { active?: unknown; client_id?: unknown; aud?: unknown } | undefined;
      if (res.status !== 200 || typeof body?.active !== 'boolean') {
        throw new Error(`${t.name}: sample introspection answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
      }
      const notes: string[] = [];
      if (body.active) {
        if (body.client_id !== t.fixtures.clientId) throw new Error(`${t.name}: introspection names client_id ${String(body.client_id)}`);
        notes.push('introspection answers active:true for the JWT');
      } else {
        notes.push('introspection answered active:false for a valid JWT access token (JWT introspection not in place yet); measured anyway');
      }
      return { request, notes };
    },
  };
}

/** Introspection of an opaque access token; Gatehouse mints opaque ones only on sign-in flows. */
function introspectOpaque(target: TargetName): Scenario {
  return {
    name: `${target} introspection opaque`,
    target,
    async setup() {
      throw new SkipScenario(
        'skipped: Gatehouse issues opaque access tokens only on sign-in flows (authorization_code); client_credentials always yields JWTs. Needs the login-flow scenario of issue 7.',
      );
    },
  };
}

/** GET of a public endpoint (e.g. /jwks): cheap, for later suites. */
export function getEndpoint(target: TargetName, name: string, pick: 'jwks_uri'): Scenario {
  return {
    name: `${target} ${name}`,
    target,
    compareKey: name,
    async setup(t) {
      const request = { method: 'GET' as const, path: endpointPath(t, (await discovery(t))[pick]) };
      const res = await send(t, request);
      if (res.status !== 200) throw new Error(`${t.name}: sample GET ${request.path} answered HTTP ${res.status}`);
      return { request };
    },
  };
}

export const SCENARIOS: Scenario[] = [
  // Gatehouse and baseline alternate per alg so that drift in machine load hits both alike.
  ...ALGS.flatMap((alg) => [clientCredentials('gatehouse', alg), clientCredentials('baseline', alg)]),
  introspectJwt('gatehouse', 'RS256'),
  introspectOpaque('gatehouse'),
];
