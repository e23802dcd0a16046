// gatehouse serve | migrate
import { CliError, flags, type Command } from '../command.ts';
import { migrate } from '../../db/migrate.ts';

export const serverCommands: Command[] = [
  {
    name: 'serve',
    summary: 'run the Gatehouse server (applies migrations first)',
    usage: `[--workers N]

  --workers N   HTTP worker processes (default: WORKERS or 1)`,
    options: { workers: { type: 'string' } },
    async run(ctx, values) {
      const workers = flags.int(values, 'workers', 1, 64) ?? ctx.config.workers;
      const { serve } = await import('../../server.ts');
      const code = await serve({ ...ctx.config, workers });
      // Whatever handle is left (an IPC channel, a straggling socket) must not
      // keep a stopped server alive.
      setTimeout(() => process.exit(code), 200).unref();
      return code;
    },
  },
  {
    name: 'migrate',
    summary: 'apply pending database migrations and exit',
    usage: '',
    async run(ctx) {
      const url = await ctx.databaseUrl();
      const result = await migrate(url).catch((err: Error) => {
        throw new CliError(err.message);
      });
      ctx.print(
        result.applied.length > 0
          ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`
          : `database is up to date (${result.alreadyApplied} migration(s) applied)`,
        result,
      );
    },
  },
];
