// gatehouse users create | list | show | disable | enable | set-password | reset-mfa |
//   add-role | remove-role | roles | revoke-sessions | delete
//
// Passwords never come from argv (it shows in `ps` and shell history): only
// from standard input with --password-stdin, or from an interactive prompt.
import { CliError, flags, type Command, type CommandContext, type ParsedValues } from '../command.ts';
import {
  createAccount,
  deleteAccount,
  listAccounts,
  resolveAccount,
  setDisabled,
  setPassword,
  type AccountView,
} from '../../accounts/store.ts';
import { validatePassword } from '../../accounts/passwords.ts';
import { resetMfa } from '../../accounts/mfa.ts';
import { revokeAllSessionsForAccount } from '../../oidc/sessions.ts';
import { addRoleToAccount, getRole, removeRoleFromAccount, rolesForAccount } from '../../resources/roles.ts';
import { table } from '../format.ts';

/** What --json prints for an account. */
function jsonView(a: AccountView) {
  return {
    id: a.id,
    email: a.email,
    name: a.name,
    emailVerified: a.emailVerified,
    disabled: a.disabled,
    mfaEnabled: a.mfaEnabled,
    createdAt: a.createdAt,
    lastLoginAt: a.lastLoginAt,
  };
}

function humanView(a: AccountView): string {
  const rows: [string, string][] = [
    ['id', a.id],
    ['email', a.email],
    ['name', a.name ?? '-'],
    ['email verified', a.emailVerified ? 'yes' : 'no'],
    ['status', a.disabled ? 'disabled' : 'enabled'],
    ['password', a.hasPassword ? 'set' : 'not set'],
    ['mfa', a.mfaEnabled ? 'on (authenticator app)' : 'off'],
    ['created', a.createdAt.toISOString()],
    ['last login', a.lastLoginAt?.toISOString() ?? 'never'],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${v}`).join('\n');
}

/**
 * The password for create / set-password: --password-stdin reads all of
 * stdin minus one trailing newline; without the flag, a terminal prompt
 * (asked twice). Returns undefined when there is no source at all.
 */
async function readPassword(ctx: CommandContext, values: ParsedValues): Promise<string | undefined> {
  let pw: string | undefined;
  if (flags.bool(values, 'password-stdin')) {
    const input = await ctx.io.readStdin();
    if (input === undefined) throw new CliError('--password-stdin: standard input is a terminal; pipe the password in');
    pw = input.replace(/\r?\n$/, '');
    if (pw === '') throw new CliError('--password-stdin: standard input is empty');
  } else {
    pw = await ctx.io.prompt?.('Password: ', { secret: true });
    if (pw === undefined) return undefined;
    validatePassword(pw);
    const again = await ctx.io.prompt?.('Repeat password: ', { secret: true });
    if (again !== pw) throw new CliError('the passwords do not match');
  }
  if (/[\r\n]/.test(pw)) throw new CliError('the password must be a single line');
  validatePassword(pw);
  return pw;
}

const REF_USAGE = 'EMAIL|ID';

function refCommand(name: string, summary: string, action: (ctx: CommandContext, a: AccountView) => Promise<void>): Command {
  return {
    name: `users ${name}`,
    summary,
    usage: REF_USAGE,
    positionals: 1,
    async run(ctx, _values, [ref]) {
      const db = await ctx.db();
      await action(ctx, await resolveAccount(db, ref!));
    },
  };
}

export const userCommands: Command[] = [
  {
    name: 'users create',
    summary: 'create an account (a person who logs in)',
    usage: `--email EMAIL [--name NAME] [--password-stdin] [--email-verified]

  --email EMAIL       login email (stored lower-cased; unique)
  --name NAME         display name (the "name" claim)
  --password-stdin    read the password from standard input (one trailing newline is dropped);
                      without it a terminal prompts for one, and with no terminal
                      the account is created without a password (see users set-password)
  --email-verified    mark the email as verified`,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      'email-verified': { type: 'boolean' },
    },
    async run(ctx, values) {
      const email = flags.required(values, 'email');
      const name = flags.str(values, 'name');
      const password = await readPassword(ctx, values);
      const db = await ctx.db();
      const a = await createAccount(db, {
        email,
        ...(name !== undefined ? { name } : {}),
        ...(password !== undefined ? { password } : {}),
        emailVerified: flags.bool(values, 'email-verified'),
      });
      await ctx.audit('user.create', { type: 'user', id: a.id }, { after: jsonView(a) });
      const note = 'no password set: use `gatehouse users set-password` before this account can log in';
      if (ctx.json) {
        if (!password) ctx.io.stderr(`${note}\n`);
        ctx.print('', jsonView(a));
      } else {
        ctx.print(`created account ${a.email} (${a.id})${password ? '' : `\n${note}`}`, null);
      }
    },
  },
  {
    name: 'users list',
    summary: 'list accounts',
    usage: `[--email TEXT]

  --email TEXT   only accounts whose email contains TEXT`,
    options: { email: { type: 'string' } },
    async run(ctx, values) {
      const db = await ctx.db();
      const filter = flags.str(values, 'email');
      const all: AccountView[] = [];
      let cursor: string | undefined;
      do {
        const page = await listAccounts(db, { limit: 500, ...(cursor ? { cursor } : {}), ...(filter !== undefined ? { email: filter } : {}) });
        all.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      const human =
        all.length === 0
          ? 'no accounts'
          : all.map((a) => `${a.email.padEnd(32)} ${(a.disabled ? 'disabled' : 'enabled').padEnd(9)} ${a.id}  ${a.name ?? ''}`.trimEnd()).join('\n');
      ctx.print(human, all.map(jsonView));
    },
  },
  refCommand('show', 'show one account', async (ctx, a) => ctx.print(humanView(a), jsonView(a))),
  refCommand('disable', 'disable an account: it can no longer log in', async (ctx, a) => {
    const v = await setDisabled(await ctx.db(), a.id, true);
    await ctx.audit('user.disable', { type: 'user', id: a.id }, { before: jsonView(a), after: jsonView(v) });
    ctx.print(`disabled ${v.email}`, jsonView(v));
  }),
  refCommand('enable', 'enable a disabled account', async (ctx, a) => {
    const v = await setDisabled(await ctx.db(), a.id, false);
    await ctx.audit('user.enable', { type: 'user', id: a.id }, { before: jsonView(a), after: jsonView(v) });
    ctx.print(`enabled ${v.email}`, jsonView(v));
  }),
  {
    name: 'users set-password',
    summary: "set or replace an account's password (and lift a login lockout)",
    usage: `${REF_USAGE} --password-stdin

  --password-stdin   read the password from standard input (one trailing newline is dropped);
                     without it a terminal prompts for one`,
    options: { 'password-stdin': { type: 'boolean' } },
    positionals: 1,
    async run(ctx, values, [ref]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      const pw = await readPassword(ctx, values);
      if (pw === undefined) throw new CliError('set-password needs --password-stdin (or a terminal to prompt on)');
      const v = await setPassword(db, a.id, pw);
      await ctx.audit('user.set_password', { type: 'user', id: a.id });
      ctx.print(`password set for ${v.email}`, jsonView(v));
    },
  },
  refCommand('reset-mfa', 'turn two-step verification off (lost phone): clears the authenticator and recovery codes', async (ctx, a) => {
    const v = await resetMfa(await ctx.db(), a.id);
    await ctx.audit('user.reset_mfa', { type: 'user', id: a.id }, { hadMfa: a.mfaEnabled });
    const until = v.mfaEnrolmentUntil.toISOString();
    ctx.print(
      a.mfaEnabled
        ? `two-step verification reset for ${v.email}: authenticator and recovery codes removed; they can set it up again with their password at a sign-in that requires it, until ${until}`
        : `${v.email} had no two-step verification; any leftover recovery codes were removed; they can set it up with their password until ${until}`,
      { ...jsonView(v), mfaEnrolmentUntil: v.mfaEnrolmentUntil },
    );
  }),
  refCommand('revoke-sessions', 'sign a person out everywhere: ends their sessions and revokes their grants and refresh tokens', async (ctx, a) => {
    const r = await revokeAllSessionsForAccount(await ctx.db(), a.id);
    await ctx.audit('user.sessions_revoke', { type: 'user', id: a.id }, { ...r });
    ctx.print(`signed ${a.email} out everywhere`, { id: a.id, email: a.email, ...r });
  }),
  refCommand('roles', "list a person's roles", async (ctx, a) => {
    const roles = await rolesForAccount(await ctx.db(), a.id);
    ctx.print(roles.length === 0 ? `${a.email} holds no roles` : table(['ROLE', 'RESOURCE', 'SCOPES'], roles.map((r) => [r.name, r.resource, r.scopes.join(' ')])), roles);
  }),
  {
    name: 'users add-role',
    summary: 'give a person a role (scopes on one API, for APIs created with --require-roles)',
    usage: `${REF_USAGE} ROLE`,
    positionals: 2,
    async run(ctx, _values, [ref, role]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      await getRole(db, role!); // one-line NotFoundError for an unknown role
      const added = await addRoleToAccount(db, a.id, role!);
      if (added) await ctx.audit('user.role_add', { type: 'user', id: a.id }, { role });
      ctx.print(added ? `${a.email} now holds role ${role}` : `${a.email} already holds role ${role}`, { id: a.id, email: a.email, role, added });
    },
  },
  {
    name: 'users remove-role',
    summary: 'take a role away from a person (applies to tokens issued or refreshed afterwards)',
    usage: `${REF_USAGE} ROLE`,
    positionals: 2,
    async run(ctx, _values, [ref, role]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      await getRole(db, role!);
      const removed = await removeRoleFromAccount(db, a.id, role!);
      if (removed) await ctx.audit('user.role_remove', { type: 'user', id: a.id }, { role });
      ctx.print(removed ? `${a.email} no longer holds role ${role}` : `${a.email} did not hold role ${role}`, { id: a.id, email: a.email, role, removed });
    },
  },
  refCommand('delete', 'delete an account, its sessions, role assignments and recovery codes', async (ctx, a) => {
    const db = await ctx.db();
    await revokeAllSessionsForAccount(db, a.id);
    await deleteAccount(db, a.id);
    await ctx.audit('user.delete', { type: 'user', id: a.id }, { before: jsonView(a) });
    ctx.print(`deleted ${a.email}`, jsonView(a));
  }),
];
