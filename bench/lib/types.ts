// The benchmark's vocabulary: targets (servers under load), scenarios (one
// kind of request against one target) and their measured results.

/** The servers a scenario can aim at. Add a name here and in targets.ts to grow the set (e.g. a 2-worker Gatehouse). */
export type TargetName = 'gatehouse' | 'baseline';

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
  /** resident memory of the server process and its workers, read from /proc now */
  rss(): ProcessRss[];
  /** throws if the server process has exited */
  assertAlive(): void;
}

export interface TargetDefinition {
  name: TargetName;
  start(ctx: BenchContext): Promise<RunningTarget>;
}

export interface BenchContext {
  /** admin connection URL of the PostgreSQL server to create the bench database on */
  databaseServerUrl: string;
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
  request: LoadRequest;
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
  setup(target: RunningTarget): Promise<ScenarioPlan>;
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
  notes: string[];
}
