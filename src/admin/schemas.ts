// The admin API's own zod schemas: request bodies the domains have no schema
// for (users, secret and key rotation), query strings, and the shapes of the
// responses. With the domains' input schemas (ClientInput, ResourceInput,
// RoleInput and their patches) they generate the OpenAPI document, and the
// tests check real responses against the response schemas.
import { z } from 'zod';
import { AUTH_METHODS, CLIENT_PROFILES, GRANT_TYPES } from '../clients/store.ts';
import { PAGE_LIMIT } from '../kernel/pagination.ts';
import { SIGNING_ALGS } from '../keys/index.ts';

const dateTime = z.iso.datetime();
const seconds = (min: number, max: number) =>
  z
    .number({ error: 'must be a number of seconds' })
    .int('must be a whole number of seconds')
    .min(min, `must be between ${min} and ${max}`)
    .max(max, `must be between ${min} and ${max}`);

// ------------------------------------------------------------ request bodies

export const UserInput = z
  .strictObject({
    email: z.string({ error: 'must be a string' }).max(320, 'must be at most 254 characters'),
    name: z.string({ error: 'must be a string or null' }).max(1000, 'must be at most 200 characters').nullable().optional(),
    password: z.string({ error: 'must be a string' }).max(4096, 'must be at most 1024 bytes').optional(),
    emailVerified: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .meta({
    description:
      'A new person. Emails are stored trimmed and lower-cased and are unique. Without `password` the account cannot log in until one is set (POST /users/{id}/password). Passwords: 8 characters to 1024 bytes, stored with argon2id.',
  });

export const InvitationInput = z
  .strictObject({
    email: z.string({ error: 'must be a string' }).max(320, 'must be at most 254 characters'),
    name: z.string({ error: 'must be a string or null' }).max(1000, 'must be at most 200 characters').nullable().optional(),
    roles: z
      .array(z.string({ error: 'must be a list of role names' }), { error: 'must be a list of role names' })
      .max(50, 'must have at most 50 entries')
      .optional()
      .meta({ description: 'roles to give the person; a role on the admin API needs a caller holding its permissions (403 otherwise)' }),
  })
  .meta({
    description:
      'A person to invite. They get a mail with a single-use link, valid 7 days, to choose a password (which verifies their email) and to set up two-step verification where an application requires it.',
  });

export const UserPatch = z
  .strictObject({
    email: z.string({ error: 'must be a string' }).max(320, 'must be at most 254 characters').optional(),
    name: z.string({ error: 'must be a string or null' }).max(1000, 'must be at most 200 characters').nullable().optional(),
    emailVerified: z.boolean({ error: 'must be true or false' }).optional(),
    disabled: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .meta({ description: 'Changes to a person (JSON merge patch): any subset of the fields; `name: null` clears the name. A new email is unverified unless `emailVerified` is given too.' });

export const PasswordInput = z
  .strictObject({ password: z.string({ error: 'must be a string' }).max(4096, 'must be at most 1024 bytes') })
  .meta({ description: 'The new password (8 characters to 1024 bytes). It also clears the account\'s login lockout.' });

export const SecretRotationInput = z
  .strictObject({
    graceSeconds: seconds(0, 30 * 86_400)
      .optional()
      .meta({ description: 'how long the previous secret keeps working (default CLIENT_SECRET_ROTATION_GRACE_SECONDS; 0: it stops at once)' }),
  })
  .meta({ description: 'Secret rotation options; the body may be omitted.' });

export const KeyRotationInput = z
  .strictObject({
    alg: z.enum(SIGNING_ALGS).optional().meta({ description: 'which key to rotate (default RS256)' }),
    leadSeconds: seconds(0, 30 * 86_400)
      .optional()
      .meta({ description: 'how long the new key is published before it signs (default KEY_ROTATION_LEAD_SECONDS; 0 signs at once, for emergencies)' }),
  })
  .meta({ description: 'Key rotation options; the body may be omitted.' });

// ------------------------------------------------------------- query strings

const limit = z.coerce
  .number({ error: 'must be a whole number' })
  .int('must be a whole number')
  .min(PAGE_LIMIT.min, `must be between ${PAGE_LIMIT.min} and ${PAGE_LIMIT.max}`)
  .max(PAGE_LIMIT.max, `must be between ${PAGE_LIMIT.min} and ${PAGE_LIMIT.max}`)
  .optional()
  .meta({ description: `page size, ${PAGE_LIMIT.min} to ${PAGE_LIMIT.max} (default ${PAGE_LIMIT.default})` });
const cursor = z
  .string()
  .min(1, 'must not be empty')
  .max(1024, 'is too long')
  .optional()
  .meta({ description: "the previous page's `nextCursor` (opaque)" });

export const PageQuery = z.strictObject({ cursor, limit });
export const ClientQuery = z.strictObject({
  cursor,
  limit,
  q: z.string().max(200, 'is too long').optional().meta({ description: 'only clients whose id or name contains this text (case-insensitive)' }),
  status: z.enum(['enabled', 'disabled']).optional().meta({ description: 'only enabled or only disabled clients' }),
});
export const UserQuery = z.strictObject({
  cursor,
  limit,
  email: z.string().max(320, 'is too long').optional().meta({ description: 'only people whose email contains this text (case-insensitive)' }),
});
export const RoleQuery = z.strictObject({
  cursor,
  limit,
  resource: z.string().max(2048, 'is too long').optional().meta({ description: 'only the roles on this API resource' }),
});
export const KeyQuery = z.strictObject({
  cursor,
  limit,
  status: z.enum(['active', 'pending', 'retired', 'expired']).optional().meta({ description: 'only keys in this state' }),
});
const instant = (description: string) =>
  z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z' }).optional().meta({ description });
export const AuditQuery = z.strictObject({
  cursor: z
    .string()
    .regex(/^\d{1,18}$/, 'must be the nextCursor of a previous page')
    .optional()
    .meta({ description: "the previous page's `nextCursor` (events are listed newest first)" }),
  limit,
  action: z.string().max(200, 'is too long').optional().meta({ description: 'an action (client.update) or a prefix with .* (client.*)' }),
  actor: z.string().max(200, 'is too long').optional().meta({ description: 'the actor id: a client id or an account id' }),
  target_type: z.string().max(100, 'is too long').optional().meta({ description: 'client, user, resource, role, key, …' }),
  target_id: z.string().max(2048, 'is too long').optional().meta({ description: 'the target id (client id, account id, resource identifier, role name, kid)' }),
  since: instant('only events at or after this instant'),
  until: instant('only events before this instant'),
});

// ----------------------------------------------------------------- responses

const nextCursor = z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last page' });
export const page = <T extends z.ZodType>(item: T) => z.strictObject({ items: z.array(item), nextCursor });

export const ClientView = z
  .strictObject({
    id: z.string().meta({ description: 'the OAuth client_id' }),
    name: z.string(),
    public: z.boolean(),
    grants: z.array(z.enum(GRANT_TYPES)),
    redirectUris: z.array(z.string()),
    postLogoutRedirectUris: z.array(z.string()),
    scopes: z.array(z.string()),
    resources: z.array(z.string()),
    authMethod: z.enum(AUTH_METHODS),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).nullable(),
    jwksUri: z.string().nullable(),
    requireDpop: z.boolean(),
    requirePar: z.boolean().meta({ description: 'authorization requests must be pushed first (PAR, RFC 9126)' }),
    profile: z.enum(CLIENT_PROFILES).nullable().meta({ description: 'a security profile the client is held to: fapi2 (FAPI 2.0 Security Profile), or null' }),
    firstParty: z.boolean(),
    requireMfa: z.boolean(),
    backchannelLogoutUri: z.string().nullable(),
    accessTokenTtl: z.number().int().nullable(),
    idTokenTtl: z.number().int().nullable(),
    refreshTokenTtl: z.number().int().nullable(),
    disabled: z.boolean(),
    hasSecret: z.boolean().meta({ description: 'whether a client secret is set; the secret itself is never shown again' }),
    previousSecretExpiresAt: dateTime.nullable().meta({ description: 'until when the secret replaced by the last rotation still works' }),
    createdAt: dateTime,
    updatedAt: dateTime,
    version: z.number().int().meta({ description: 'optimistic-concurrency counter; the ETag is its value in quotes' }),
  })
  .meta({ description: 'A registered client. Never carries secret material.' });

export const ClientWithSecret = ClientView.extend({
  clientSecret: z
    .string()
    .optional()
    .meta({ description: 'the client secret, present only when one was just generated; shown once, stored only as a digest' }),
}).meta({ description: 'A client, with its secret when this request generated one.' });

export const UserView = z
  .strictObject({
    id: z.uuid(),
    email: z.string(),
    name: z.string().nullable(),
    emailVerified: z.boolean(),
    disabled: z.boolean(),
    hasPassword: z.boolean(),
    mfaEnabled: z.boolean(),
    createdAt: dateTime,
    updatedAt: dateTime,
    lastLoginAt: dateTime.nullable(),
    version: z.number().int(),
  })
  .meta({ description: 'A person. Never carries the password hash or MFA secrets.' });

export const ResourceView = z
  .strictObject({
    identifier: z.string().meta({ description: 'the resource indicator (RFC 8707): the `aud` of its access tokens' }),
    name: z.string().nullable(),
    scopes: z.array(z.string()),
    accessTokenTtl: z.number().int(),
    signingAlg: z.enum(SIGNING_ALGS),
    servedBy: z.array(z.string()),
    requireRoles: z.boolean(),
    sensitiveScopes: z.array(z.string()).meta({ description: 'scopes marked sensitive for the access map (GET /admin/v1/access-map)' }),
    builtIn: z.boolean(),
    createdAt: dateTime,
    updatedAt: dateTime,
    version: z.number().int(),
  })
  .meta({ description: 'An API resource.' });

export const RoleView = z
  .strictObject({
    name: z.string(),
    resource: z.string(),
    scopes: z.array(z.string()),
    accountCount: z.number().int(),
    builtIn: z.boolean().meta({ description: 'the built-in gatehouse-admin role: it cannot be changed or deleted' }),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .meta({ description: "A role: scopes on one API resource granted to the people who hold it. Its ETag is derived from updatedAt." });

export const RoleGrant = z.strictObject({ name: z.string(), resource: z.string(), scopes: z.array(z.string()) });
export const UserRoles = z.strictObject({ items: z.array(RoleGrant) }).meta({ description: "A person's roles, by name." });

export const KeyView = z
  .strictObject({
    kid: z.string(),
    alg: z.string(),
    status: z.enum(['active', 'pending', 'retired', 'expired']),
    createdAt: dateTime,
    activatesAt: dateTime.meta({ description: 'published from creation; signs from this instant' }),
    retiredAt: dateTime.nullable(),
    publishUntil: dateTime.nullable().meta({ description: 'published in /jwks until then, so every token it signed can be verified' }),
  })
  .meta({ description: 'A signing key (no key material).' });

export const KeyRotationResult = z
  .strictObject({ kid: z.string(), alg: z.enum(SIGNING_ALGS), activatesAt: dateTime })
  .meta({ description: 'The new key: published in /jwks at once, signs from activatesAt.' });

export const FactorView = z
  .strictObject({
    id: z.string().meta({ description: "'totp' for the authenticator app, the passkey's id for a passkey" }),
    type: z.enum(['totp', 'passkey']),
    name: z.string(),
    createdAt: dateTime.nullable(),
    lastUsedAt: dateTime.nullable(),
    backedUp: z.boolean().optional().meta({ description: 'passkeys: synced (backed up) by its provider' }),
    deviceType: z.string().optional().meta({ description: 'passkeys: singleDevice or multiDevice' }),
  })
  .meta({ description: 'A second factor of a person (no secret).' });

export const UserFactors = z
  .strictObject({
    emailVerified: z.boolean(),
    items: z.array(FactorView),
    recoveryCodesLeft: z.number().int().meta({ description: 'unused recovery codes' }),
  })
  .meta({ description: "A person's verification state and second factors." });

export const SessionView = z
  .strictObject({
    uid: z.string().meta({ description: 'the session id used by DELETE /users/{id}/sessions/{sessionId}' }),
    loginAt: dateTime.nullable(),
    expiresAt: dateTime.nullable(),
    clients: z.array(z.string()).meta({ description: 'client ids signed in through this session' }),
    acr: z.string().nullable(),
    amr: z.array(z.string()),
    userAgent: z.string().nullable(),
    ip: z.string().nullable(),
    lastUsedAt: dateTime.nullable(),
  })
  .meta({ description: 'A live sign-in session of a person (device, address, last use).' });

export const UserSessions = z.strictObject({ items: z.array(SessionView) }).meta({ description: "A person's live sessions, most recently used first." });

export const InvitationView = z
  .strictObject({
    user: UserView,
    roles: z.array(z.string()),
    expiresAt: dateTime.meta({ description: 'when the link stops working' }),
    mailed: z.boolean().meta({ description: 'whether the mail was handed to the mail server; false: see mailError, then resend' }),
    mailError: z.string().optional(),
  })
  .meta({ description: 'An invitation: the invited person and whether their mail went out. The link itself is never returned.' });

export const SessionsRevoked = z
  .strictObject({
    sessions: z.number().int(),
    grants: z.number().int(),
    records: z.number().int().meta({ description: 'every record deleted: sessions, grants, refresh tokens, codes, interactions' }),
    backchannel: z
      .array(z.strictObject({ clientId: z.string(), delivered: z.boolean(), error: z.string().optional() }))
      .meta({ description: 'back-channel logout notices sent to the apps of the ended sessions (those with a back-channel logout URI)' }),
  })
  .meta({
    description:
      "What was revoked. The person's sessions, grants and refresh tokens end at once, and their access tokens stop being accepted by introspection, token exchange, userinfo and the admin API; resource servers that verify JWTs locally accept them until they expire.",
  });

export const AuditEventView = z
  .strictObject({
    id: z.string().meta({ description: 'increasing event id' }),
    occurredAt: dateTime,
    action: z.string(),
    actorType: z.string(),
    actorId: z.string().nullable(),
    targetType: z.string().nullable(),
    targetId: z.string().nullable(),
    requestId: z.string().nullable(),
    ip: z.string().nullable(),
    details: z.unknown().meta({ description: 'for changes: {before, after, changes}; never secrets' }),
  })
  .meta({ description: 'An audit event (append-only).' });

export const ProblemSchema = z
  .strictObject({
    type: z.string().meta({ description: 'urn:gatehouse:problem:<kind>' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.strictObject({ field: z.string(), message: z.string() })).optional().meta({ description: 'for 400/422: the offending fields' }),
  })
  .meta({ description: 'RFC 9457 problem details (application/problem+json).' });

export const IdpView = z
  .strictObject({
    id: z.string(),
    name: z.string().meta({ description: 'shown on the login page as "Continue with <name>"' }),
    issuer: z.string(),
    clientId: z.string().meta({ description: "Gatehouse's client id at the provider" }),
    scopes: z.array(z.string()),
    domains: z.array(z.string()).meta({ description: 'email domains the login form sends to this provider' }),
    disabled: z.boolean(),
    createdAt: dateTime,
    updatedAt: dateTime,
    version: z.number().int(),
  })
  .meta({ description: 'An upstream OpenID provider. Never carries its client secret.' });

// ------------------------------------------------------------- access map

export const AccessMapQuery = z.strictObject({
  client: z.string().max(128, 'is too long').optional().meta({ description: 'what this client reaches (directly and through token-exchange chains)' }),
  api: z.string().max(2048, 'is too long').optional().meta({ description: 'every client and role that reaches this API (resource identifier)' }),
  scope: z.string().max(256, 'is too long').optional().meta({ description: 'with api: only this scope' }),
  ifLeaked: z.string().max(128, 'is too long').optional().meta({ description: "what an attacker holding this client's credentials reaches, most sensitive first" }),
  format: z.enum(['json', 'svg', 'table', 'mermaid', 'dot']).optional().meta({ description: 'json (default); svg (image/svg+xml, for the console); table, mermaid or dot (text/plain)' }),
});

const Hop = z
  .strictObject({
    via: z.enum(['client_credentials', 'sign_in', 'served_token', 'exchange']),
    client: z.string().optional(),
    actor: z.string().optional(),
    from: z.string().optional(),
    api: z.string(),
  })
  .meta({ description: 'one step of a path: how a token for `api` is got (client_credentials, a sign-in through `client`, a token `client` receives as the API it serves, or an exchange by `actor` of a token for `from`)' });

export const AccessMapView = z
  .strictObject({
    query: z.strictObject({ client: z.string().optional(), api: z.string().optional(), scope: z.string().optional(), ifLeaked: z.string().optional() }),
    entries: z.array(
      z.strictObject({
        principal: z.string().meta({ description: '`client:<id>`, `role:<name>` (what holding the role adds) or `people` (any signed-in person)' }),
        api: z.string(),
        scope: z.string(),
        sensitive: z.boolean(),
        chain: z.number().int().meta({ description: 'token exchanges on the path' }),
        path: z.array(Hop),
        pathText: z.string(),
        reachedBy: z.number().int().optional().meta({ description: 'ifLeaked only: how many principals reach this scope at all' }),
      }),
    ),
    longestChain: z.strictObject({ length: z.number().int(), path: z.array(Hop), pathText: z.string() }),
    summary: z.strictObject({ principals: z.number().int(), apis: z.number().int(), scopes: z.number().int(), sensitive: z.number().int() }),
  })
  .meta({ description: 'Who can reach which API and scope, and by which path (sorted; the same data as `gatehouse access-map --json`).' });

const minute = z.strictObject({
  minute: dateTime,
  tokens: z.number().int(),
  tokenErrors: z.number().int(),
  logins: z.number().int(),
  loginFailures: z.number().int().meta({ description: 'refused and locked-out password logins' }),
  requests: z.number().int(),
  serverErrors: z.number().int(),
});
export const StatsView = z
  .strictObject({
    counts: z.strictObject({ clients: z.number().int(), people: z.number().int(), apis: z.number().int(), roles: z.number().int() }),
    lastHour: z.strictObject({
      tokensIssued: z.number().int(),
      tokenErrors: z.number().int(),
      logins: z.strictObject({ success: z.number().int(), failure: z.number().int(), locked: z.number().int() }),
      requests: z.number().int(),
      serverErrors: z.number().int().meta({ description: 'responses with a 5xx status' }),
      perMinute: z.array(minute).meta({ description: '60 entries, oldest first, the current minute last' }),
    }),
  })
  .meta({
    description:
      "Counts of the deployment, and the last hour of the answering process's own counters (tokens issued, token errors, password logins, requests, 5xx), minute by minute. With several workers or instances each answers for itself; Prometheus (/metrics) has the totals.",
  });
