// gatehouse access-map | check: who can reach what (src/access), and a file's
// policies checked against the current state without changing anything.
//
// access-map --json prints the AccessMapView of src/access/views.ts:
// {query, entries:[{principal, api, scope, sensitive, chain, path, pathText, reachedBy?}], longestChain, summary}.
// check --json prints {ok, plan?, violations:[{policy, kind, message, path?}]}.
import { CliError, flags, type Command } from '../command.ts';
import { loadRegistry } from '../../access/load.ts';
import { buildModel } from '../../access/model.ts';
import { accessMapView, renderDot, renderMermaid, renderTable } from '../../access/views.ts';
import { ApplyRefusedError, applyConfig } from '../../declarative/apply.ts';
import { parseDocument } from '../../declarative/format.ts';
import { parseText } from '../../declarative/text.ts';
import { readConfig } from './apply.ts';

const FORMATS = ['table', 'mermaid', 'dot'] as const;

export const accessCommands: Command[] = [
  {
    name: 'access-map',
    summary: 'who can reach which API and scope, directly and through token-exchange chains',
    usage: `[--client ID | --api URI [--scope S] | --if-leaked CLIENT_ID] [--format table|mermaid|dot] [--json]

  (no filter)              every client, role and "people" (any signed-in person) with what they reach
  --client ID              what this client reaches: client_credentials, the tokens its APIs receive, and chains
  --api URI                every client and role that reaches this API, and by which path
  --scope S                with --api: only this scope
  --if-leaked CLIENT_ID    what an attacker holding this client's credentials reaches, most sensitive first
  --format F               table (default), mermaid or dot (Graphviz)
  --json                   the whole answer as JSON (entries with their paths)

  A role lists what holding it adds to what any person reaches. Disabled clients reach nothing.
  Output is sorted: commit it and review its diffs.`,
    options: {
      client: { type: 'string' },
      api: { type: 'string' },
      scope: { type: 'string' },
      'if-leaked': { type: 'string' },
      format: { type: 'string' },
    },
    async run(ctx, values) {
      const format = flags.str(values, 'format') ?? 'table';
      if (!(FORMATS as readonly string[]).includes(format)) throw new CliError(`--format must be one of: ${FORMATS.join(', ')}`);
      const query = {
        ...(flags.str(values, 'client') !== undefined && { client: flags.required(values, 'client') }),
        ...(flags.str(values, 'api') !== undefined && { api: flags.required(values, 'api') }),
        ...(flags.str(values, 'scope') !== undefined && { scope: flags.required(values, 'scope') }),
        ...(flags.str(values, 'if-leaked') !== undefined && { ifLeaked: flags.required(values, 'if-leaked') }),
      };
      const view = accessMapView(buildModel(await loadRegistry(await ctx.db())), query);
      const text = format === 'mermaid' ? renderMermaid(view) : format === 'dot' ? renderDot(view) : renderTable(view);
      ctx.print(text, view);
    },
  },
  {
    name: 'check',
    summary: 'check a config file and its policies against the current state; changes nothing (exit 1 on a violation)',
    usage: `-f FILE [--prune] [--json]

  -f, --file FILE    the config file (as for apply); - reads standard input
  --prune            check as if applied with --prune
  The file is applied in a transaction that is rolled back; the stored
  policies, and the file's own, are evaluated on the result. For CI.`,
    options: { file: { type: 'string', short: 'f' }, prune: { type: 'boolean' } },
    async run(ctx, values) {
      const file = flags.str(values, 'file');
      if (file === undefined || file === '') throw new CliError('-f FILE is required (the config file; - reads standard input)');
      const { text, source } = await readConfig(file, ctx.io.readStdin);
      const desired = parseDocument(parseText(text, source), source);
      try {
        const { plan } = await applyConfig(await ctx.db(), desired, { actor: ctx.actor, prune: flags.bool(values, 'prune'), dryRun: true });
        const n = desired.policies.length;
        ctx.print(`ok: ${source} keeps every policy (${n} in the file; the plan: ${plan.create.length} to create, ${plan.update.length} to update, ${plan.delete.length} to delete)`, {
          ok: true,
          plan,
          violations: [],
        });
        return 0;
      } catch (err) {
        if (!(err instanceof ApplyRefusedError)) throw err;
        const lines = err.violations.map((v) => `violation: policy '${v.policy}' (${v.kind}): ${v.message}${v.path ? `\n  path: ${v.path}` : ''}`);
        ctx.print([`${source} breaks ${err.violations.length === 1 ? 'a policy' : `${err.violations.length} policy rules`}:`, ...lines].join('\n'), {
          ok: false,
          plan: err.plan,
          violations: err.violations,
        });
        return 1;
      }
    },
  },
];
