// gatehouse resources create | list | show | update | delete
//
// --json output: the ResourceView of src/resources/store.ts (camelCase:
// identifier, name, scopes, accessTokenTtl, signingAlg, servedBy,
// requireRoles, sensitiveScopes, builtIn, createdAt, updatedAt, version).
import { CliError, flags, type Command, type OptionSpec, type ParsedValues } from '../command.ts';
import { SIGNING_ALGS } from '../../keys/index.ts';
import { everyPage } from '../../kernel/pagination.ts';
import { RESOURCE_TTL, getResource, listResources, type ResourceInput, type ResourcePatch, type ResourceView } from '../../resources/store.ts';
import { createResourceAs, deleteResourceAs, updateResourceAs } from '../../resources/writes.ts';
import { aligned, show, table } from '../format.ts';
import { toggle, uriList, withFlagNames } from './clients.ts';

const FLAG_OF: Record<string, string> = {
  identifier: '--identifier',
  name: '--name',
  scopes: '--scope',
  accessTokenTtl: '--ttl',
  signingAlg: '--alg',
  servedBy: '--served-by',
  requireRoles: '--require-roles',
  sensitiveScopes: '--sensitive',
};

const settingFlags: OptionSpec = {
  scope: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  alg: { type: 'string' },
  'served-by': { type: 'string', multiple: true },
  'require-roles': { type: 'boolean' },
  sensitive: { type: 'string', multiple: true },
  name: { type: 'string' },
};

const SETTINGS_USAGE = `  --scope S                repeatable; each value may hold several space-separated scopes
  --ttl SECONDS            access token lifetime (${RESOURCE_TTL.min}-${RESOURCE_TTL.max}, default ${RESOURCE_TTL.default})
  --alg ALG                access token signing algorithm: ${SIGNING_ALGS.join(' | ')} (default RS256)
  --served-by CLIENT_ID    repeatable: the clients that are this API's own services
  --require-roles          people get only the scopes their roles on this API grant
  --sensitive S            repeatable: scopes to mark sensitive for the access map
                           (gatehouse access-map; --sensitive '' clears the list)
  --name N                 display name
  --json                   print the resource as JSON (camelCase fields)`;

function settingsFromFlags(values: ParsedValues, mode: 'create' | 'update'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const set = (k: string, v: unknown) => {
    if (v !== undefined) out[k] = v;
  };
  set('scopes', flags.words(values, 'scope'));
  set('accessTokenTtl', flags.int(values, 'ttl', RESOURCE_TTL.min, RESOURCE_TTL.max));
  set('signingAlg', flags.str(values, 'alg'));
  set('servedBy', uriList(values, 'served-by'));
  set('sensitiveScopes', flags.words(values, 'sensitive'));
  set('requireRoles', mode === 'create' ? flags.bool(values, 'require-roles') || undefined : toggle(values, 'require-roles', 'no-require-roles'));
  const name = flags.str(values, 'name');
  if (name !== undefined) out.name = name === '' ? null : name;
  return out;
}

function resourceText(r: ResourceView): string {
  return aligned([
    ['identifier', r.identifier],
    ['name', show.opt(r.name)],
    ['scopes', show.list(r.scopes)],
    ['access token ttl', `${r.accessTokenTtl}s`],
    ['signing alg', r.signingAlg],
    ['served by', show.list(r.servedBy)],
    ['require roles', show.yes(r.requireRoles)],
    ['sensitive', show.list(r.sensitiveScopes)],
    ['built in', show.yes(r.builtIn)],
    ['version', String(r.version)],
    ['created', show.date(r.createdAt)],
    ['updated', show.date(r.updatedAt)],
  ]);
}

export const resourceCommands: Command[] = [
  {
    name: 'resources create',
    summary: 'register an API resource (the `aud` of its access tokens) and the scopes it offers',
    usage: `--identifier URI --scope S… [options]

  --identifier URI         absolute URI or URN, no fragment (e.g. https://api.example.com)
${SETTINGS_USAGE}`,
    options: { ...settingFlags, identifier: { type: 'string' } },
    async run(ctx, values) {
      const identifier = flags.required(values, 'identifier');
      if (!flags.words(values, 'scope')?.length) throw new CliError('--scope is required (the scopes this API offers)');
      const input = { identifier, ...settingsFromFlags(values, 'create') };
      const db = await ctx.db();
      const r = await withFlagNames(FLAG_OF, () => createResourceAs(db, ctx.actor, input as ResourceInput));
      ctx.print(`created resource ${r.identifier}\n${resourceText(r)}`, r);
    },
  },
  {
    name: 'resources list',
    summary: 'list API resources, the built-in admin API included',
    usage: `

  --json   print a JSON array of resources`,
    async run(ctx) {
      const db = await ctx.db();
      const all = await everyPage((page) => listResources(db, page));
      ctx.print(
        table(
          ['IDENTIFIER', 'TTL', 'ALG', 'FLAGS', 'SCOPES'],
          all.map((r) => [
            r.identifier,
            `${r.accessTokenTtl}s`,
            r.signingAlg,
            [r.builtIn && 'built-in', r.requireRoles && 'require-roles'].filter(Boolean).join(',') || '-',
            r.scopes.join(' '),
          ]),
        ),
        all,
      );
    },
  },
  {
    name: 'resources show',
    summary: 'show one API resource',
    usage: `URI`,
    positionals: 1,
    async run(ctx, _values, [identifier]) {
      const r = await getResource(await ctx.db(), identifier!);
      ctx.print(resourceText(r), r);
    },
  },
  {
    name: 'resources update',
    summary: 'change an API resource; a list flag replaces that list',
    usage: `URI [options]

  Takes the flags of \`resources create\` (except --identifier); a repeatable
  flag replaces the stored list (--served-by '' clears it). Only the flags
  given change. The built-in ${'urn:gatehouse:admin'} allows only --ttl, --alg and --name.
  --no-require-roles       stop requiring roles
${SETTINGS_USAGE}`,
    options: { ...settingFlags, 'no-require-roles': { type: 'boolean' } },
    positionals: 1,
    async run(ctx, values, [identifier]) {
      const patch = settingsFromFlags(values, 'update');
      if (Object.keys(patch).length === 0) throw new CliError('nothing to change (see gatehouse resources update --help)');
      const db = await ctx.db();
      const r = await withFlagNames(FLAG_OF, () => updateResourceAs(db, ctx.actor, identifier!, patch as ResourcePatch));
      ctx.print(`updated resource ${r.identifier} (version ${r.version})`, r);
    },
  },
  {
    name: 'resources delete',
    summary: 'delete an API resource (removed from every client; refused while roles use it)',
    usage: `URI`,
    positionals: 1,
    async run(ctx, _values, [identifier]) {
      await deleteResourceAs(await ctx.db(), ctx.actor, identifier!);
      ctx.print(`deleted resource ${identifier}`, { identifier, deleted: true });
    },
  },
];
