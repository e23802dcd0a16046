// gatehouse users create | invite | resend-invite | change-email | list | show | disable | enable |
//   set-password | reset-mfa | factors | remove-factor | sessions | end-session |
//   add-role | remove-role | roles | revoke-sessions | delete
//
// Passwords never come from argv (it shows in `ps` and shell history): only
// from standard input with --password-stdin, or from an interactive prompt.
import { CliError, flags, type Command, type CommandContext, type ParsedValues } from '../command.ts';
import { listAccounts, resolveAccount, type AccountView } from '../../accounts/store.ts';
import { validatePassword } from '../../accounts/passwords.ts';
import { listFactors } from '../../accounts/passkeys.ts';
import { createAccountAs, removeFactorAs, resetMfaAs, setPasswordAs } from '../../accounts/writes.ts';
import { listSessions } from '../../oidc/session-activity.ts';
import { deletePersonAs, endSessionAs, revokeSessionsAs, updatePersonAs, type EndedSessions } from '../../oidc/sessions.ts';
import { rolesForAccount } from '../../resources/roles.ts';
import { addRoleToAccountAs, removeRoleFromAccountAs } from '../../resources/writes.ts';
import { everyPage } from '../../kernel/pagination.ts';
import { table } from '../format.ts';
import { createLogger } from '../../logging/logger.ts';
import { createMailer, type Mailer } from '../../mail/mailer.ts';
import { invite, requestEmailChange, resendInvitation, type Invitation, type Mailed } from '../../lifecycle/writes.ts';

/**
 * The mailer of an invitation command. Without SMTP_URL (development) the
 * mail is written to DATA_DIR/mail/ and its file and link are logged on
 * standard error, so the operator can pass the link on.
 */
function cliMailer(ctx: CommandContext): Mailer {
  const destination = { write: (line: string) => ctx.io.stderr(line) };
  const logger = createLogger(ctx.config.mail.smtpUrl ? 'silent' : 'info', destination);
  return createMailer(ctx.config, logger);
}

async function withMailer<T>(ctx: CommandContext, fn: (m: Mailer) => Promise<T>): Promise<T> {
  const mailer = cliMailer(ctx);
  try {
    return await fn(mailer);
  } finally {
    await mailer.close();
  }
}

/** Human and JSON output of a sent (or not sent) invitation. */
function printInvitation(ctx: CommandContext, verb: string, r: Mailed<Invitation>): number | void {
  const { account, roles, expiresAt } = r.result;
  const rolesText = roles.length > 0 ? ` with role${roles.length === 1 ? '' : 's'} ${roles.join(', ')}` : '';
  const mailText = r.mailed
    ? `the link expires ${expiresAt.toISOString()}`
    : `but the mail could not be sent (${r.mailError ?? 'unknown error'}); fix the mail set-up and run \`gatehouse users resend-invite ${account.email}\``;
  ctx.print(`${verb} ${account.email} (${account.id})${rolesText}; ${mailText}`, {
    ...jsonView(account),
    roles,
    invitation: { expiresAt, mailed: r.mailed, ...(r.mailError ? { mailError: r.mailError } : {}) },
  });
  return r.mailed ? undefined : 1;
}

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

/** What ending the sessions did, for the human output (failed back-channel deliveries named). */
function endedText(r: EndedSessions): string {
  const parts = [`${r.sessions} session${r.sessions === 1 ? '' : 's'} ended`];
  const sent = r.backchannel.filter((d) => d.delivered).length;
  if (r.backchannel.length > 0) parts.push(`back-channel logout delivered to ${sent} of ${r.backchannel.length} app sessions`);
  const failed = r.backchannel.filter((d) => !d.delivered).map((d) => `${d.clientId} (${d.error ?? 'failed'})`);
  if (failed.length > 0) parts.push(`not delivered: ${failed.join(', ')}`);
  return ` (${parts.join('; ')})`;
}

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
      const a = await createAccountAs(db, ctx.actor, {
        email,
        ...(name !== undefined ? { name } : {}),
        ...(password !== undefined ? { password } : {}),
        emailVerified: flags.bool(values, 'email-verified'),
      });
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
    name: 'users invite',
    summary: 'invite a person: mails a 7-day single-use link to set a password, verify the email and enrol MFA where required',
    usage: `--email EMAIL [--name NAME] [--role ROLE]...

  --email EMAIL   the person's email (the invitation goes there)
  --name NAME     display name (the "name" claim)
  --role ROLE     a role to give them (repeatable); roles on the admin API need an actor holding their permissions

  Needs mail (SMTP_URL; outside production without it the mail is written to DATA_DIR/mail/).
  A new link for someone who has not accepted yet: gatehouse users resend-invite EMAIL`,
    options: { email: { type: 'string' }, name: { type: 'string' }, role: { type: 'string', multiple: true } },
    async run(ctx, values) {
      const email = flags.required(values, 'email');
      const name = flags.str(values, 'name');
      const roles = flags.list(values, 'role') ?? [];
      const db = await ctx.db();
      const r = await withMailer(ctx, (mailer) => invite({ db, mailer, issuer: ctx.config.issuer }, ctx.actor, { email, ...(name !== undefined ? { name } : {}), roles }));
      return printInvitation(ctx, 'invited', r);
    },
  },
  {
    name: 'users resend-invite',
    summary: 'mail a new invitation link to a person who has not accepted yet (earlier links stop working)',
    usage: REF_USAGE,
    positionals: 1,
    async run(ctx, _values, [ref]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      const r = await withMailer(ctx, (mailer) => resendInvitation({ db, mailer, issuer: ctx.config.issuer }, ctx.actor, a.id));
      return printInvitation(ctx, 'invitation sent again to', r);
    },
  },
  {
    name: 'users change-email',
    summary: "change a person's email: mails the new address a 24-hour confirmation link and tells the old one; the change happens when the link is used",
    usage: `${REF_USAGE} NEW_EMAIL`,
    positionals: 2,
    async run(ctx, _values, [ref, email]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      const r = await withMailer(ctx, async (mailer) => {
        const out = await requestEmailChange({ db, mailer, issuer: ctx.config.issuer }, ctx.actor, a.id, email!);
        await mailer.idle();
        return out;
      });
      ctx.print(`confirmation link mailed to ${r.newEmail} (expires ${r.expiresAt.toISOString()}); ${a.email} was told`, { id: a.id, email: a.email, newEmail: r.newEmail, expiresAt: r.expiresAt });
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
      const all = await everyPage((page) => listAccounts(db, { ...page, ...(filter !== undefined ? { email: filter } : {}) }));
      const human =
        all.length === 0
          ? 'no accounts'
          : table(
              ['EMAIL', 'STATUS', 'ID', 'NAME'],
              all.map((a) => [a.email, a.disabled ? 'disabled' : 'enabled', a.id, a.name ?? '']),
            );
      ctx.print(human, all.map(jsonView));
    },
  },
  refCommand('show', 'show one account', async (ctx, a) => ctx.print(humanView(a), jsonView(a))),
  refCommand('disable', 'disable an account: it can no longer log in; its sessions and grants end (with back-channel logout)', async (ctx, a) => {
    const { account: v, revoked } = await updatePersonAs(await ctx.db(), ctx.actor, a.id, { disabled: true }, {}, ctx.backchannel);
    ctx.print(`disabled ${v.email}${revoked ? endedText(revoked) : ''}`, { ...jsonView(v), ...(revoked && { revoked }) });
  }),
  refCommand('enable', 'enable a disabled account', async (ctx, a) => {
    const { account: v } = await updatePersonAs(await ctx.db(), ctx.actor, a.id, { disabled: false });
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
      const v = await setPasswordAs(db, ctx.actor, a.id, pw);
      ctx.print(`password set for ${v.email}`, jsonView(v));
    },
  },
  refCommand('reset-mfa', 'turn two-step verification off (lost phone): clears the authenticator and recovery codes', async (ctx, a) => {
    const v = await resetMfaAs(await ctx.db(), ctx.actor, a.id);
    const until = v.mfaEnrolmentUntil.toISOString();
    ctx.print(
      a.mfaEnabled
        ? `two-step verification reset for ${v.email}: authenticator and recovery codes removed; they can set it up again with their password at a sign-in that requires it, until ${until}`
        : `${v.email} had no two-step verification; any leftover recovery codes were removed; they can set it up with their password until ${until}`,
      { ...jsonView(v), mfaEnrolmentUntil: v.mfaEnrolmentUntil },
    );
  }),
  refCommand(
    'revoke-sessions',
    'sign a person out everywhere: ends their sessions, revokes their grants and refresh tokens, and sends back-channel logout to the apps',
    async (ctx, a) => {
      const r = await revokeSessionsAs(await ctx.db(), ctx.actor, a.id, ctx.backchannel);
      ctx.print(`signed ${a.email} out everywhere${endedText(r)}`, { id: a.id, email: a.email, ...r });
    },
  ),
  refCommand('factors', "show a person's email verification and second factors (authenticator app, passkeys, recovery codes left)", async (ctx, a) => {
    const f = await listFactors(await ctx.db(), a.id);
    const when = (d: Date | null) => d?.toISOString() ?? '-';
    const lines = [
      `${a.email}: email ${f.emailVerified ? 'verified' : 'not verified'}; ${f.recoveryCodesLeft} recovery code${f.recoveryCodesLeft === 1 ? '' : 's'} left`,
      f.items.length === 0
        ? 'no second factor'
        : table(
            ['ID', 'TYPE', 'NAME', 'CREATED', 'LAST USED'],
            f.items.map((x) => [x.id, x.type, x.name, when(x.createdAt), when(x.lastUsedAt)]),
          ),
    ];
    ctx.print(lines.join('\n'), { id: a.id, email: a.email, ...f });
  }),
  {
    name: 'users remove-factor',
    summary: "remove a person's lost factor: 'totp' (the authenticator app) or a passkey id from `users factors` (audited)",
    usage: `${REF_USAGE} FACTOR_ID`,
    positionals: 2,
    async run(ctx, _values, [ref, factorId]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      const removed = await removeFactorAs(db, ctx.actor, a.id, factorId!);
      ctx.print(`removed ${removed.type === 'totp' ? 'the authenticator app' : `passkey ${removed.id}`} of ${a.email}`, { id: a.id, email: a.email, removed });
    },
  },
  refCommand('sessions', "list a person's live sessions (device, address, last use, applications)", async (ctx, a) => {
    const sessions = await listSessions(await ctx.db(), a.id);
    const when = (d: Date | null) => d?.toISOString() ?? '-';
    ctx.print(
      sessions.length === 0
        ? `${a.email} has no live session`
        : table(
            ['SESSION', 'SIGNED IN', 'LAST USED', 'ADDRESS', 'DEVICE', 'APPS'],
            sessions.map((s) => [s.uid, when(s.loginAt), when(s.lastUsedAt), s.ip ?? '-', (s.userAgent ?? '-').slice(0, 40), s.clients.join(' ')]),
          ),
      sessions,
    );
  }),
  {
    name: 'users end-session',
    summary: 'end one session of a person (its grants and tokens too; back-channel logout to its apps)',
    usage: `${REF_USAGE} SESSION`,
    positionals: 2,
    async run(ctx, _values, [ref, session]) {
      const db = await ctx.db();
      const a = await resolveAccount(db, ref!);
      const r = await endSessionAs(db, ctx.actor, a.id, session!, ctx.backchannel);
      ctx.print(`ended session ${session} of ${a.email}${endedText(r)}`, { id: a.id, email: a.email, ...r });
    },
  },
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
      const added = await addRoleToAccountAs(db, ctx.actor, a.id, role!);
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
      const removed = await removeRoleFromAccountAs(db, ctx.actor, a.id, role!);
      ctx.print(removed ? `${a.email} no longer holds role ${role}` : `${a.email} did not hold role ${role}`, { id: a.id, email: a.email, role, removed });
    },
  },
  refCommand('delete', 'delete an account, its sessions (with back-channel logout), grants, role assignments and recovery codes', async (ctx, a) => {
    const { revoked } = await deletePersonAs(await ctx.db(), ctx.actor, a.id, {}, ctx.backchannel);
    ctx.print(`deleted ${a.email}${endedText(revoked)}`, { ...jsonView(a), revoked });
  }),
];
