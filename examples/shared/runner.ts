// Starts an example system on 127.0.0.1: Gatehouse (on the embedded database
// under DATA_DIR, on DATABASE_URL, or on a database a test hands over), the
// example's config through `gatehouse apply -f <its gatehouse.yaml> --json`,
// its demo users through `gatehouse users create`, and then its services,
// each given only its settings and its own client secret (as a real
// deployment would put them in the environment).
//
// Unlike the services, the runner is Gatehouse's operator and uses its code
// (server and CLI) directly.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config/config.ts';
import { locateDatabase, type DatabaseLocation } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { startHttpServer, type RunningServer } from '../../src/server.ts';
import { eventually } from './http.ts';
import type { Env, LogSink, ServiceHandle } from './service.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface DemoUser {
  email: string;
  name: string;
  password: string;
}

/** What a service's settings are computed from. */
export interface WiringContext {
  issuer: string;
  /** URLs of the services started before this one, by name */
  urls: Record<string, string>;
  /** the generated secret of a confidential client */
  secret(clientId: string): string;
  /** the demo users, with their account ids */
  users: (DemoUser & { id: string })[];
}

export interface ExampleService {
  name: string;
  /** the port of the interactive run (busy → any free port); tests always use free ports */
  port: number;
  /** the service's environment: issuer, its own client credentials, the URLs it calls */
  env(ctx: WiringContext): Env;
  start(env: Env, log: LogSink): Promise<ServiceHandle>;
}

/** A web client whose redirect URIs point at one of the services. */
export interface WebClient {
  clientId: string;
  service: string;
  redirectPaths: string[];
  postLogoutPaths: string[];
}

export interface ExampleSpec {
  name: string;
  /** the apply file, relative to the repository root */
  configFile: string;
  /** Gatehouse's port in the interactive run */
  gatehousePort: number;
  users: DemoUser[];
  /** in start order: a service's `env` sees the URLs of those before it */
  services: ExampleService[];
  webClients?: WebClient[];
}

export interface StartOptions {
  /** a migrated database to use (tests); default DATABASE_URL, else the embedded one under dataDir */
  databaseUrl?: string;
  /** default .data/example-<name> */
  dataDir?: string;
  /** Gatehouse's environment before the runner's settings (default process.env) */
  baseEnv?: Env;
  /** interactive run: use the spec's ports when free */
  fixedPorts?: boolean;
  /** where the services' audit lines go */
  log?: LogSink;
  /** progress lines while starting */
  progress?: (line: string) => void;
}

export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunningExample {
  name: string;
  issuer: string;
  /** service URLs by name, and `gatehouse` */
  urls: Record<string, string>;
  /** client secrets by client id (handed to the services; also used by the walk-through) */
  secrets: Record<string, string>;
  /** demo users by email, with their account id (the `sub` of their tokens) */
  users: Record<string, DemoUser & { id: string }>;
  services: Record<string, ServiceHandle>;
  /** runs `gatehouse …` against this system's database */
  cli(args: string[], stdin?: string): Promise<CliOutput>;
  close(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

async function choosePort(preferred: number, fixed: boolean): Promise<number> {
  if (fixed && preferred > 0 && (await portFree(preferred))) return preferred;
  return freePort();
}

interface FileClient {
  id: string;
  public?: boolean;
  authMethod?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
}

export async function startExample(spec: ExampleSpec, opts: StartOptions = {}): Promise<RunningExample> {
  const progress = opts.progress ?? (() => {});
  const configFile = path.resolve(REPO_ROOT, spec.configFile);
  const fileClients = ((parseYaml(readFileSync(configFile, 'utf8')) as { clients?: FileClient[] }).clients ?? []).filter((c) => typeof c?.id === 'string');
  const stack: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const fn of stack.splice(0).reverse()) await fn().catch((err: unknown) => console.error(`shutdown: ${(err as Error).message}`));
  };

  try {
    const fixed = opts.fixedPorts ?? false;
    const port = await choosePort(spec.gatehousePort, fixed);
    const issuer = `http://127.0.0.1:${port}`;
    const base = opts.baseEnv ?? process.env;
    const env: Env = {
      LOG_LEVEL: 'warn',
      ...base,
      DATA_DIR: opts.dataDir ?? path.join(REPO_ROOT, '.data', `example-${spec.name}`),
      HOST: '127.0.0.1',
      PORT: String(port),
      ISSUER: issuer,
      WORKERS: '1',
    };
    if (opts.databaseUrl) env.DATABASE_URL = opts.databaseUrl;
    const config = loadConfig(env);

    // the database
    let databaseUrl = opts.databaseUrl;
    if (!databaseUrl) {
      progress(config.databaseUrl ? 'database: DATABASE_URL' : `database: embedded PostgreSQL in ${path.relative(process.cwd(), config.dataDir) || '.'}/pg (first start takes a few seconds)`);
      const location: DatabaseLocation = await locateDatabase(config);
      stack.push(() => location.release());
      databaseUrl = location.url;
      await migrate(databaseUrl);
    }
    const dbUrl = databaseUrl;

    // Gatehouse
    const running: RunningServer = await startHttpServer(config, dbUrl, createLogger(config.logLevel));
    stack.push(() => running.shutdown());
    progress(`gatehouse: ${issuer}`);

    const cli = async (args: string[], stdin?: string): Promise<CliOutput> => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, {
        env,
        databaseUrl: dbUrl,
        io: { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), readStdin: async () => stdin, prompt: async () => undefined },
      });
      return { code, stdout, stderr };
    };
    const mustCli = async (args: string[], stdin?: string): Promise<string> => {
      const r = await cli(args, stdin);
      if (r.code !== 0) throw new Error(`gatehouse ${args.join(' ')}: ${r.stderr.trim()}`);
      return r.stdout;
    };

    // the example's clients, APIs and roles: exactly the file, through apply
    const applied = JSON.parse(await mustCli(['apply', '-f', configFile, '--json'])) as {
      create: unknown[];
      update: unknown[];
      secrets: { client_id: string; client_secret: string }[];
    };
    progress(`gatehouse apply -f ${spec.configFile}: ${applied.create.length} created, ${applied.update.length} updated`);
    const secrets: Record<string, string> = Object.fromEntries(applied.secrets.map((s) => [s.client_id, s.client_secret]));
    // A client created by an earlier run got its secret then (shown once, not
    // kept): give it a new one. The old one stays valid for the rotation grace.
    for (const c of fileClients) {
      const confidential = !c.public && c.authMethod !== 'private_key_jwt' && c.authMethod !== 'none';
      if (!confidential || secrets[c.id]) continue;
      const r = JSON.parse(await mustCli(['clients', 'rotate-secret', c.id, '--json'])) as { client_secret: string };
      secrets[c.id] = r.client_secret;
    }

    // demo users
    const users: RunningExample['users'] = {};
    for (const u of spec.users) {
      let created = await cli(['users', 'create', '--email', u.email, '--name', u.name, '--email-verified', '--password-stdin', '--json'], u.password);
      if (created.code !== 0) {
        // kept from an earlier run: reset its password to the demo one
        await mustCli(['users', 'set-password', u.email, '--password-stdin'], u.password);
        created = { ...created, stdout: await mustCli(['users', 'show', u.email, '--json']) };
      }
      users[u.email] = { ...u, id: (JSON.parse(created.stdout) as { id: string }).id };
    }

    // the services, in order
    const urls: Record<string, string> = { gatehouse: issuer };
    const services: Record<string, ServiceHandle> = {};
    const log = opts.log ?? (() => {});
    const secret = (id: string) => {
      const s = secrets[id];
      if (!s) throw new Error(`no secret for client ${id}`);
      return s;
    };
    for (const s of spec.services) {
      const servicePort = await choosePort(s.port, fixed);
      const handle = await s.start({ ...s.env({ issuer, urls: { ...urls }, secret, users: Object.values(users) }), PORT: String(servicePort) }, log);
      stack.push(() => handle.close());
      services[s.name] = handle;
      urls[s.name] = handle.url;
    }

    // web clients' redirect URIs follow their service's real address
    for (const w of spec.webClients ?? []) {
      const file = fileClients.find((c) => c.id === w.clientId);
      const redirect = w.redirectPaths.map((p) => `${urls[w.service]}${p}`);
      const postLogout = w.postLogoutPaths.map((p) => `${urls[w.service]}${p}`);
      const same = (a: string[] | undefined, b: string[]) => JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...b].sort());
      if (file && same(file.redirectUris, redirect) && same(file.postLogoutRedirectUris, postLogout)) continue;
      await mustCli([
        'clients',
        'update',
        w.clientId,
        ...redirect.flatMap((u) => ['--redirect-uri', u]),
        ...postLogout.flatMap((u) => ['--post-logout-redirect-uri', u]),
      ]);
      progress(`${w.clientId}: redirect URIs moved to ${urls[w.service]} (not the address in ${spec.configFile})`);
      // bounded wait until every Gatehouse cache has the new URIs: /auth accepts the redirect URI
      const probe = new URLSearchParams({ client_id: w.clientId, response_type: 'code', scope: 'openid', redirect_uri: redirect[0]!, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const accepted = await eventually(async () => {
        const res = await fetch(`${issuer}/auth?${probe}`, { redirect: 'manual' });
        await res.body?.cancel();
        return res.status >= 300 && res.status < 400;
      });
      if (!accepted) throw new Error(`${w.clientId}: Gatehouse did not take the new redirect URIs`);
    }

    return { name: spec.name, issuer, urls, secrets, users, services, cli, close };
  } catch (err) {
    await close();
    throw err;
  }
}
