// /admin/v1/resources (API resources) and /admin/v1/roles (roles on them).
import { createHash } from 'node:crypto';
import { ResourceInput, ResourcePatch, getResource, listResources } from '../../resources/store.ts';
import { RoleInput, RolePatch, getRole, listRoles, roleMemberIds, type RoleView } from '../../resources/roles.ts';
import { getAccount } from '../../accounts/store.ts';
import { createResourceAs, createRoleAs, deleteResourceAs, deleteRoleAs, updateResourceAs, updateRoleAs } from '../../resources/writes.ts';
import { pageLimit, toPage } from '../../kernel/pagination.ts';
import { assertIfMatch, setNextLink } from '../http.ts';
import { PageQuery, RoleQuery } from '../schemas.ts';
import { actorOf, defineRoute, location, reply, versionedWrite, type AdminRoute } from '../route.ts';

const READ = 'gatehouse:resources:read';
const WRITE = 'gatehouse:resources:write';

async function currentVersion(db: Parameters<typeof getResource>[0], identifier: string): Promise<number | undefined> {
  return getResource(db, identifier).then(
    (r) => r.version,
    () => undefined,
  );
}

/**
 * Roles have no version counter: their ETag is a digest of what an edit can
 * change (resource, scopes) and of the instant of their last change.
 */
export const roleTag = (r: RoleView) =>
  createHash('sha256').update(JSON.stringify([r.resource, r.scopes, r.updatedAt.getTime()])).digest('base64url').slice(0, 16);

const IDENTIFIER_NOTE = 'The identifier is a URI: percent-encode it in the path (https%3A%2F%2Fapi.example.com).';

export const resourceRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/resources',
    operationId: 'listResources',
    tag: 'resources',
    summary: 'List API resources',
    description: 'Resources ordered by identifier, the built-in urn:gatehouse:admin included.',
    scope: READ,
    query: PageQuery,
    responses: [{ status: 200, description: 'a page of resources', schema: 'ResourcePage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const page = await listResources(deps.db, { cursor: query.cursor, limit: query.limit });
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, page);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/resources',
    operationId: 'createResource',
    tag: 'resources',
    summary: 'Register an API resource',
    description: 'The urn:gatehouse: namespace is reserved for built-in resources.',
    scope: WRITE,
    conflicts: true,
    body: { schema: 'ResourceInput', required: true, zod: ResourceInput },
    responses: [{ status: 201, description: 'the resource', schema: 'ResourceView', headers: ['ETag', 'Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const r = await createResourceAs(deps.db, actorOf(call), body);
      reply(ctx, 201, r, { etag: r.version, location: location('resources', r.identifier) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/resources/{identifier}',
    operationId: 'getResource',
    tag: 'resources',
    summary: 'Show an API resource',
    description: IDENTIFIER_NOTE,
    scope: READ,
    responses: [{ status: 200, description: 'the resource', schema: 'ResourceView', headers: ['ETag'] }],
    async handle({ ctx, deps, params }) {
      const r = await getResource(deps.db, params.identifier!);
      reply(ctx, 200, r, { etag: r.version });
    },
  }),
  defineRoute({
    method: 'patch',
    path: '/resources/{identifier}',
    operationId: 'updateResource',
    tag: 'resources',
    summary: 'Change an API resource',
    description: `JSON merge patch (a list replaces the stored list; name null clears it). On the built-in resource only name, accessTokenTtl and signingAlg may change, and only by a caller holding gatehouse:admin. ${IDENTIFIER_NOTE}`,
    scope: WRITE,
    ifMatch: true,
    conflicts: true,
    body: { schema: 'ResourcePatch', required: true, zod: ResourcePatch },
    responses: [{ status: 200, description: 'the changed resource', schema: 'ResourceView', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const identifier = params.identifier!;
      const r = await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getResource(tx, identifier);
            return updateResourceAs(tx, actorOf(call), identifier, body, { expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, identifier),
      );
      reply(ctx, 200, r, { etag: r.version });
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/resources/{identifier}',
    operationId: 'deleteResource',
    tag: 'resources',
    summary: 'Delete an API resource',
    description: `Also removes it from every client's resource list. 409 for the built-in resource and while roles on it exist. ${IDENTIFIER_NOTE}`,
    scope: WRITE,
    ifMatch: true,
    conflicts: true,
    responses: [{ status: 204, description: 'deleted' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const identifier = params.identifier!;
      await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getResource(tx, identifier);
            await deleteResourceAs(tx, actorOf(call), identifier, { expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, identifier),
      );
      reply(ctx, 204, undefined);
    },
  }),
];

export const roleRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/roles',
    operationId: 'listRoles',
    tag: 'roles',
    summary: 'List roles',
    description: 'Roles ordered by name.',
    scope: READ,
    query: RoleQuery,
    responses: [{ status: 200, description: 'a page of roles', schema: 'RolePage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const all = await listRoles(deps.db, query.resource !== undefined ? { resource: query.resource } : {});
      const after = query.cursor;
      const page = toPage(after === undefined ? all : all.filter((r) => r.name > after), pageLimit(query.limit), (r) => r.name);
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, page);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/roles',
    operationId: 'createRole',
    tag: 'roles',
    summary: 'Create a role',
    description: 'The resource must exist and offer every scope. A role on urn:gatehouse:admin needs a caller holding every scope it carries (403 otherwise).',
    scope: WRITE,
    conflicts: true,
    body: { schema: 'RoleInput', required: true, zod: RoleInput },
    responses: [{ status: 201, description: 'the role', schema: 'RoleView', headers: ['ETag', 'Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const r = await createRoleAs(deps.db, actorOf(call), body);
      reply(ctx, 201, r, { etag: roleTag(r), location: location('roles', r.name) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/roles/{name}',
    operationId: 'getRole',
    tag: 'roles',
    summary: 'Show a role',
    scope: READ,
    responses: [{ status: 200, description: 'the role', schema: 'RoleView', headers: ['ETag'] }],
    async handle({ ctx, deps, params }) {
      const r = await getRole(deps.db, params.name!);
      reply(ctx, 200, r, { etag: roleTag(r) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/roles/{name}/members',
    operationId: 'listRoleMembers',
    tag: 'roles',
    summary: 'List the people holding a role',
    description: 'People ordered by id, one page at a time. It names people, so it needs the people read scope.',
    scope: 'gatehouse:users:read',
    query: PageQuery,
    responses: [{ status: 200, description: 'a page of people', schema: 'UserPage', headers: ['Link'] }],
    async handle({ ctx, deps, params, query }) {
      const ids = await roleMemberIds(deps.db, params.name!, { cursor: query.cursor, limit: query.limit });
      const items = [];
      for (const id of ids.items) items.push(await getAccount(deps.db, id).catch(() => undefined));
      setNextLink(ctx, ids.nextCursor);
      reply(ctx, 200, { items: items.filter((a) => a !== undefined), nextCursor: ids.nextCursor });
    },
  }),
  defineRoute({
    method: 'patch',
    path: '/roles/{name}',
    operationId: 'updateRole',
    tag: 'roles',
    summary: 'Change a role',
    description: 'Its resource and/or scopes (a list replaces the stored list); the name cannot change. Admin-API scopes the role gains need a caller holding them (403 otherwise); the built-in gatehouse-admin role cannot change (409). Affects tokens issued afterwards.',
    scope: WRITE,
    ifMatch: true,
    body: { schema: 'RolePatch', required: true, zod: RolePatch },
    responses: [{ status: 200, description: 'the changed role', schema: 'RoleView', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const name = params.name!;
      const r = await deps.db.$transaction(async (tx) => {
        assertIfMatch(ctx, roleTag(await getRole(tx, name)));
        return updateRoleAs(tx, actorOf(call), name, body);
      });
      reply(ctx, 200, r, { etag: roleTag(r) });
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/roles/{name}',
    operationId: 'deleteRole',
    tag: 'roles',
    summary: 'Delete a role',
    description: 'The people who held it lose it (tokens issued afterwards). The built-in gatehouse-admin role cannot be deleted (409).',
    scope: WRITE,
    ifMatch: true,
    responses: [{ status: 204, description: 'deleted' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const name = params.name!;
      await deps.db.$transaction(async (tx) => {
        assertIfMatch(ctx, roleTag(await getRole(tx, name)));
        await deleteRoleAs(tx, actorOf(call), name);
      });
      reply(ctx, 204, undefined);
    },
  }),
];
