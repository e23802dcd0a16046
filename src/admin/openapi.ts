// The OpenAPI 3.1 document of the admin API, generated from the route table
// (the same table the router is built from) and the zod schemas (z.toJSONSchema,
// JSON Schema 2020-12: OpenAPI 3.1's own dialect).
import { z } from 'zod';
import { ClientInput, ClientPatch, GRANT_TYPES } from '../clients/store.ts';
import { IdpInput, IdpPatch } from '../federation/store.ts';
import { PAGE_LIMIT } from '../kernel/pagination.ts';
import { RoleInput, RolePatch } from '../resources/roles.ts';
import { ADMIN_SCOPES, ResourceInput, ResourcePatch } from '../resources/store.ts';
import { FULL_ADMIN_SCOPE } from './auth.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import { ADMIN_BASE, type AdminRoute } from './route.ts';
import {
  AuditEventView,
  AccessMapView,
  ClientView,
  ClientWithSecret,
  IdpView,
  KeyRotationInput,
  KeyRotationResult,
  KeyView,
  PasswordInput,
  ProblemSchema,
  ResourceView,
  RoleView,
  SecretRotationInput,
  SessionsRevoked,
  UserFactors,
  UserSessions,
  InvitationInput,
  InvitationView,
  StatsView,
  UserInput,
  UserPatch,
  UserRoles,
  UserView,
} from './schemas.ts';

type Json = Record<string, unknown>;

/** Every named schema of the document. Pages are built from their item schema. */
const COMPONENT_SCHEMAS: Record<string, z.ZodType> = {
  ClientInput,
  ClientPatch,
  ClientView,
  ClientWithSecret,
  SecretRotationInput,
  ResourceInput,
  ResourcePatch,
  ResourceView,
  RoleInput,
  RolePatch,
  RoleView,
  UserInput,
  InvitationInput,
  InvitationView,
  UserPatch,
  UserView,
  UserRoles,
  PasswordInput,
  SessionsRevoked,
  UserFactors,
  UserSessions,
  KeyView,
  KeyRotationInput,
  KeyRotationResult,
  AuditEventView,
  IdpInput,
  IdpPatch,
  IdpView,
  AccessMapView,
  StatsView,
  Problem: ProblemSchema,
};
const PAGES: Record<string, string> = {
  ClientPage: 'ClientView',
  ResourcePage: 'ResourceView',
  RolePage: 'RoleView',
  UserPage: 'UserView',
  KeyPage: 'KeyView',
  AuditEventPage: 'AuditEventView',
  IdpPage: 'IdpView',
};

const DESCRIPTIONS: Record<string, string> = {
  ClientInput: 'A new client: the fields of `gatehouse clients create` and of the apply file. `id` is generated when absent; `authMethod` defaults to none for public clients and client_secret_basic otherwise. Secrets cannot be given.',
  ClientPatch: 'Changes to a client (JSON merge patch): any subset of the fields. A list replaces the stored list; null clears an optional value. `id` may be given only unchanged.',
  ResourceInput: 'A new API resource: the fields of `gatehouse resources create` and of the apply file.',
  ResourcePatch: 'Changes to an API resource (JSON merge patch): a list replaces the stored list; `name: null` clears it.',
  RoleInput: 'A new role: scopes on one API resource (which must offer them).',
  RolePatch: 'Changes to a role: its resource and/or scopes; the name cannot change.',
  IdpInput: 'A new upstream OpenID provider: the fields of `gatehouse idps create`. `clientSecret` is write-only: stored encrypted, never answered. Scopes default to openid email profile (openid is always asked).',
  IdpPatch: 'Changes to an upstream provider (JSON merge patch): any subset of the fields; a list replaces the stored list; `clientSecret` replaces the secret.',
};

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  'gatehouse:admin': 'everything',
  'gatehouse:clients:read': 'list and show clients',
  'gatehouse:clients:write': 'create, change, delete clients; rotate their secrets',
  'gatehouse:users:read': 'list and show people and their roles',
  'gatehouse:users:write': 'create, change, delete people; passwords, sessions, role assignments',
  'gatehouse:resources:read': 'list and show API resources and roles',
  'gatehouse:resources:write': 'create, change, delete API resources and roles',
  'gatehouse:keys:read': 'list and show signing keys',
  'gatehouse:keys:write': 'rotate signing keys',
  'gatehouse:audit:read': 'read the audit trail',
};

const ID_OF: Record<string, string> = {
  clients: 'the client id',
  users: 'the account id (a UUID)',
  'audit-events': 'the event id',
};
const PATH_PARAMS: Record<string, string> = {
  identifier: 'the API resource identifier, percent-encoded (urn%3Aexample%3Aapi, https%3A%2F%2Fapi.example.com)',
  name: 'the role name',
  role: 'the role name',
  kid: 'the key id',
  ref: 'the identity provider id (a UUID) or its name, percent-encoded',
};

function jsonSchema(schema: z.ZodType): Json {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

function componentSchemas(): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(COMPONENT_SCHEMAS)) {
    const s = jsonSchema(schema);
    if (DESCRIPTIONS[name] && !s.description) s.description = DESCRIPTIONS[name];
    out[name] = s;
  }
  // The domains' grant type field validates with a check, which JSON Schema cannot show: list the values.
  for (const name of ['ClientInput', 'ClientPatch']) {
    const grants = (out[name]?.properties as Record<string, Json> | undefined)?.grants;
    const items = grants?.items as Json | undefined;
    if (items) items.enum = [...GRANT_TYPES];
    const jwks = (out[name]?.properties as Record<string, Json> | undefined)?.jwks;
    if (jwks) jwks.description = 'the client\'s public keys (a JWK set {"keys": [...]}, public members only), for private_key_jwt';
  }
  for (const [name, item] of Object.entries(PAGES)) {
    out[name] = {
      type: 'object',
      description: `One page, in order. Follow nextCursor (or the Link: rel="next" header) for the next.`,
      properties: {
        items: { type: 'array', items: { $ref: `#/components/schemas/${item}` } },
        nextCursor: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'pass as `cursor` for the next page; null on the last page' },
      },
      required: ['items', 'nextCursor'],
      additionalProperties: false,
    };
  }
  return out;
}

const ref = (kind: 'schemas' | 'responses' | 'parameters' | 'headers', name: string) => ({ $ref: `#/components/${kind}/${name}` });

function problemResponse(description: string, headers?: Json): Json {
  return { description, ...(headers && { headers }), content: { [PROBLEM_CONTENT_TYPE]: { schema: ref('schemas', 'Problem') } } };
}

function errorResponses(): Record<string, Json> {
  return {
    BadRequest: problemResponse('malformed JSON body or invalid query parameter'),
    Unauthorized: problemResponse('no access token, or one that is invalid, expired, revoked, for another audience, or whose client is disabled', {
      'WWW-Authenticate': ref('headers', 'WWW-Authenticate'),
    }),
    Forbidden: problemResponse('the token lacks the scope this operation needs, or the change would give an admin-API permission the caller does not hold (the detail names the scope)', { 'WWW-Authenticate': ref('headers', 'WWW-Authenticate') }),
    NotFound: problemResponse('no such entity'),
    Conflict: problemResponse('the entity already exists, or the change conflicts with the current state'),
    PreconditionFailed: problemResponse('If-Match does not match the current version: GET it again, reapply the change, retry', { ETag: ref('headers', 'ETag') }),
    PayloadTooLarge: problemResponse('the request body is larger than 256 KiB'),
    UnsupportedMediaType: problemResponse('the request body is not JSON'),
    ValidationFailed: problemResponse('the body is valid JSON but not a valid input; `errors` names the field'),
  };
}

function pathParams(path: string): Json[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    description: (name === 'id' ? ID_OF[path.split('/')[1]!] : PATH_PARAMS[name!]) ?? name,
    schema: { type: 'string' },
  }));
}

function queryParams(schema: z.ZodType | undefined): Json[] {
  if (!schema) return [];
  const props = (jsonSchema(schema).properties ?? {}) as Record<string, Json>;
  const required = new Set((jsonSchema(schema).required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: 'query', required: required.has(name), ...(typeof description === 'string' && { description }), schema: rest };
  });
}

function operation(route: AdminRoute): Json {
  const responses: Record<string, Json> = {};
  for (const r of route.responses) {
    const headers: Record<string, Json> = {};
    for (const h of r.headers ?? []) headers[h] = ref('headers', h);
    responses[String(r.status)] = {
      description: r.description,
      ...(Object.keys(headers).length > 0 && { headers }),
      ...(r.schema && { content: { 'application/json': { schema: ref('schemas', r.schema) } } }),
    };
  }
  const hasParams = route.path.includes('{');
  if (route.query || route.body) responses['400'] = ref('responses', 'BadRequest');
  if (route.scope !== null) {
    responses['401'] = ref('responses', 'Unauthorized');
    responses['403'] = ref('responses', 'Forbidden');
  }
  if (hasParams) responses['404'] = ref('responses', 'NotFound');
  if (route.conflicts) responses['409'] = ref('responses', 'Conflict');
  if (route.ifMatch) responses['412'] = ref('responses', 'PreconditionFailed');
  if (route.body) {
    responses['413'] = ref('responses', 'PayloadTooLarge');
    responses['415'] = ref('responses', 'UnsupportedMediaType');
    responses['422'] = ref('responses', 'ValidationFailed');
  }

  const parameters = [...pathParams(route.path), ...queryParams(route.query), ...(route.ifMatch ? [ref('parameters', 'IfMatch')] : [])];
  const bodyContent: Record<string, Json> = { 'application/json': { schema: ref('schemas', route.body?.schema ?? '') } };
  if (route.method === 'patch') bodyContent['application/merge-patch+json'] = { schema: ref('schemas', route.body?.schema ?? '') };

  const needs = route.scope === null ? [] : [route.scope, ...(route.alsoNeeds ?? [])];
  const scopeNote =
    route.scope === null
      ? 'Public: no token needed.'
      : `Needs the scope${needs.length > 1 ? 's' : ''} ${needs.map((s) => `\`${s}\``).join(' and ')} (or \`${FULL_ADMIN_SCOPE}\`).`;
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    description: [route.description, scopeNote].filter(Boolean).join('\n\n'),
    ...(parameters.length > 0 && { parameters }),
    ...(route.body && { requestBody: { required: route.body.required, content: bodyContent } }),
    responses,
    security:
      route.scope === null
        ? []
        : [{ oauth2: needs }, { oauth2: [FULL_ADMIN_SCOPE] }, { bearerJwt: needs }, { bearerJwt: [FULL_ADMIN_SCOPE] }],
    ...(route.scope !== null && { 'x-required-scopes': [...needs, FULL_ADMIN_SCOPE] }),
  };
}

const API_DESCRIPTION = `The REST administration API of Gatehouse: clients, people, API resources, roles, signing keys and the audit trail.

**Authorisation.** Every operation except this document needs a Gatehouse access token (a JWT, RFC 9068) for the built-in API resource \`urn:gatehouse:admin\`, sent as \`Authorization: Bearer <token>\`. Get one with the client_credentials grant at the token endpoint (\`resource=urn:gatehouse:admin\`) for a client that was granted the resource and the scopes. \`gatehouse:admin\` allows everything; the narrower scopes (\`gatehouse:clients:read\`, \`gatehouse:clients:write\`, \`gatehouse:users:read|write\`, \`gatehouse:resources:read|write\` (also roles), \`gatehouse:keys:read|write\`, \`gatehouse:audit:read\`) each allow the operations that name them; a write scope does not include the read scope. No or an invalid token: 401 with \`WWW-Authenticate: Bearer realm="gatehouse-admin"\` (plus \`error="invalid_token"\` when a token was sent); a missing scope: 403 with \`error="insufficient_scope"\` and the scope needed. The token's client must still be enabled and the token not revoked. DPoP-bound tokens (\`cnf.jkt\`) must be sent as \`Authorization: DPoP <token>\` with a DPoP proof for the request (htm, htu, ath, iat within 60 s); certificate-bound tokens are refused.

**No caller grants what it does not hold.** The scopes of \`urn:gatehouse:admin\` are admin-API permissions. A client holds those in its \`scopes\` when its \`resources\` include \`urn:gatehouse:admin\`; a person holds those their roles on \`urn:gatehouse:admin\` give (people reach this API only through a role on it, e.g. the built-in role \`gatehouse-admin\`). A change that would give an admin-API permission — a client's allowance (its own included), a role on this API, a role assignment — needs a caller that holds it itself (\`gatehouse:admin\` holds all). A client or person holding a permission the caller lacks may only lose power (renamed, disabled, narrowed, deleted, signed out): its secret, redirect URIs, keys, auth method, public flag, password, email and re-enabling are refused. Only \`gatehouse:admin\` changes \`urn:gatehouse:admin\` itself. A refusal is a 403 problem naming the missing scope, and nothing is written.

**Concurrency.** Single entities answer with a strong \`ETag\` (\`"<version>"\`; roles: their last change). PATCH, DELETE and secret rotation honour \`If-Match\`: when it does not match the current version the answer is 412 and nothing changes. If-Match is optional (as in Keycloak and Auth0): without it the change applies to the current state. Send it whenever two administrators may edit the same entity.

**Pagination.** Lists answer \`{items, nextCursor}\`; pass \`nextCursor\` as \`cursor\` (with the same filters) for the next page, until it is null. \`limit\` is ${PAGE_LIMIT.min}–${PAGE_LIMIT.max} (default ${PAGE_LIMIT.default}). A \`Link: <…>; rel="next"\` header carries the same.

**Errors.** RFC 9457 problem details (\`application/problem+json\`): 400 malformed JSON or query, 401, 403, 404, 409 duplicate or conflicting state, 412 stale If-Match, 413 body over 256 KiB, 415 body not JSON, 422 invalid input (\`errors: [{field, message}]\`).

**Audit.** Every change is recorded in the audit trail (actor, action, target, before/after without secrets, request id, source IP).`;

export function buildOpenApiDocument(routes: readonly AdminRoute[], issuer: string): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    (paths[route.path] ??= {})[route.method] = operation(route);
  }
  const scopes: Record<string, string> = {};
  for (const s of ADMIN_SCOPES) scopes[s] = SCOPE_DESCRIPTIONS[s] ?? s;
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: { title: 'Gatehouse admin API', version: '1', description: API_DESCRIPTION },
    servers: [{ url: new URL(ADMIN_BASE, issuer).href, description: 'this Gatehouse' }],
    tags: [
      { name: 'clients', description: 'OAuth clients' },
      { name: 'users', description: 'people: accounts, passwords, sessions, roles' },
      { name: 'resources', description: 'API resources (RFC 8707)' },
      { name: 'roles', description: 'roles: scopes on one API for the people who hold them' },
      { name: 'keys', description: 'signing keys' },
      { name: 'audit-events', description: 'the audit trail' },
      { name: 'idps', description: 'upstream OpenID providers people sign in through (gatehouse:admin only)' },
      { name: 'access', description: 'the access map: who can reach what' },
      { name: 'stats', description: "counts, and the answering process's last hour (the console's overview)" },
      { name: 'meta', description: 'this document' },
    ],
    paths,
    components: {
      schemas: componentSchemas(),
      responses: errorResponses(),
      parameters: {
        IfMatch: {
          name: 'If-Match',
          in: 'header',
          required: false,
          description: 'the ETag of the version this change is based on; 412 if it is no longer current',
          schema: { type: 'string' },
        },
      },
      headers: {
        ETag: { description: 'the version of the entity, e.g. "3"', schema: { type: 'string' } },
        Location: { description: 'the URL of the created entity', schema: { type: 'string' } },
        Link: { description: '<url>; rel="next" when there is a next page', schema: { type: 'string' } },
        'WWW-Authenticate': { description: 'RFC 6750 challenge: Bearer realm="gatehouse-admin", error=…, scope=…', schema: { type: 'string' } },
      },
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description: 'Gatehouse access tokens for resource urn:gatehouse:admin (client_credentials; send resource=urn:gatehouse:admin unless it is the client\'s only API).',
          flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes } },
        },
        bearerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'the same access token, sent as a bearer token' },
      },
    },
  };
}
