// Runs `gatehouse …` in-process against a test database and captures output.
import { runCli } from '../../src/cli/main.ts';
import type { Env } from '../../src/config/config.ts';
import { testEnv } from './env.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs) */
  json: <T = unknown>() => T;
}

export async function cli(databaseUrl: string, args: string[], opts: { stdin?: string; env?: Env } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env: testEnv(databaseUrl, opts.env),
    io: {
      stdout: (s) => void (stdout += s),
      stderr: (s) => void (stderr += s),
      readStdin: async () => opts.stdin,
      prompt: async () => undefined,
    },
  });
  return { code, stdout, stderr, json: <T,>() => JSON.parse(stdout) as T };
}
