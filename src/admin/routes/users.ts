// /admin/v1/users: people, their passwords, sessions and roles.
import { getAccount, listAccounts } from '../../accounts/store.ts';
import { listFactors } from '../../accounts/passkeys.ts';
import { createAccountAs, deleteAccountAs, removeFactorAs, resetMfaAs, setPasswordAs, updateAccountAs } from '../../accounts/writes.ts';
import { listSessions } from '../../oidc/session-activity.ts';
import { ValidationError } from '../../kernel/errors.ts';
import { endAccountSessionRecords, endSessionAs, notifyApps, revokeSessionsAs } from '../../oidc/sessions.ts';
import { rolesForAccount } from '../../resources/roles.ts';
import { addRoleToAccountAs, removeRoleFromAccountAs } from '../../resources/writes.ts';
import { setNextLink } from '../http.ts';
import { ProblemError } from '../problem.ts';
import { InvitationInput, PasswordInput, UserInput, UserPatch, UserQuery } from '../schemas.ts';
import { invite, resendInvitation, type Invitation, type Mailed } from '../../lifecycle/writes.ts';
import { actorOf, defineRoute, location, reply, versionedWrite, type AdminDeps, type AdminRoute } from '../route.ts';

const READ = 'gatehouse:users:read';
const WRITE = 'gatehouse:users:write';
const tag = 'users';

async function currentVersion(deps: AdminDeps, id: string): Promise<number | undefined> {
  return getAccount(deps.db, id).then(
    (a) => a.version,
    () => undefined,
  );
}

function invitationBody(r: Mailed<Invitation>) {
  return { user: r.result.account, roles: r.result.roles, expiresAt: r.result.expiresAt, mailed: r.mailed, ...(r.mailError ? { mailError: r.mailError } : {}) };
}

export const userRoutes: AdminRoute[] = [
  defineRoute({
    method: 'post',
    path: '/users/invitations',
    operationId: 'inviteUser',
    tag,
    summary: 'Invite a person',
    description:
      'Creates the person (no password yet) with the given roles and mails them a single-use link, valid 7 days, to choose a password, verify their email and set up two-step verification where required. A role on the admin API needs a caller holding its permissions (403). 409 when the email is taken or mail is not set up (SMTP_URL). If the mail server refused the mail, the person exists and `mailed` is false: resend with POST /users/{id}/invitation:resend.',
    scope: WRITE,
    conflicts: true,
    body: { schema: 'InvitationInput', required: true, zod: InvitationInput },
    responses: [{ status: 201, description: 'the invitation', schema: 'InvitationView', headers: ['Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const r = await invite({ db: deps.db, mailer: deps.mailer, issuer: deps.config.issuer }, actorOf(call), body);
      reply(ctx, 201, invitationBody(r), { location: location('users', r.result.account.id) });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users/{id}/invitation:resend',
    operationId: 'resendUserInvitation',
    tag,
    summary: 'Send a person a new invitation link',
    description:
      'For a person who has not accepted their invitation (no password): mails a new 7-day link; earlier links stop working. 409 once a password is set (they can reset it from the sign-in page) or when mail is not set up; 403 when the person holds admin-API permissions the caller lacks.',
    scope: WRITE,
    conflicts: true,
    responses: [{ status: 200, description: 'the new invitation', schema: 'InvitationView' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const r = await resendInvitation({ db: deps.db, mailer: deps.mailer, issuer: deps.config.issuer }, actorOf(call), params.id!);
      reply(ctx, 200, invitationBody(r));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/users',
    operationId: 'listUsers',
    tag,
    summary: 'List people',
    description: 'People ordered by email; `email` filters by a substring of it.',
    scope: READ,
    query: UserQuery,
    responses: [{ status: 200, description: 'a page of people', schema: 'UserPage', headers: ['Link'] }],
    async handle({ ctx, deps, query }) {
      const page = await listAccounts(deps.db, { cursor: query.cursor, limit: query.limit, email: query.email }).catch((err: unknown) => {
        if (err instanceof ValidationError && err.field === 'cursor') {
          throw new ProblemError('bad-request', 'invalid query parameter cursor: not a cursor of this list', { errors: [{ field: 'cursor', message: 'is not valid' }] });
        }
        throw err;
      });
      setNextLink(ctx, page.nextCursor);
      reply(ctx, 200, page);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users',
    operationId: 'createUser',
    tag,
    summary: 'Create a person',
    scope: WRITE,
    conflicts: true,
    body: { schema: 'UserInput', required: true, zod: UserInput },
    responses: [{ status: 201, description: 'the person', schema: 'UserView', headers: ['ETag', 'Location'] }],
    async handle(call) {
      const { ctx, deps, body } = call;
      const a = await createAccountAs(deps.db, actorOf(call), body);
      reply(ctx, 201, a, { etag: a.version, location: location('users', a.id) });
    },
  }),
  defineRoute({
    method: 'get',
    path: '/users/{id}',
    operationId: 'getUser',
    tag,
    summary: 'Show a person',
    scope: READ,
    responses: [{ status: 200, description: 'the person', schema: 'UserView', headers: ['ETag'] }],
    async handle({ ctx, deps, params }) {
      const a = await getAccount(deps.db, params.id!);
      reply(ctx, 200, a, { etag: a.version });
    },
  }),
  defineRoute({
    method: 'patch',
    path: '/users/{id}',
    operationId: 'updateUser',
    tag,
    summary: 'Change a person',
    description:
      'JSON merge patch of email, name, emailVerified, disabled. Disabling a person also ends their sessions and grants (with back-channel logout): enabling them again does not bring those back. A person whose roles give admin-API scopes the caller lacks may only be renamed or disabled (403 otherwise).',
    scope: WRITE,
    ifMatch: true,
    conflicts: true,
    body: { schema: 'UserPatch', required: true, zod: UserPatch },
    responses: [{ status: 200, description: 'the changed person', schema: 'UserView', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const id = params.id!;
      const { after, ended } = await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            const before = await getAccount(tx, id);
            const after = await updateAccountAs(tx, actorOf(call), id, body, { expectedVersion: check(before.version) });
            // disabling ends the person's sessions and grants with it
            const ended = after.disabled && !before.disabled ? await endAccountSessionRecords(tx, id) : undefined;
            return { after, ended };
          }),
        () => currentVersion(deps, id),
      );
      if (ended) await notifyApps(ended, deps.backchannel);
      reply(ctx, 200, after, { etag: after.version });
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/users/{id}',
    operationId: 'deleteUser',
    tag,
    summary: 'Delete a person',
    description: 'Also ends their sessions and grants. If-Match is compared with the version read just before the delete.',
    scope: WRITE,
    ifMatch: true,
    responses: [{ status: 204, description: 'deleted' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const id = params.id!;
      const ended = await versionedWrite(
        ctx,
        (check) =>
          deps.db.$transaction(async (tx) => {
            check((await getAccount(tx, id)).version);
            // first, while the sessions still say which apps to tell
            const records = await endAccountSessionRecords(tx, id);
            const { notices: _notices, ...revoked } = records;
            await deleteAccountAs(tx, actorOf(call), id, { details: { revoked } });
            return records;
          }),
        () => currentVersion(deps, id),
      );
      await notifyApps(ended, deps.backchannel);
      reply(ctx, 204, undefined);
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users/{id}/password',
    operationId: 'setUserPassword',
    tag,
    summary: "Set a person's password",
    description: 'Replaces the password (argon2id) and clears the login lockout of the account. 403 for a person whose roles give admin-API scopes the caller lacks.',
    scope: WRITE,
    body: { schema: 'PasswordInput', required: true, zod: PasswordInput },
    responses: [{ status: 200, description: 'the person', schema: 'UserView', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params, body } = call;
      const id = params.id!;
      const a = await setPasswordAs(deps.db, actorOf(call), id, body.password);
      reply(ctx, 200, a, { etag: a.version });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users/{id}/mfa:reset',
    operationId: 'resetUserMfa',
    tag,
    summary: "Reset a person's second factor",
    description:
      'Turns the person\'s MFA off (a lost phone) and removes their recovery codes: they enrol again at their next sign-in that needs a second factor, within the enrolment window. Audited as user.reset_mfa.',
    scope: WRITE,
    responses: [{ status: 200, description: 'the person', schema: 'UserView', headers: ['ETag'] }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const a = await resetMfaAs(deps.db, actorOf(call), params.id!);
      const { mfaEnrolmentUntil: _until, ...view } = a;
      reply(ctx, 200, view, { etag: view.version });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/users/{id}/sessions:revoke',
    operationId: 'revokeUserSessions',
    tag,
    summary: 'Log a person out everywhere',
    description:
      'Ends every session of the person on every device, revokes their grants and refresh tokens, and sends back-channel logout to the apps of those sessions. Their access tokens stop being accepted by introspection, token exchange, userinfo and the admin API at once; resource servers that verify JWTs locally accept them until they expire (minutes).',
    scope: WRITE,
    responses: [{ status: 200, description: 'what was revoked', schema: 'SessionsRevoked' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const id = params.id!;
      const revoked = await revokeSessionsAs(deps.db, actorOf(call), id, deps.backchannel);
      reply(ctx, 200, revoked);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/users/{id}/factors',
    operationId: 'listUserFactors',
    tag,
    summary: "A person's verification state and second factors",
    description: "Whether the email is verified, the authenticator app ('totp') and each passkey (name, created, last used), and how many recovery codes are left. No secrets.",
    scope: READ,
    responses: [{ status: 200, description: 'the factors', schema: 'UserFactors' }],
    async handle({ ctx, deps, params }) {
      reply(ctx, 200, await listFactors(deps.db, params.id!));
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/users/{id}/factors/{factorId}',
    operationId: 'removeUserFactor',
    tag,
    summary: 'Remove a lost factor',
    description:
      "Removes the authenticator app (factorId 'totp') or one passkey (its id). Audited (user.totp_remove, passkey.remove). Other factors and recovery codes stay; POST /users/{id}/password or `gatehouse users reset-mfa` cover the rest. 403 for a person whose roles give admin-API scopes the caller lacks.",
    scope: WRITE,
    responses: [{ status: 204, description: 'removed' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      await removeFactorAs(deps.db, actorOf(call), params.id!, params.factorId!);
      reply(ctx, 204, undefined);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/users/{id}/sessions',
    operationId: 'listUserSessions',
    tag,
    summary: "A person's live sessions",
    description: 'Each live sign-in session: when it began, the applications signed in through it, acr/amr, and its device (user agent), address and last use.',
    scope: READ,
    responses: [{ status: 200, description: 'the sessions', schema: 'UserSessions' }],
    async handle({ ctx, deps, params }) {
      const id = params.id!;
      await getAccount(deps.db, id);
      reply(ctx, 200, { items: await listSessions(deps.db, id) });
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/users/{id}/sessions/{sessionId}',
    operationId: 'endUserSession',
    tag,
    summary: 'End one session of a person',
    description:
      'Ends the session (its uid, from GET /users/{id}/sessions), revokes the grants it holds and everything issued under them, and sends back-channel logout to its apps. Audited (user.session_end). POST /users/{id}/sessions:revoke ends them all.',
    scope: WRITE,
    responses: [{ status: 200, description: 'what was revoked', schema: 'SessionsRevoked' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      reply(ctx, 200, await endSessionAs(deps.db, actorOf(call), params.id!, params.sessionId!, deps.backchannel));
    },
  }),
  defineRoute({
    method: 'get',
    path: '/users/{id}/roles',
    operationId: 'listUserRoles',
    tag,
    summary: "List a person's roles",
    scope: READ,
    responses: [{ status: 200, description: 'the roles', schema: 'UserRoles' }],
    async handle({ ctx, deps, params }) {
      const id = params.id!;
      await getAccount(deps.db, id);
      reply(ctx, 200, { items: await rolesForAccount(deps.db, id) });
    },
  }),
  defineRoute({
    method: 'put',
    path: '/users/{id}/roles/{role}',
    operationId: 'addUserRole',
    tag,
    summary: 'Give a person a role',
    description: 'Idempotent: 201 when the role was added, 204 when the person already held it. A role on urn:gatehouse:admin needs a caller holding every scope it carries (403 otherwise). Affects tokens issued afterwards (and refreshes).',
    scope: WRITE,
    responses: [
      { status: 201, description: 'the role was added' },
      { status: 204, description: 'the person already held the role' },
    ],
    async handle(call) {
      const { ctx, deps, params } = call;
      const id = params.id!;
      const role = params.role!;
      await getAccount(deps.db, id);
      const added = await addRoleToAccountAs(deps.db, actorOf(call), id, role);
      if (added) ctx.set('Location', location('users', id, 'roles', role));
      reply(ctx, added ? 201 : 204, undefined);
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/users/{id}/roles/{role}',
    operationId: 'removeUserRole',
    tag,
    summary: 'Take a role from a person',
    description: '404 when the person does not hold the role. Affects tokens issued afterwards (and refreshes).',
    scope: WRITE,
    responses: [{ status: 204, description: 'the role was taken away' }],
    async handle(call) {
      const { ctx, deps, params } = call;
      const id = params.id!;
      const role = params.role!;
      await getAccount(deps.db, id);
      const removed = await removeRoleFromAccountAs(deps.db, actorOf(call), id, role);
      if (!removed) throw new ProblemError('not-found', `the person does not hold the role '${role}'`);
      reply(ctx, 204, undefined);
    },
  }),
];
