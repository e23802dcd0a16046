// gatehouse idps create | list | show | update | delete
// Upstream OpenID providers people may sign in through ("Continue with N").
//
// --json output: the IdpView of src/federation/store.ts
// ({ id, name, issuer, clientId, scopes, domains, disabled, createdAt,
// updatedAt, version }). The client secret is read from standard input
// (--client-secret-stdin), stored encrypted, and never printed.
import { CliError, flags, type CommandContext, type Command, type ParsedValues } from '../command.ts';
import { getIdp, listIdps, type IdpPatch, type IdpView } from '../../federation/store.ts';
import { createIdpAs, deleteIdpAs, updateIdpAs } from '../../federation/writes.ts';
import { everyPage } from '../../kernel/pagination.ts';
import { aligned, show, table } from '../format.ts';
import { withFlagNames } from './clients.ts';

const FLAG_OF: Record<string, string> = {
  name: '--name',
  issuer: '--issuer',
  clientId: '--client-id',
  clientSecret: '--client-secret-stdin',
  scopes: '--scope',
  domains: '--domain',
};

function idpText(r: IdpView): string {
  return aligned([
    ['id', r.id],
    ['name', r.name],
    ['issuer', r.issuer],
    ['client id', r.clientId],
    ['scopes', show.list(r.scopes)],
    ['domains', show.list(r.domains)],
    ['disabled', show.yes(r.disabled)],
    ['created', show.date(r.createdAt)],
    ['updated', show.date(r.updatedAt)],
  ]);
}

/** --client-secret-stdin: all of standard input minus one trailing newline. */
async function readSecret(ctx: CommandContext): Promise<string> {
  const input = await ctx.io.readStdin();
  if (input === undefined) throw new CliError('--client-secret-stdin: standard input is a terminal; pipe the client secret in');
  const secret = input.replace(/\r?\n$/, '');
  if (secret === '') throw new CliError('--client-secret-stdin: standard input is empty');
  if (/[\r\n]/.test(secret)) throw new CliError('--client-secret-stdin: the client secret must be a single line');
  return secret;
}

/** Domains from repeatable --domain flags (each may hold several, comma- or space-separated). */
function domainsOf(values: ParsedValues): string[] | undefined {
  return flags.list(values, 'domain')?.flatMap((d) => d.split(/[\s,]+/)).filter(Boolean);
}

const COMMON_USAGE = `  --scope S              repeatable; scopes asked of the provider (default: openid email profile; openid is always asked)
  --domain D             repeatable; people whose email is @D are sent to this provider from the login form
  --json                 print the provider as JSON (never the secret)`;

export const idpCommands: Command[] = [
  {
    name: 'idps create',
    summary: 'add an upstream OpenID provider people may sign in through',
    usage: `--name N --issuer URL --client-id ID --client-secret-stdin [--scope S…] [--domain D…] [--disabled]

  --name N               shown on the login page as "Continue with N"; 1-64 letters, digits, spaces, . _ ( ) -
  --issuer URL           the provider's issuer (https; its /.well-known/openid-configuration is read)
  --client-id ID         Gatehouse's client id at the provider
  --client-secret-stdin  read the client secret from standard input (stored encrypted with KEY_ENCRYPTION_KEY)
  --disabled             create it switched off (not shown on the login page)
${COMMON_USAGE}

  Register <issuer>/federation/callback as the redirect URI at the provider.`,
    options: {
      name: { type: 'string' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret-stdin': { type: 'boolean' },
      scope: { type: 'string', multiple: true },
      domain: { type: 'string', multiple: true },
      disabled: { type: 'boolean' },
    },
    async run(ctx, values) {
      const name = flags.required(values, 'name');
      const issuer = flags.required(values, 'issuer');
      const clientId = flags.required(values, 'client-id');
      if (!flags.bool(values, 'client-secret-stdin')) throw new CliError('--client-secret-stdin is required (pipe the client secret in; it never goes on the command line)');
      const scopes = flags.words(values, 'scope');
      const domains = domainsOf(values);
      const clientSecret = await readSecret(ctx);
      const db = await ctx.db();
      const r = await withFlagNames(FLAG_OF, () =>
        createIdpAs(db, ctx.actor, ctx.config.keyEncryptionKey, {
          name,
          issuer,
          clientId,
          clientSecret,
          ...(scopes && { scopes }),
          ...(domains && { domains }),
          ...(flags.bool(values, 'disabled') && { disabled: true }),
        }),
      );
      ctx.print(`created identity provider ${r.name}\n${idpText(r)}\nredirect URI to register at the provider: ${ctx.config.issuer}/federation/callback`, r);
    },
  },
  {
    name: 'idps list',
    summary: 'list upstream identity providers',
    usage: `

  --json   print a JSON array of providers`,
    async run(ctx) {
      const db = await ctx.db();
      const idps = await everyPage((page) => listIdps(db, page));
      ctx.print(
        idps.length === 0
          ? 'no identity providers'
          : table(
              ['NAME', 'ISSUER', 'DOMAINS', 'DISABLED'],
              idps.map((r) => [r.name, r.issuer, show.list(r.domains), show.yes(r.disabled)]),
            ),
        idps,
      );
    },
  },
  {
    name: 'idps show',
    summary: 'show one upstream identity provider',
    usage: `NAME|ID`,
    positionals: 1,
    async run(ctx, _values, [ref]) {
      const r = await getIdp(await ctx.db(), ref!);
      ctx.print(idpText(r), r);
    },
  },
  {
    name: 'idps update',
    summary: 'change an upstream identity provider',
    usage: `NAME|ID [--name N] [--issuer URL] [--client-id ID] [--client-secret-stdin] [--scope S…] [--domain D…] [--no-domains] [--disable|--enable]

  --name N               rename it
  --issuer URL           its issuer
  --client-id ID         Gatehouse's client id at the provider
  --client-secret-stdin  replace the client secret with standard input
  --scope S              replaces the scopes
  --domain D             replaces the routed email domains
  --no-domains           route no email domain to it
  --disable / --enable   hide it from the login page and refuse sign-ins through it / offer it again
  --json                 print the provider as JSON`,
    positionals: 1,
    options: {
      name: { type: 'string' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret-stdin': { type: 'boolean' },
      scope: { type: 'string', multiple: true },
      domain: { type: 'string', multiple: true },
      'no-domains': { type: 'boolean' },
      disable: { type: 'boolean' },
      enable: { type: 'boolean' },
    },
    async run(ctx, values, [ref]) {
      if (flags.bool(values, 'disable') && flags.bool(values, 'enable')) throw new CliError('--disable and --enable exclude each other');
      if (flags.bool(values, 'no-domains') && values.domain !== undefined) throw new CliError('--no-domains and --domain exclude each other');
      const patch: IdpPatch = {};
      const name = flags.str(values, 'name');
      const issuer = flags.str(values, 'issuer');
      const clientId = flags.str(values, 'client-id');
      const scopes = flags.words(values, 'scope');
      const domains = domainsOf(values);
      if (name !== undefined) patch.name = name;
      if (issuer !== undefined) patch.issuer = issuer;
      if (clientId !== undefined) patch.clientId = clientId;
      if (scopes !== undefined) patch.scopes = scopes;
      if (domains !== undefined) patch.domains = domains;
      if (flags.bool(values, 'no-domains')) patch.domains = [];
      if (flags.bool(values, 'disable')) patch.disabled = true;
      if (flags.bool(values, 'enable')) patch.disabled = false;
      if (flags.bool(values, 'client-secret-stdin')) patch.clientSecret = await readSecret(ctx);
      if (Object.keys(patch).length === 0) throw new CliError('nothing to change: give at least one of --name, --issuer, --client-id, --client-secret-stdin, --scope, --domain, --no-domains, --disable, --enable');
      const db = await ctx.db();
      const r = await withFlagNames(FLAG_OF, () => updateIdpAs(db, ctx.actor, ctx.config.keyEncryptionKey, ref!, patch));
      ctx.print(`updated identity provider ${r.name}\n${idpText(r)}`, r);
    },
  },
  {
    name: 'idps delete',
    summary: 'delete an upstream identity provider (its links go; the accounts stay)',
    usage: `NAME|ID`,
    positionals: 1,
    async run(ctx, _values, [ref]) {
      const r = await deleteIdpAs(await ctx.db(), ctx.actor, ref!);
      ctx.print(`deleted identity provider ${r.name}`, { id: r.id, name: r.name, deleted: true });
    },
  },
];
