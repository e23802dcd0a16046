// The shape of a CLI command. Each domain adds its commands in
// src/cli/commands/<domain>.ts; src/cli/main.ts dispatches.
import type { ParseArgsConfig } from 'node:util';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/client.ts';
import type { Actor } from '../kernel/actor.ts';
import type { BackchannelSender } from '../oidc/sessions.ts';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** all of standard input (for --password-stdin); undefined when stdin is a TTY */
  readStdin: () => Promise<string | undefined>;
  /** asks interactively (TTY only); undefined when not possible */
  prompt?: (question: string, opts?: { secret?: boolean }) => Promise<string | undefined>;
}

export interface CommandContext {
  config: Config;
  /** the environment the configuration came from (apply reads an idp's clientSecretEnv from it) */
  env: Record<string, string | undefined>;
  /** opened lazily: commands that need no database never start one */
  db: () => Promise<Db>;
  /** the database URL in use (external or embedded) */
  databaseUrl: () => Promise<string>;
  io: CliIo;
  json: boolean;
  /** print a result: JSON with --json, else the human text */
  print: (human: string, json: unknown) => void;
  /**
   * Who makes the changes: the operating-system user who ran the command (an
   * operator, who may do anything). Every write goes through a domain write
   * function with it, which records it in the change's audit event.
   */
  actor: Actor;
  /** back-channel logout, sent with the current signing keys (opened lazily) */
  backchannel: BackchannelSender;
}

export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  /** words after `gatehouse`, e.g. 'clients create' */
  name: string;
  summary: string;
  /** usage line(s) and flag descriptions shown by --help */
  usage: string;
  options?: OptionSpec;
  /** positional arguments: exact count, or [min, max] */
  positionals?: number | [number, number];
  run(ctx: CommandContext, values: ParsedValues, positionals: string[]): Promise<number | void>;
}

/** Helpers for reading parsed flags with one-line errors. */
export const flags = {
  str(values: ParsedValues, name: string): string | undefined {
    const v = values[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new CliError(`--${name} needs a value`);
    return v;
  },
  required(values: ParsedValues, name: string): string {
    const v = flags.str(values, name);
    if (v === undefined || v === '') throw new CliError(`--${name} is required`);
    return v;
  },
  list(values: ParsedValues, name: string): string[] | undefined {
    const v = values[name];
    if (v === undefined) return undefined;
    const arr = Array.isArray(v) ? v : [v];
    return arr.map((x) => {
      if (typeof x !== 'string') throw new CliError(`--${name} needs a value`);
      return x;
    });
  },
  /** a repeatable flag whose values may hold several space-separated items */
  words(values: ParsedValues, name: string): string[] | undefined {
    const l = flags.list(values, name);
    return l?.flatMap((x) => x.split(/\s+/)).filter(Boolean);
  },
  bool(values: ParsedValues, name: string): boolean {
    return values[name] === true;
  },
  int(values: ParsedValues, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = flags.str(values, name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new CliError(`--${name} must be a whole number between ${min} and ${max}`);
    }
    return Number(v);
  },
};
