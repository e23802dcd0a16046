#!/usr/bin/env node
// `gatehouse <command>`: parses arguments, opens the database lazily, runs
// the command, and turns every failure into one line on stderr and a
// non-zero exit code.
import './runtime-warning.ts';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { ConfigError, loadConfig, type Config, type Env } from '../config/config.ts';
import { openDb, type Db, type DbHandle } from '../db/client.ts';
import { locateDatabase, type DatabaseLocation } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { operator } from '../kernel/actor.ts';
import { ensureBuiltInResources } from '../resources/store.ts';
import { userInfo } from 'node:os';
import { backchannelSender } from '../oidc/sessions.ts';
import { standaloneProvider } from '../oidc/standalone.ts';
import { CliError, type CliIo, type Command, type CommandContext } from './command.ts';
import { commands } from './commands/index.ts';
import { installPolicyGuard } from '../access/enforce.ts';

const GLOBAL_HELP = (cmds: Command[]) => `Usage: gatehouse <command> [options]

Gatehouse — OAuth 2.0 / OpenID Connect identity provider.

Commands:
${cmds.map((c) => `  ${c.name.padEnd(24)} ${c.summary}`).join('\n')}

Every command takes --json for machine-readable output and --help; a
command's flags may also come before its name. --version prints the version.
Configuration comes from the environment (see .env.example); with no
DATABASE_URL the embedded PostgreSQL under ./.data is used.
`;

function commandHelp(c: Command): string {
  return `Usage: gatehouse ${c.name} ${c.usage.trim()}\n\n${c.summary}\n`;
}

/** Who runs the CLI, for the audit trail (the OS account; SUDO_USER when run through sudo). */
function cliUser(): string {
  try {
    return process.env.SUDO_USER || userInfo().username;
  } catch {
    return 'unknown';
  }
}

export interface RunOptions {
  env?: Env;
  io?: Partial<CliIo>;
  /** reuse an open database (tests) instead of locating one from the config */
  db?: Db;
  databaseUrl?: string;
}

function defaultIo(): CliIo {
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readStdin: async () => {
      if (process.stdin.isTTY) return undefined;
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    prompt: async (question, opts) => {
      if (!process.stdin.isTTY) return undefined;
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      const rlo = rl as unknown as { _writeToOutput?: (s: string) => void; output: NodeJS.WritableStream };
      if (opts?.secret) {
        // echo nothing while typing a password
        rlo._writeToOutput = (s: string) => {
          if (s.includes(question)) rlo.output.write(s);
        };
      }
      try {
        return await new Promise<string>((resolve) => rl.question(question, resolve));
      } finally {
        if (opts?.secret) process.stderr.write('\n');
        rl.close();
      }
    },
  };
}

/** Flags that take a value in some command: their values are never command words. */
const VALUE_FLAGS = new Set(
  commands.flatMap((c) =>
    Object.entries(c.options ?? {})
      .filter(([, o]) => o.type === 'string')
      .flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]),
  ),
);

/** Indexes in argv of the words that are neither flags nor flag values. */
function wordIndexes(argv: string[]): number[] {
  const words: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUE_FLAGS.has(a)) i++; // `--workers 2`: skip the value (`--workers=2` is one token)
      continue;
    }
    words.push(i);
  }
  return words;
}

/** Finds the longest command name matching the leading words of argv (flags may come first). */
function findCommand(argv: string[]): { cmd: Command; rest: string[] } | undefined {
  const at = wordIndexes(argv);
  for (let n = Math.min(3, at.length); n > 0; n--) {
    const name = at
      .slice(0, n)
      .map((i) => argv[i])
      .join(' ');
    const cmd = commands.find((c) => c.name === name);
    if (cmd) {
      const taken = new Set(at.slice(0, n));
      return { cmd, rest: argv.filter((_, i) => !taken.has(i)) };
    }
  }
  return undefined;
}

/** node:util parseArgs errors as one line in our words (its own text has an unbalanced quote). */
function argumentError(err: unknown): string {
  const { code, message = '' } = err as { code?: string; message?: string };
  const option = /'(?:-\w, )?(-[^' ]+)/.exec(message)?.[1];
  if (option && code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option '${option}'`;
  if (option && code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/argument missing/.test(message)) return `option '${option}' needs a value`;
    if (/does not take an argument/.test(message)) return `option '${option}' takes no value`;
    if (/ambiguous/.test(message)) return `option '${option}' needs a value (to give one starting with a dash, write ${option}=-VALUE)`;
  }
  return message.split('\n')[0]!.replace(/\.$/, '');
}

let packageVersion: string | undefined;
/** The version in package.json (next to dist/ and src/ alike). */
export function version(): string {
  packageVersion ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return packageVersion;
}

export async function runCli(argv: string[], opts: RunOptions = {}): Promise<number> {
  // every registry write checks the stored access policies (src/access/enforce.ts, src/kernel/guard.ts)
  installPolicyGuard();
  const io: CliIo = { ...defaultIo(), ...opts.io };
  const json = argv.includes('--json');
  const fail = (message: string, code = 1) => {
    io.stderr(`gatehouse: ${message}\n`);
    return code;
  };
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(GLOBAL_HELP(commands));
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    io.stdout(json ? `${JSON.stringify({ version: version() })}\n` : `gatehouse ${version()}\n`);
    return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length > 0 && (argv.includes('--help') || argv.length === 1)) {
      io.stdout(`Usage: gatehouse ${argv[0]} <command>\n\n${group.map((c) => `  ${c.name.padEnd(28)} ${c.summary}`).join('\n')}\n`);
      return argv.includes('--help') ? 0 : 2;
    }
    const words = wordIndexes(argv).map((i) => argv[i]);
    if (words.length === 0) return fail(`no command given (see gatehouse --help)`, 2);
    return fail(`unknown command '${words.slice(0, 2).join(' ')}' (see gatehouse --help)`, 2);
  }
  const { cmd, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(commandHelp(cmd));
    return 0;
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: rest,
      options: { ...cmd.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values;
    positionals = parsed.positionals;
  } catch (err) {
    return fail(`${argumentError(err)} (see gatehouse ${cmd.name} --help)`, 2);
  }
  const [min, max] = typeof cmd.positionals === 'number' ? [cmd.positionals, cmd.positionals] : (cmd.positionals ?? [0, 0]);
  if (positionals.length < min || positionals.length > max) {
    return fail(
      positionals.length < min ? `missing argument (usage: gatehouse ${cmd.name} ${cmd.usage.split('\n')[0]!.trim()})` : `unexpected argument '${positionals[max]}'`,
      2,
    );
  }

  let config: Config;
  try {
    config = loadConfig(opts.env ?? process.env);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }

  let location: DatabaseLocation | undefined;
  let handle: DbHandle | undefined;
  /** the pool of the provider that sends back-channel logout (only when needed) */
  let providerDb: DbHandle | undefined;
  const databaseUrl = async () => {
    if (opts.databaseUrl) return opts.databaseUrl;
    if (!location) {
      location = await locateDatabase(config);
      // CLI commands may be the first thing run on a fresh install.
      if (cmd.name !== 'migrate') await migrate(location.url);
    }
    return location.url;
  };
  const ctx: CommandContext = {
    config,
    env: opts.env ?? process.env,
    json,
    io,
    databaseUrl,
    db: async () => {
      if (opts.db) return opts.db;
      if (!handle) {
        handle = openDb({ url: await databaseUrl(), poolSize: 2 });
        // the built-in admin API resource and role exist before any command looks (idempotent)
        if (cmd.name !== 'migrate') await ensureBuiltInResources(handle.prisma);
      }
      return handle.prisma;
    },
    actor: operator(cliUser()),
    backchannel: backchannelSender(async () => {
      providerDb ??= openDb({ url: await databaseUrl(), poolSize: 2 });
      return standaloneProvider(config, providerDb);
    }),
    print: (human, value) => {
      if (json) io.stdout(JSON.stringify(value, null, 2) + '\n');
      else if (human) io.stdout(human.endsWith('\n') ? human : human + '\n');
    },
  };
  try {
    const code = await cmd.run(ctx, values, positionals);
    return code ?? 0;
  } catch (err) {
    if (err instanceof CliError) return fail(err.message, err.exitCode);
    // Domain errors carry one-line messages meant for the user.
    const message = (err as Error).message?.trim().split('\n')[0];
    return fail(message || 'unexpected error');
  } finally {
    await handle?.close();
    await providerDb?.close();
    await location?.release();
  }
}

// Run when executed directly (bin/gatehouse.js or tsx src/cli/main.ts).
const invoked = process.argv[1] ?? '';
if (/(?:cli[\\/]main\.[jt]s|gatehouse(?:\.js)?)$/.test(invoked)) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`gatehouse: ${(err as Error).message?.split('\n')[0] ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
