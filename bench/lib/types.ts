import type { SoftAuthenticator } from '../../test/helpers/webauthn.ts';
// The benchmark's vocabulary: targets (servers under load), scenarios (one
// kind of request against one target) and their measured results.
import type { Iteration, LoadSettings } from './load.ts';

/** The servers a scenario can aim at. Add a name here and in targets.ts to grow the set (e.g. a 2-worker Gatehouse). */
export type TargetName = 'gatehouse' | 'baseline' | `gatehouse-w${number}`;

export type Alg = 'RS256' | 'ES256' | 'EdDSA';
export const ALGS: readonly Alg[] = ['RS256', 'ES256', 'EdDSA'];

/** What every target registers before load: one confidential client allowed on one API per alg. */
export interface Fixtures {
  clientId: string;
  clientSecret: string;
  /** API resource identifier (the JWT `aud`) signed with each alg */
  resources: Record<Alg, string>;
  /** the scopes the client may request on every resource */
  scope: string;
  /** Gatehouse only: a first-party web client and accounts for the sign-in scenarios */
  web?: WebFixtures;
}

/** A confidential, first-party (no consent page) authorization_code + refresh_token client and its users. */
export interface WebFixtures {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** e-mail addresses of accounts that all have `password` */
  users: string[];
  password: string;
  /** accounts without a password, each with a passkey held by a software authenticator in the bench process */
  passkeyUsers?: { email: string; authenticator: SoftAuthenticator }[];
}

export interface ProcessRss {
  pid: number;
  role: string;
  rssKb: number;
}

export interface RunningTarget {
  name: TargetName;
  /** http://127.0.0.1:<port> (also the issuer) */
  url: string;
  pid: number;
  /** Date.now() when the server process was spawned (a CPU profile starts about then) */
  spawnedAt: number;
  fixtures: Fixtures;
  /** settings worth recording (workers, …) */
  info: Record<string, string | number | boolean>;
  /** Gatehouse targets: their database, for fixtures (never recorded: it may hold a password) */
  databaseUrl?: string;
  /** Gatehouse targets: where the preloaded statement counter (count-statements.mjs) writes its totals */
  statementsDir?: string;
  /** resident memory of the server process and its workers, read from /proc now */
  rss(): ProcessRss[];
  /** throws if the server process has exited */
  assertAlive(): void;
}

export interface TargetDefinition {
  name: TargetName;
  start(ctx: BenchContext, workers?: number): Promise<RunningTarget>;
}

export interface BenchContext {
  /** admin connection URL of the PostgreSQL server to create the bench database on */
  databaseServerUrl: string;
  /** Gatehouse WORKERS (each gatehouse target may override it) */
  workers: number;
  /** write V8 CPU profiles of the Gatehouse process(es) into this directory */
  cpuProfileDir?: string;
  /** cleanups that must run even when the bench fails (LIFO) */
  defer(fn: () => Promise<void> | void): void;
  log(line: string): void;
}

/** One HTTP request, repeated by every connection for the whole run. */
export interface LoadRequest {
  method: 'GET' | 'POST';
  /** path relative to the target's URL, e.g. /token */
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface ScenarioPlan {
  /** the request autocannon repeats … */
  request?: LoadRequest;
  /** … or a custom iteration (a refresh rotation, a whole login flow), run by `connections` concurrent loops */
  iteration?: Iteration;
  /** for custom loops: what one iteration is called in the output ('flow'); default 'req' */
  unit?: string;
  /** called after the measured run with its result, to add notes (e.g. the argon2 share) */
  after?: (r: ScenarioResult) => void;
  /** facts found while checking the sample response, printed and kept in the JSON */
  notes?: string[];
}

export interface Scenario {
  name: string;
  target: TargetName;
  /**
   * Scenarios with the same compareKey on gatehouse and baseline get a
   * "Gatehouse ÷ baseline" ratio line (e.g. 'client_credentials RS256').
   */
  compareKey?: string;
  /**
   * Runs once, before load: prepares what the request needs (tokens …),
   * sends one sample request and checks its answer, and returns the request
   * to repeat. Throw SkipScenario to leave the scenario out with a note.
   */
  setup(target: RunningTarget, load: LoadSettings): Promise<ScenarioPlan>;
}

export class SkipScenario extends Error {}

export interface ScenarioResult {
  name: string;
  target: TargetName;
  compareKey?: string;
  skipped?: string;
  requestsPerSec?: number;
  totalRequests?: number;
  latencyMs?: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** responses in each second of the measured run (autocannon scenarios) */
  perSecond?: number[];
  /** the warm-up before it: how long, whether the rate had become steady, responses per second */
  warmup?: { sec: number; steady: boolean; perSecond: number[] };
  errors?: number;
  errorDetail?: { non2xx: number; socketErrors: number; timeouts: number; statusCodes: Record<string, number> };
  rssMb?: number;
  /** cores used during the measured run: by the server, by autocannon, by the rest of the machine */
  cpu?: { serverCores: number; loadGeneratorCores: number; otherCores: number };
  rssByProcess?: { pid: number; role: string; mb: number }[];
  durationSec?: number;
  /** measured runs made (more than one when the machine was busy) */
  attempts?: number;
  /** the measured run, in seconds since the server process was spawned (for bench/profile-top.ts --from/--to) */
  windowSec?: [number, number];
  /** 'flow' for the login-flow scenario (req/s then means flows/s) */
  unit?: string;
  /** Gatehouse scenarios: database cost per operation (bench/lib/dbcost.ts) */
  dbCost?: import('./dbcost.ts').DbCost;
  /** scenario-specific figures (argon2 share …) */
  extra?: Record<string, unknown>;
  notes: string[];
}
