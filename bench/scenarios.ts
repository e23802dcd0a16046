// The scenario list. A scenario = { name, target, setup() → plan }: setup
// prepares and checks one sample answer, the runner then repeats the plan's
// request (autocannon) or its custom iteration (refresh rotation, login flow)
// for BENCH_DURATION seconds with BENCH_CONNECTIONS connections / loops.
//
// To add one, push an object here; a new server kind goes into TargetName + targets.ts.
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../src/accounts/passwords.ts';
import { loginFlow, passkeyLoginFlow, refreshTokens, userinfo } from './lib/browser.ts';
import type { LoadSettings } from './lib/load.ts';
import { clientCredentialsRequest, discovery, endpointPath, introspectionRequest, basicAuth, sampleAccessToken, send } from './lib/oauth.ts';
import { ALGS, SkipScenario, type Alg, type RunningTarget, type Scenario, type TargetName, type WebFixtures } from './lib/types.ts';

/** Scenario names show 'gatehouse' whatever the Gatehouse target (gatehouse-w2 …); run.ts adds the [wN] suffix. */
const label = (target: TargetName) => (target.startsWith('gatehouse') ? 'gatehouse' : target);

function clientCredentials(target: TargetName, alg: Alg): Scenario {
  return {
    name: `${label(target)} client_credentials ${alg}`,
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
    name: `${label(target)} introspection JWT ${alg}`,
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

function webOf(t: RunningTarget): WebFixtures {
  if (!t.fixtures.web) throw new Error(`${t.name}: no web client fixtures`);
  return t.fixtures.web;
}

/** Introspection of an opaque access token (from a real sign-in done in setup), by the web client that got it. */
function introspectOpaque(target: TargetName): Scenario {
  return {
    name: `${label(target)} introspection opaque`,
    target,
    async setup(t) {
      const web = webOf(t);
      const { tokens } = await loginFlow(t, web, web.users[0]!, { scope: 'openid profile email', userinfo: false });
      const notes: string[] = [];
      if (tokens.access_token.split('.').length === 3) notes.push('the sign-in access token is a JWT, not opaque; measured anyway');
      const request = {
        method: 'POST' as const,
        path: endpointPath(t, (await discovery(t)).introspection_endpoint ?? `${t.url}/token/introspection`),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(web.clientId, web.clientSecret) },
        body: new URLSearchParams({ token: tokens.access_token, token_type_hint: 'access_token' }).toString(),
      };
      const res = await send(t, request);
      const body = res.body as { active?: unknown } | undefined;
      if (res.status !== 200 || body?.active !== true) throw new Error(`${t.name}: sample opaque introspection answered HTTP ${res.status}: ${res.text.slice(0, 200)}`);
      return { request, notes };
    },
  };
}

/** GET /me with a valid access token from a sign-in done in setup. */
function userinfoScenario(target: TargetName): Scenario {
  return {
    name: `${label(target)} userinfo`,
    target,
    async setup(t) {
      const web = webOf(t);
      const { tokens } = await loginFlow(t, web, web.users[1]!, { scope: 'openid profile email', userinfo: false });
      const me = await userinfo(t, tokens.access_token);
      if (typeof me.sub !== 'string') throw new Error(`${t.name}: /me answered without sub`);
      const kind = tokens.access_token.split('.').length === 3 ? 'JWT' : 'opaque';
      return {
        request: { method: 'GET', path: '/me', headers: { authorization: `Bearer ${tokens.access_token}` } },
        notes: [`GET /me with an ${kind} access token (scope openid profile email)`],
      };
    },
  };
}

/**
 * refresh_token rotation: each loop (virtual user) holds the refresh token of
 * its own sign-in done in setup and rotates it, always presenting the newest.
 */
function refreshRotation(target: TargetName): Scenario {
  return {
    name: `${label(target)} refresh_token rotation`,
    target,
    async setup(t, load: LoadSettings) {
      const web = webOf(t);
      const current: string[] = [];
      for (let vu = 0; vu < load.connections; vu++) {
        const { tokens } = await loginFlow(t, web, web.users[vu % web.users.length]!, { scope: 'openid offline_access', userinfo: false });
        if (!tokens.refresh_token) throw new Error(`${t.name}: sign-in with offline_access gave no refresh_token`);
        current.push(tokens.refresh_token);
      }
      // sample: one rotation must give a new refresh token
      const sample = await refreshTokens(t, web, current[0]!);
      if (!sample.refresh_token || sample.refresh_token === current[0]) throw new Error(`${t.name}: refresh did not rotate the refresh token`);
      current[0] = sample.refresh_token;
      return {
        iteration: async (vu) => {
          const next = await refreshTokens(t, web, current[vu]!);
          if (!next.refresh_token) throw new Error('refresh answer without refresh_token');
          current[vu] = next.refresh_token;
        },
        notes: [`${load.connections} users signed in through the pages in setup; each loop rotates its own refresh token (custom loop, fetch keep-alive)`],
      };
    },
  };
}

let verifyMsCache: number | undefined;
/** CPU ms of one argon2.verify at ARGON2_PARAMS, timed in the bench process (sequential, after 2 warm-up calls). */
async function argon2VerifyMs(): Promise<number> {
  if (verifyMsCache === undefined) {
    const hash = await argon2Hash('bench password for timing', ARGON2_PARAMS);
    for (let i = 0; i < 2; i++) await argon2Verify(hash, 'bench password for timing');
    const n = 10;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await argon2Verify(hash, 'bench password for timing');
    const wallMs = (performance.now() - t0) / n;
    const c = process.cpuUsage(c0);
    // process.cpuUsage counts every thread of the bench process, so also the libuv pool thread that ran the verify
    const cpuMs = (c.user + c.system) / 1000 / n;
    verifyMsCache = Math.round((cpuMs > 0 ? cpuMs : wallMs) * 100) / 100;
  }
  return verifyMsCache;
}

/**
 * The whole sign-in, once per iteration: GET /auth → login page → POST login
 * (argon2id verify) → redirect with the code → POST /token (PKCE) → GET /me.
 * Each loop uses its own account among the 50 in turn, with a fresh cookie jar.
 */
function loginFlowScenario(target: TargetName): Scenario {
  return {
    name: `${label(target)} login flow`,
    target,
    compareKey: 'login flow',
    async setup(t) {
      const web = webOf(t);
      const sample = await loginFlow(t, web, web.users[2]!, { scope: 'openid profile email', userinfo: true });
      const verifyMs = await argon2VerifyMs();
      let next = 0;
      return {
        unit: 'flow',
        iteration: async () => {
          const user = web.users[next++ % web.users.length]!;
          await loginFlow(t, web, user, { scope: 'openid profile email', userinfo: true });
        },
        notes: [
          `one flow = GET /auth → login page → POST login → code → POST /token → GET /me (${Object.values(sample.timings).length} steps, sample ${Math.round(Object.values(sample.timings).reduce((a, b) => a + b, 0))} ms)`,
        ],
        after(r) {
          const serverCpuMs = (r.cpu?.serverCores ?? 0) * (r.durationSec ?? 0) * 1000;
          const flows = r.totalRequests ?? 0;
          const share = serverCpuMs > 0 ? (flows * verifyMs) / serverCpuMs : 0;
          const perCore = r.cpu?.serverCores ? (r.requestsPerSec ?? 0) / r.cpu.serverCores : 0;
          r.extra = { argon2VerifyMs: verifyMs, serverCpuMs: Math.round(serverCpuMs), argon2Share: Math.round(share * 1000) / 1000, flowsPerCoreSec: Math.round(perCore * 10) / 10 };
          r.notes.push(
            `argon2 share of server CPU ≈ ${(share * 100).toFixed(0)}% (= ${flows} flows × ${verifyMs} ms per argon2.verify at OWASP params, timed alone in the bench process ÷ ${Math.round(serverCpuMs)} ms server CPU from /proc during the run); ` +
              `${perCore.toFixed(1)} flows per server core-second`,
          );
        },
      };
    },
  };
}

/**
 * The passwordless sign-in with a passkey, once per iteration: GET /auth →
 * login page → a software authenticator (ES256, in the bench process) signs
 * the page's challenge → POST passkey → code → POST /token → GET /me. Beside the
 * password flow: no argon2 on this path.
 */
function passkeyFlowScenario(target: TargetName): Scenario {
  return {
    name: `${label(target)} passkey login flow`,
    target,
    compareKey: 'passkey login flow',
    async setup(t) {
      const web = webOf(t);
      const users = web.passkeyUsers ?? [];
      if (users.length === 0) throw new SkipScenario('this target has no passkey users');
      const sample = await passkeyLoginFlow(t, web, users[0]!);
      let next = 0;
      return {
        unit: 'flow',
        iteration: async () => {
          await passkeyLoginFlow(t, web, users[next++ % users.length]!);
        },
        notes: [
          `one flow = GET /auth → login page → passkey assertion (ES256, signed in the bench process) → POST passkey → code → POST /token → GET /me (sample ${Math.round(Object.values(sample.timings).reduce((a, b) => a + b, 0))} ms)`,
        ],
        after(r) {
          const perCore = r.cpu?.serverCores ? (r.requestsPerSec ?? 0) / r.cpu.serverCores : 0;
          r.extra = { flowsPerCoreSec: Math.round(perCore * 10) / 10 };
          r.notes.push(`${perCore.toFixed(1)} flows per server core-second`);
        },
      };
    },
  };
}

/** GET of a public endpoint (e.g. /jwks). */
export function getEndpoint(target: TargetName, name: string, pick: 'jwks_uri'): Scenario {
  return {
    name: `${label(target)} ${name}`,
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

/** Every Gatehouse scenario besides client_credentials, for one Gatehouse target. */
export function gatehouseExtras(target: TargetName): Scenario[] {
  return [
    introspectJwt(target, 'RS256'),
    introspectOpaque(target),
    refreshRotation(target),
    userinfoScenario(target),
    getEndpoint(target, 'jwks', 'jwks_uri'),
    loginFlowScenario(target),
    passkeyFlowScenario(target),
  ];
}

/** The full suite on 'gatehouse' (first of BENCH_WORKERS_LIST) and the baseline. */
export const SCENARIOS: Scenario[] = [
  // Gatehouse and baseline alternate per alg so that drift in machine load hits both alike.
  ...ALGS.flatMap((alg) => [clientCredentials('gatehouse', alg), clientCredentials('baseline', alg)]),
  ...gatehouseExtras('gatehouse'),
  getEndpoint('baseline', 'jwks', 'jwks_uri'),
];

/** What runs on each further Gatehouse of BENCH_WORKERS_LIST (gatehouse-w2 …). */
export function workerScenarios(target: TargetName): Scenario[] {
  const all = [clientCredentials(target, 'RS256'), ...gatehouseExtras(target)];
  const keep = ['client_credentials RS256', 'refresh_token rotation', 'userinfo', 'login flow'];
  return all.filter((s) => keep.some((k) => s.name.endsWith(k)));
}
