// gatehouse clients create | list | show | update | delete | rotate-secret
//
// --json output: client objects are the ClientView of src/clients/store.ts
// with `client_id` (snake_case, the OAuth name) in place of `id`, and
// `client_secret` when a secret was just generated; every other field is
// camelCase like the apply file.
import { readFile } from 'node:fs/promises';
import { CliError, flags, type Command, type CommandContext, type OptionSpec, type ParsedValues } from '../command.ts';
import { ValidationError } from '../../kernel/errors.ts';
import { CLIENT_TTLS, GRANT_TYPES, getClient, listClients, type ClientInput, type ClientPatch, type ClientView } from '../../clients/store.ts';
import { createClientAs, deleteClientAs, rotateClientSecretAs, updateClientAs } from '../../clients/writes.ts';
import { everyPage } from '../../kernel/pagination.ts';

// ------------------------------------------------------------ shared helpers

import { aligned, show, table } from '../format.ts';

/**
 * Runs a store call, turning a ValidationError into a one-line CLI error that
 * names the flag instead of the field (outside quoted values).
 */
export async function withFlagNames<T>(names: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ValidationError) {
      const flag = names[err.field] ?? err.field;
      const reason = err.reason
        .split("'")
        .map((part, i) => (i % 2 === 1 ? part : part.replace(/\b[a-z][A-Za-z]*\b/g, (w) => (names[w] && (/[A-Z]/.test(w) || w === 'jwks') ? names[w] : w))))
        .join("'");
      throw new CliError(`invalid ${flag}: ${reason}`);
    }
    throw err;
  }
}

/** A repeatable URI flag: each value is one item; an empty value clears the list. */
export function uriList(values: ParsedValues, name: string): string[] | undefined {
  return flags.list(values, name)?.filter((x) => x !== '');
}

/** `--x` / `--no-x` pair → true / false / undefined. */
export function toggle(values: ParsedValues, on: string, off: string): boolean | undefined {
  const a = flags.bool(values, on);
  const b = flags.bool(values, off);
  if (a && b) throw new CliError(`--${on} and --${off} cannot be used together`);
  return a ? true : b ? false : undefined;
}

/** An optional string flag: '' means "clear it" (null). */
function optStr(values: ParsedValues, name: string): string | null | undefined {
  const v = flags.str(values, name);
  return v === undefined ? undefined : v === '' ? null : v;
}

function ttlFlag(values: ParsedValues, name: string, range: { min: number; max: number }): number | null | undefined {
  const v = flags.str(values, name);
  if (v === '') return null;
  return flags.int(values, name, range.min, range.max);
}

// ------------------------------------------------------------------ clients

const FLAG_OF: Record<string, string> = {
  id: '--id',
  name: '--name',
  public: '--public',
  grants: '--grant',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  scopes: '--scope',
  resources: '--resource',
  authMethod: '--auth-method',
  jwks: '--jwks-file',
  jwksUri: '--jwks-uri',
  requireDpop: '--require-dpop',
  requirePar: '--require-par',
  profile: '--profile',
  firstParty: '--first-party',
  requireMfa: '--require-mfa',
  backchannelLogoutUri: '--backchannel-logout-uri',
  accessTokenTtl: '--access-token-ttl',
  idTokenTtl: '--id-token-ttl',
  refreshTokenTtl: '--refresh-token-ttl',
  disabled: '--disable',
  graceSeconds: '--grace',
};

const settingFlags: OptionSpec = {
  name: { type: 'string' },
  public: { type: 'boolean' },
  grant: { type: 'string', multiple: true },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  scope: { type: 'string', multiple: true },
  resource: { type: 'string', multiple: true },
  'auth-method': { type: 'string' },
  'require-dpop': { type: 'boolean' },
  'require-par': { type: 'boolean' },
  profile: { type: 'string' },
  'first-party': { type: 'boolean' },
  'require-mfa': { type: 'boolean' },
  'backchannel-logout-uri': { type: 'string' },
  'jwks-uri': { type: 'string' },
  'jwks-file': { type: 'string' },
  'access-token-ttl': { type: 'string' },
  'id-token-ttl': { type: 'string' },
  'refresh-token-ttl': { type: 'string' },
};

const SETTINGS_USAGE = `  --name N                         display name (required for create)
  --public                         public client (no secret; auth method none)
  --grant G                        repeatable: ${GRANT_TYPES.join(',\n                                   ')}
  --redirect-uri U                 repeatable; https, http only on localhost, or com.example.app:/path
  --post-logout-redirect-uri U     repeatable
  --scope "a b"                    repeatable; each value may hold several space-separated scopes
  --resource URI                   repeatable: an API resource this client may get tokens for
  --auth-method M                  client_secret_basic (default) | client_secret_post | private_key_jwt | none (public)
  --jwks-uri U | --jwks-file F     the client's public keys (required for private_key_jwt)
  --require-dpop                   tokens must be DPoP-bound
  --require-par                    authorization requests must be pushed first (PAR, RFC 9126)
  --profile fapi2                  hold the client to the FAPI 2.0 Security Profile: PAR, PKCE S256,
                                   private_key_jwt, DPoP, PS256/ES256 only (turns on --require-par
                                   and --require-dpop); --profile none removes it (update)
  --first-party                    skip the consent screen
  --require-mfa                    people must pass MFA to sign in to this client
  --backchannel-logout-uri U       OIDC back-channel logout endpoint
  --access-token-ttl S             access token lifetime override (${CLIENT_TTLS.accessTokenTtl.min}-${CLIENT_TTLS.accessTokenTtl.max} s)
  --id-token-ttl S                 ID token lifetime (${CLIENT_TTLS.idTokenTtl.min}-${CLIENT_TTLS.idTokenTtl.max} s)
  --refresh-token-ttl S            refresh token lifetime (${CLIENT_TTLS.refreshTokenTtl.min}-${CLIENT_TTLS.refreshTokenTtl.max} s)
  --json                           print JSON: the client with "client_id" (and "client_secret" once); other fields camelCase`;

async function readJwksFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read --jwks-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new CliError(`invalid --jwks-file: ${path} is not valid JSON`);
  }
}

/** The flags given, as a ClientInput / ClientPatch object (absent flags are left out). */
async function settingsFromFlags(values: ParsedValues, mode: 'create' | 'update'): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const set = (k: string, v: unknown) => {
    if (v !== undefined) out[k] = v;
  };
  set('name', flags.str(values, 'name'));
  set('public', mode === 'create' ? flags.bool(values, 'public') || undefined : toggle(values, 'public', 'no-public'));
  set('grants', flags.words(values, 'grant'));
  set('redirectUris', uriList(values, 'redirect-uri'));
  set('postLogoutRedirectUris', uriList(values, 'post-logout-redirect-uri'));
  set('scopes', flags.words(values, 'scope'));
  set('resources', uriList(values, 'resource'));
  set('authMethod', flags.str(values, 'auth-method'));
  for (const [key, flag] of [
    ['requireDpop', 'require-dpop'],
    ['requirePar', 'require-par'],
    ['firstParty', 'first-party'],
    ['requireMfa', 'require-mfa'],
  ] as const) {
    set(key, mode === 'create' ? flags.bool(values, flag) || undefined : toggle(values, flag, `no-${flag}`));
  }
  const profile = flags.str(values, 'profile');
  if (profile !== undefined) out.profile = profile === '' || profile === 'none' ? null : profile;
  set('backchannelLogoutUri', optStr(values, 'backchannel-logout-uri'));
  set('jwksUri', optStr(values, 'jwks-uri'));
  const jwksFile = flags.str(values, 'jwks-file');
  if (jwksFile !== undefined) out.jwks = jwksFile === '' ? null : await readJwksFile(jwksFile);
  set('accessTokenTtl', ttlFlag(values, 'access-token-ttl', CLIENT_TTLS.accessTokenTtl));
  set('idTokenTtl', ttlFlag(values, 'id-token-ttl', CLIENT_TTLS.idTokenTtl));
  set('refreshTokenTtl', ttlFlag(values, 'refresh-token-ttl', CLIENT_TTLS.refreshTokenTtl));
  if (mode === 'update') {
    const disabled = toggle(values, 'disable', 'enable');
    set('disabled', disabled);
  }
  return out;
}

/** The --json shape of a client. */
export function clientJson(view: ClientView, clientSecret?: string): Record<string, unknown> {
  const { id, ...rest } = view;
  return { client_id: id, ...(clientSecret !== undefined && { client_secret: clientSecret }), ...rest };
}

function clientText(c: ClientView): string {
  return aligned([
    ['client_id', c.id],
    ['name', c.name],
    ['type', c.public ? 'public' : 'confidential'],
    ['auth method', c.authMethod],
    ['grants', show.list(c.grants)],
    ['redirect uris', show.list(c.redirectUris)],
    ['post-logout uris', show.list(c.postLogoutRedirectUris)],
    ['scopes', show.list(c.scopes)],
    ['resources', show.list(c.resources)],
    ['secret', c.hasSecret ? 'set' : '-'],
    ...(c.previousSecretExpiresAt ? [['old secret until', show.date(c.previousSecretExpiresAt)] as [string, string]] : []),
    ['jwks', c.jwks ? `${c.jwks.keys.length} key(s)` : '-'],
    ['jwks uri', show.opt(c.jwksUri)],
    ['require dpop', show.yes(c.requireDpop)],
    ['require par', show.yes(c.requirePar)],
    ['profile', show.opt(c.profile)],
    ['first party', show.yes(c.firstParty)],
    ['require mfa', show.yes(c.requireMfa)],
    ['backchannel logout', show.opt(c.backchannelLogoutUri)],
    ['access token ttl', show.opt(c.accessTokenTtl)],
    ['id token ttl', show.opt(c.idTokenTtl)],
    ['refresh token ttl', show.opt(c.refreshTokenTtl)],
    ['status', c.disabled ? 'disabled' : 'enabled'],
    ['version', String(c.version)],
    ['created', show.date(c.createdAt)],
    ['updated', show.date(c.updatedAt)],
  ]);
}

const SECRET_NOTE = '(shown only once: store it now)';

async function allClients(ctx: CommandContext): Promise<ClientView[]> {
  const db = await ctx.db();
  return everyPage((page) => listClients(db, page));
}

export const clientCommands: Command[] = [
  {
    name: 'clients create',
    summary: 'register an OAuth client; prints client_id and, for confidential clients, client_secret (once)',
    usage: `--name N --grant G… [--id ID] [options]

  --id ID                          client_id to use (default: 22 random characters)
${SETTINGS_USAGE}`,
    options: { ...settingFlags, id: { type: 'string' } },
    async run(ctx, values) {
      flags.required(values, 'name');
      if (!flags.words(values, 'grant')?.length) throw new CliError(`--grant is required (one or more of: ${GRANT_TYPES.join(', ')})`);
      const input = await settingsFromFlags(values, 'create');
      const id = flags.str(values, 'id');
      if (id !== undefined) input.id = id;
      const db = await ctx.db();
      const { client, clientSecret } = await withFlagNames(FLAG_OF, () => createClientAs(db, ctx.actor, input as ClientInput));
      ctx.print(
        aligned([
          ['client_id', client.id],
          ...(clientSecret ? [['client_secret', `${clientSecret}  ${SECRET_NOTE}`] as [string, string]] : []),
        ]),
        clientJson(client, clientSecret),
      );
    },
  },
  {
    name: 'clients list',
    summary: 'list registered clients',
    usage: `

  --json   print a JSON array of clients`,
    async run(ctx) {
      const all = await allClients(ctx);
      ctx.print(
        all.length === 0
          ? 'no clients'
          : table(
              ['CLIENT_ID', 'NAME', 'TYPE', 'GRANTS', 'STATUS'],
              all.map((c) => [c.id, c.name, c.public ? 'public' : 'confidential', c.grants.join(','), c.disabled ? 'disabled' : 'enabled']),
            ),
        all.map((c) => clientJson(c)),
      );
    },
  },
  {
    name: 'clients show',
    summary: 'show one client (never its secret)',
    usage: `CLIENT_ID`,
    positionals: 1,
    async run(ctx, _values, [id]) {
      const client = await getClient(await ctx.db(), id!);
      ctx.print(clientText(client), clientJson(client));
    },
  },
  {
    name: 'clients update',
    summary: 'change a client; a list flag replaces that list',
    usage: `CLIENT_ID [options]

  Takes the flags of \`clients create\` (except --id); a repeatable flag replaces
  the stored list, and an empty value (--redirect-uri '') clears a list or an
  optional value. Only the flags given change.
  --disable | --enable             turn the client off (invalid_client, its tokens inactive) or back on
  --no-public                      make a public client confidential (a secret is generated and printed once)
  --no-require-dpop | --no-require-par | --no-first-party | --no-require-mfa
${SETTINGS_USAGE}`,
    options: {
      ...settingFlags,
      'no-public': { type: 'boolean' },
      'no-require-dpop': { type: 'boolean' },
      'no-require-par': { type: 'boolean' },
      'no-first-party': { type: 'boolean' },
      'no-require-mfa': { type: 'boolean' },
      disable: { type: 'boolean' },
      enable: { type: 'boolean' },
    },
    positionals: 1,
    async run(ctx, values, [id]) {
      const patch = await settingsFromFlags(values, 'update');
      if (Object.keys(patch).length === 0) throw new CliError('nothing to change (see gatehouse clients update --help)');
      const db = await ctx.db();
      const { client, clientSecret } = await withFlagNames(FLAG_OF, () => updateClientAs(db, ctx.actor, id!, patch as ClientPatch));
      ctx.print(
        [`updated client ${client.id} (version ${client.version})`, ...(clientSecret ? [`client_secret  ${clientSecret}  ${SECRET_NOTE}`] : [])].join('\n'),
        clientJson(client, clientSecret),
      );
    },
  },
  {
    name: 'clients delete',
    summary: 'delete a client',
    usage: `CLIENT_ID`,
    positionals: 1,
    async run(ctx, _values, [id]) {
      await deleteClientAs(await ctx.db(), ctx.actor, id!);
      ctx.print(`deleted client ${id}`, { client_id: id, deleted: true });
    },
  },
  {
    name: 'clients rotate-secret',
    summary: 'generate a new client secret; the old one keeps working for the grace period',
    usage: `CLIENT_ID [--grace SECONDS]

  --grace SECONDS   how long the old secret still works (default CLIENT_SECRET_ROTATION_GRACE_SECONDS; 0: stops at once)
  --json            print {"client_id", "client_secret", "previousSecretExpiresAt"}`,
    options: { grace: { type: 'string' } },
    positionals: 1,
    async run(ctx, values, [id]) {
      const graceSeconds = flags.int(values, 'grace', 0, 30 * 86_400) ?? ctx.config.clientSecretRotationGraceSeconds;
      const db = await ctx.db();
      const r = await withFlagNames(FLAG_OF, () => rotateClientSecretAs(db, ctx.actor, id!, { graceSeconds }));
      ctx.print(
        aligned([
          ['client_id', id!],
          ['client_secret', `${r.clientSecret}  ${SECRET_NOTE}`],
          ['old secret', r.previousSecretExpiresAt ? `valid until ${r.previousSecretExpiresAt.toISOString()}` : 'no longer valid'],
        ]),
        { client_id: id, client_secret: r.clientSecret, previousSecretExpiresAt: r.previousSecretExpiresAt },
      );
    },
  },
];
