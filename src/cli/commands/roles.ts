// gatehouse roles create | list | show | delete
// (`users add-role` / `users remove-role` live with the users commands.)
//
// --json output: the RoleView of src/resources/roles.ts
// ({ name, resource, scopes, accountCount, createdAt, updatedAt }).
import { CliError, flags, type Command } from '../command.ts';
import { getRole, listRoles, type RoleView } from '../../resources/roles.ts';
import { createRoleAs, deleteRoleAs } from '../../resources/writes.ts';
import { aligned, show, table } from '../format.ts';
import { withFlagNames } from './clients.ts';

const FLAG_OF: Record<string, string> = { name: '--name', resource: '--resource', scopes: '--scope' };

function roleText(r: RoleView): string {
  return aligned([
    ['name', r.name],
    ['resource', r.resource],
    ['scopes', show.list(r.scopes)],
    ['accounts', String(r.accountCount)],
    ['built in', show.yes(r.builtIn)],
    ['created', show.date(r.createdAt)],
    ['updated', show.date(r.updatedAt)],
  ]);
}

export const roleCommands: Command[] = [
  {
    name: 'roles create',
    summary: 'create a role granting scopes on one API resource',
    usage: `--name NAME --resource URI --scope S…

  --name NAME      1-64 letters, digits, . _ : -
  --resource URI   the API resource the role is about
  --scope S        repeatable; each value may hold several space-separated scopes; all offered by the resource
  --json           print the role as JSON`,
    options: { name: { type: 'string' }, resource: { type: 'string' }, scope: { type: 'string', multiple: true } },
    async run(ctx, values) {
      const name = flags.required(values, 'name');
      const resource = flags.required(values, 'resource');
      const scopes = flags.words(values, 'scope');
      if (!scopes?.length) throw new CliError('--scope is required');
      const db = await ctx.db();
      const r = await withFlagNames(FLAG_OF, () => createRoleAs(db, ctx.actor, { name, resource, scopes }));
      ctx.print(`created role ${r.name}\n${roleText(r)}`, r);
    },
  },
  {
    name: 'roles list',
    summary: 'list roles',
    usage: `[--resource URI]

  --resource URI   only the roles on this resource
  --json           print a JSON array of roles`,
    options: { resource: { type: 'string' } },
    async run(ctx, values) {
      const roles = await listRoles(await ctx.db(), { resource: flags.str(values, 'resource') });
      ctx.print(
        roles.length === 0
          ? 'no roles'
          : table(
              ['NAME', 'RESOURCE', 'ACCOUNTS', 'SCOPES'],
              roles.map((r) => [r.name, r.resource, String(r.accountCount), r.scopes.join(' ')]),
            ),
        roles,
      );
    },
  },
  {
    name: 'roles show',
    summary: 'show one role',
    usage: `NAME`,
    positionals: 1,
    async run(ctx, _values, [name]) {
      const r = await getRole(await ctx.db(), name!);
      ctx.print(roleText(r), r);
    },
  },
  {
    name: 'roles delete',
    summary: 'delete a role (the accounts holding it lose it)',
    usage: `NAME`,
    positionals: 1,
    async run(ctx, _values, [name]) {
      await deleteRoleAs(await ctx.db(), ctx.actor, name!);
      ctx.print(`deleted role ${name}`, { name, deleted: true });
    },
  },
];
