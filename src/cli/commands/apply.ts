// gatehouse apply | export: declarative config (src/declarative/).
//
// apply --json output: {"create":[…],"update":[…],"delete":[…],"secrets":[…]}
// with entries {"kind":"resource"|"client"|"role","id":…}, updates with
// "changes" (the file's field names), and secrets
// {"client_id":…,"client_secret":…} for new confidential clients (once).
import { readFile } from 'node:fs/promises';
import { CliError, flags, type Command } from '../command.ts';
import { ApplyRefusedError, applyConfig, type ApplyResult } from '../../declarative/apply.ts';
import { exportConfig } from '../../declarative/export.ts';
import { parseDocument } from '../../declarative/format.ts';
import type { Plan } from '../../declarative/plan.ts';
import { parseText, renderText } from '../../declarative/text.ts';

const SECRET_NOTE = '(shown only once: store it now)';

function planLines(plan: Plan): string[] {
  return [
    ...plan.create.map((e) => `+ ${e.kind} ${e.id}`),
    ...plan.update.map((e) => `~ ${e.kind} ${e.id} (${e.changes.join(', ')})`),
    ...plan.delete.map((e) => `- ${e.kind} ${e.id}`),
  ];
}

export async function readConfig(file: string, readStdin: () => Promise<string | undefined>): Promise<{ text: string; source: string }> {
  if (file === '-') {
    const text = await readStdin();
    if (text === undefined) throw new CliError('-f -: nothing on standard input (pipe the file in, or give its path)');
    return { text, source: 'stdin' };
  }
  try {
    return { text: await readFile(file, 'utf8'), source: file };
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export const applyCommands: Command[] = [
  {
    name: 'apply',
    summary: 'make resources, clients, roles and idps match a YAML or JSON file, in one transaction',
    usage: `-f FILE [--dry-run] [--prune] [--json]

  -f, --file FILE    the config file (YAML or JSON, by extension or content); - reads standard input
  --dry-run          print the plan and change nothing
  --prune            also delete resources, clients, roles and idps the file does not name (never built-ins)
  --json             print {"create":[…],"update":[…],"delete":[…],"secrets":[…]}

  The file has top-level resources, clients, roles and policies lists:
    resources: identifier, scopes, name, ttl, signingAlg, servedBy, requireRoles, sensitive
    clients:   id, name, grants, public, redirectUris, postLogoutRedirectUris, scopes,
               resources, authMethod, jwks, jwksUri, requireDpop, firstParty, requireMfa,
               backchannelLogoutUri, accessTokenTtl, idTokenTtl, refreshTokenTtl, disabled
    roles:     name, resource, scopes
    idps:      name, issuer, clientId, scopes, domains, disabled, clientSecretEnv
    policies:  name, kind (only-clients | only-people-and-clients | max-chain |
               max-sensitive-per-client | sensitive-requires-roles) and its fields
               (docs/security-model.md); a plan that breaks one is refused whole
  An omitted optional field means its default. Secrets never appear in the file:
  new confidential clients get generated secrets, printed once; an idp names the
  environment variable holding its client secret (clientSecretEnv: NAME), needed
  when it is created (without it an existing idp keeps its stored secret).`,
    options: { file: { type: 'string', short: 'f' }, 'dry-run': { type: 'boolean' }, prune: { type: 'boolean' } },
    async run(ctx, values) {
      const file = flags.str(values, 'file');
      if (file === undefined || file === '') throw new CliError('-f FILE is required (the config file; - reads standard input)');
      const { text, source } = await readConfig(file, ctx.io.readStdin);
      const desired = parseDocument(parseText(text, source), source);
      const dryRun = flags.bool(values, 'dry-run');
      let result: ApplyResult;
      try {
        result = await applyConfig(await ctx.db(), desired, { actor: ctx.actor, prune: flags.bool(values, 'prune'), dryRun, kek: ctx.config.keyEncryptionKey, env: ctx.env });
      } catch (err) {
        if (!(err instanceof ApplyRefusedError)) throw err;
        // the plan, then why it was refused: nothing was applied
        const refused = err.violations.map((v) => `refused by policy '${v.policy}' (${v.kind}): ${v.message}${v.path ? `\n  path: ${v.path}` : ''}`);
        ctx.print([...planLines(err.plan), ...refused, 'nothing applied'].join('\n'), {
          create: err.plan.create,
          update: err.plan.update,
          delete: err.plan.delete,
          refused: true,
          violations: err.violations,
        });
        return 1;
      }
      const { plan, secrets } = result;
      const n = (l: unknown[]) => l.length;
      const lines = planLines(plan);
      const summary = dryRun
        ? `dry run: ${n(plan.create)} to create, ${n(plan.update)} to update, ${n(plan.delete)} to delete; nothing changed`
        : `applied: ${n(plan.create)} created, ${n(plan.update)} updated, ${n(plan.delete)} deleted`;
      ctx.print(
        [
          ...(lines.length > 0 ? lines : ['no changes']),
          ...(lines.length > 0 ? [summary] : []),
          ...secrets.map((s) => `client_secret ${s.client_id}  ${s.client_secret}  ${SECRET_NOTE}`),
        ].join('\n'),
        { create: plan.create, update: plan.update, delete: plan.delete, secrets },
      );
    },
  },
  {
    name: 'export',
    summary: 'print the resources, clients and roles as a config file for apply (YAML; JSON with --json)',
    usage: `[--json]

  --json   print JSON instead of YAML
  Never prints secrets, users or built-in resources; entries are sorted by id.`,
    async run(ctx) {
      const doc = await exportConfig(await ctx.db());
      ctx.io.stdout(renderText(doc, ctx.json ? 'json' : 'yaml'));
    },
  },
];
