// /admin/v1/clients: the client registry.
import { ClientInput, ClientPatch, getClient, listClients, type ClientView } from '../../clients/store.ts';
import { createClientAs, deleteClientAs, rotateClientSecretAs, updateClientAs } from '../../clients/writes.ts';
import { setNextLink } from '../http.ts';
import { ClientQuery, SecretRotationInput } from '../schemas.ts';
import { actorOf, defineRoute, location, reply, versionedWrite, type AdminRoute } from '../route.ts';

const READ = 'gatehouse:clients:read';
const WRITE = 'gatehouse:clients:write';
const tag = 'clients';

const withSecret = (client: ClientView, clientSecret: string | undefined) => ({ ...client, ...(clientSecret !== undefined && { clientSecret }) });

async function currentVersion(db: Parameters<typeof getClient>[0], id: string): Promise<number | undefined> {
  return getClient(db, id).then(
    (c) => c.version,
    () => undefined,
  );
}

export const clientRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/clients',
    operationId: 'listClients',
    tag,
    summary: 'List clients',
    description: 'Clients ordered by id, one page at a time; `q` and `status` narrow the list.',
    scope: READ,
    query: ClientQuery,
    responses: [{ status: 200, description: 'a page of clients', schema: 'ClientPage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const page = await listClients(deps.db, { cursor: query.cursor, limit: query.limit, q: query.q, status: query.status });
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, page);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/clients',
    operationId: 'createClient',
    tag,
    summary: 'Register a client',
    description:
      'Confidential clients with a secret auth method get a generated secret, answered here once (`clientSecret`) and stored only as a digest. Secrets cannot be given. A client granted admin-API scopes (resource urn:gatehouse:admin) needs a caller holding each of them (403 otherwise).',
    scope: WRITE,
    conflicts: true,
    body: { schema: 'ClientInput', required: true, zod: ClientInput },
    responses: [{ status: 201, description: 'the client, with its secret if one was generated', schema: 'ClientWithSecret', headers: ['ETag', 'Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const r = await createClientAs(deps.db, actorOf(call), body);
      reply(ctx, 201, withSecret(r.client, r.clientSecret), { etag: r.client.version, location: location('clients', r.client.id) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/clients/{id}',
    operationId: 'getClient',
    tag,
    summary: 'Show a client',
    scope: READ,
    responses: [{ status: 200, description: 'the client', schema: 'ClientView', headers: ['ETag'] }],
    async handle({ ctx, deps, params }) {
      const c = await getClient(deps.db, params.id!);
      reply(ctx, 200, c, { etag: c.version });
    },
  }),
  defineRoute({
    method: 'patch',
    path: '/clients/{id}',
    operationId: 'updateClient',
    tag,
    summary: 'Change a client',
    description:
      'JSON merge patch: the fields given replace the stored ones (a list replaces the whole list, null clears an optional value). The result must satisfy every rule of a new client. Switching to a secret auth method generates a secret, answered once. The admin-API scopes of the result need a caller holding them; a client holding some the caller lacks may only be renamed, disabled, narrowed or made stricter (403 otherwise).',
    scope: WRITE,
    ifMatch: true,
    conflicts: true,
    body: { schema: 'ClientPatch', required: true, zod: ClientPatch },
    responses: [{ status: 200, description: 'the changed client (with `clientSecret` if one was generated)', schema: 'ClientWithSecret', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const id = params.id!;
      const r = await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getClient(tx, id);
            return updateClientAs(tx, actorOf(call), id, body, { expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, id),
      );
      reply(ctx, 200, withSecret(r.client, r.clientSecret), { etag: r.client.version });
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/clients/{id}',
    operationId: 'deleteClient',
    tag,
    summary: 'Delete a client',
    description: 'Also removes it from every resource\'s servedBy list. Its tokens stop being accepted (introspection answers inactive).',
    scope: WRITE,
    ifMatch: true,
    responses: [{ status: 204, description: 'deleted' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const id = params.id!;
      await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getClient(tx, id);
            await deleteClientAs(tx, actorOf(call), id, { expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, id),
      );
      reply(ctx, 204, undefined);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/clients/{id}/secret',
    operationId: 'rotateClientSecret',
    tag,
    summary: 'Rotate a client secret',
    description:
      'Generates a new secret, answered once. The previous one keeps working for `graceSeconds` (default CLIENT_SECRET_ROTATION_GRACE_SECONDS). 409 for clients that do not authenticate with a secret; 403 for a client holding admin-API scopes the caller lacks. Honours If-Match.',
    scope: WRITE,
    ifMatch: true,
    conflicts: true,
    body: { schema: 'SecretRotationInput', required: false, zod: SecretRotationInput },
    responses: [{ status: 200, description: 'the client with its new secret', schema: 'ClientWithSecret', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const id = params.id!;
      const graceSeconds = body.graceSeconds ?? deps.config.clientSecretRotationGraceSeconds;
      const r = await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getClient(tx, id);
            return rotateClientSecretAs(tx, actorOf(call), id, { graceSeconds, expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, id),
      );
      reply(ctx, 200, withSecret(r.client, r.clientSecret), { etag: r.client.version });
    },
  }),
];
