// /admin/v1/idps: upstream OpenID providers people may sign in through.
// Every route needs gatehouse:admin: a provider can sign people in as
// existing accounts (linking by verified email), so configuring one is as
// strong as every other permission together. Answers never carry the client
// secret; it is write-only (create, and PATCH with clientSecret).
import { getIdp, IdpInput, IdpPatch, listIdps } from '../../federation/store.ts';
import { createIdpAs, deleteIdpAs, updateIdpAs } from '../../federation/writes.ts';
import { FULL_ADMIN_SCOPE } from '../../kernel/actor.ts';
import { setNextLink } from '../http.ts';
import { PageQuery } from '../schemas.ts';
import { actorOf, defineRoute, location, reply, versionedWrite, type AdminRoute } from '../route.ts';

const tag = 'idps';
const SECRETS = ['clientSecret'] as const;
const REF_NOTE = 'The provider is named by its id or by its name (percent-encoded).';

async function currentVersion(db: Parameters<typeof getIdp>[0], ref: string): Promise<number | undefined> {
  return getIdp(db, ref).then(
    (r) => r.version,
    () => undefined,
  );
}

export const idpRoutes: AdminRoute[] = [
  defineRoute({
    method: 'get',
    path: '/idps',
    operationId: 'listIdps',
    tag,
    summary: 'List upstream identity providers',
    description: 'Providers ordered by name. Never carries client secrets.',
    scope: FULL_ADMIN_SCOPE,
    query: PageQuery,
    responses: [{ status: 200, description: 'a page of providers', schema: 'IdpPage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const page = await listIdps(deps.db, { cursor: query.cursor, limit: query.limit });
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, page);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/idps',
    operationId: 'createIdp',
    tag,
    summary: 'Add an upstream identity provider',
    description: 'The client secret is stored encrypted (KEY_ENCRYPTION_KEY) and never answered. Register `<issuer>/federation/callback` as the redirect URI at the provider.',
    scope: FULL_ADMIN_SCOPE,
    conflicts: true,
    body: { schema: 'IdpInput', required: true, zod: IdpInput, secrets: SECRETS },
    responses: [{ status: 201, description: 'the provider', schema: 'IdpView', headers: ['ETag', 'Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const r = await createIdpAs(deps.db, actorOf(call), deps.config.keyEncryptionKey, body);
      reply(ctx, 201, r, { etag: r.version, location: location('idps', r.id) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/idps/{ref}',
    operationId: 'getIdp',
    tag,
    summary: 'Show an upstream identity provider',
    description: REF_NOTE,
    scope: FULL_ADMIN_SCOPE,
    responses: [{ status: 200, description: 'the provider', schema: 'IdpView', headers: ['ETag'] }],
    async handle({ ctx, deps, params }) {
      const r = await getIdp(deps.db, params.ref!);
      reply(ctx, 200, r, { etag: r.version });
    },
  }),
  defineRoute({
    method: 'patch',
    path: '/idps/{ref}',
    operationId: 'updateIdp',
    tag,
    summary: 'Change an upstream identity provider',
    description: `JSON merge patch: a list replaces the stored list; clientSecret replaces the secret. ${REF_NOTE}`,
    scope: FULL_ADMIN_SCOPE,
    ifMatch: true,
    conflicts: true,
    body: { schema: 'IdpPatch', required: true, zod: IdpPatch, secrets: SECRETS },
    responses: [{ status: 200, description: 'the changed provider', schema: 'IdpView', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const ref = params.ref!;
      const r = await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getIdp(tx, ref);
            return updateIdpAs(tx, actorOf(call), deps.config.keyEncryptionKey, before.id, body, { expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, ref),
      );
      reply(ctx, 200, r, { etag: r.version });
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/idps/{ref}',
    operationId: 'deleteIdp',
    tag,
    summary: 'Delete an upstream identity provider',
    description: `Its links to accounts go with it; the accounts stay. ${REF_NOTE}`,
    scope: FULL_ADMIN_SCOPE,
    ifMatch: true,
    conflicts: true,
    responses: [{ status: 204, description: 'deleted' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const ref = params.ref!;
      await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getIdp(tx, ref);
            return deleteIdpAs(tx, actorOf(call), before.id, { expectedVersion: check(before.version) });
          }),
        () => currentVersion(deps.db, ref),
      );
      reply(ctx, 204, undefined);
    },
  }),
];
