// The write functions of the upstream identity providers: what the CLI, the
// admin API and `apply` call, and nothing else does. Each does the change
// (store.ts, which announces it with publishChange), checks the actor and
// records the audit event in one transaction.
//
// Authority: an upstream provider can sign people in as existing accounts
// (linking by verified email, federation/signin.ts), administrators
// included. Configuring one is therefore as strong as holding every
// permission: only an actor holding gatehouse:admin (the CLI operator, or an
// admin-API token with gatehouse:admin) may create, change or delete one.
//
// Audit events never carry the client secret: they hold views (IdpView has
// no secret) and say `clientSecretChanged: true` when a new one was set.
import { auditChange, changedFields } from '../audit/audit.ts';
import { assertHolds, FULL_ADMIN_SCOPE, type Actor, type WriteOptions } from '../kernel/actor.ts';
import { inTransaction, type DbOrTx } from '../kernel/tx.ts';
import { createLink, createIdp, deleteIdp, getIdpRecord, toIdpView, updateIdp, type IdpInput, type IdpLink, type IdpPatch, type IdpView } from './store.ts';

const target = (id: string) => ({ type: 'idp', id });
const via = (opts: WriteOptions) => (opts.via !== undefined ? { via: opts.via } : {});
const asRecord = (v: IdpView) => v as unknown as Record<string, unknown>;

type Versioned = WriteOptions & { expectedVersion?: number };

export async function createIdpAs(db: DbOrTx, actor: Actor, kek: Buffer, input: IdpInput, opts: WriteOptions = {}): Promise<IdpView> {
  assertHolds(actor, [FULL_ADMIN_SCOPE]);
  return inTransaction(db, async (tx) => {
    const created = await createIdp(tx, kek, input);
    await auditChange(tx, actor, 'idp.create', target(created.id), { ...via(opts), after: created });
    return created;
  });
}

export async function updateIdpAs(db: DbOrTx, actor: Actor, kek: Buffer, idOrName: string, patch: IdpPatch, opts: Versioned = {}): Promise<IdpView> {
  assertHolds(actor, [FULL_ADMIN_SCOPE]);
  return inTransaction(db, async (tx) => {
    const before = toIdpView(await getIdpRecord(tx, idOrName));
    const after = await updateIdp(tx, kek, before.id, patch, { expectedVersion: opts.expectedVersion ?? before.version });
    const changes = changedFields(asRecord(before), asRecord(after));
    const secretChanged = patch.clientSecret !== undefined;
    await auditChange(tx, actor, 'idp.update', target(before.id), {
      ...via(opts),
      before,
      after,
      changes: secretChanged ? [...changes, 'clientSecret'] : changes,
    });
    return after;
  });
}

/** Deletes a provider and every link to it (the linked accounts stay). */
export async function deleteIdpAs(db: DbOrTx, actor: Actor, idOrName: string, opts: Versioned = {}): Promise<IdpView> {
  assertHolds(actor, [FULL_ADMIN_SCOPE]);
  return inTransaction(db, async (tx) => {
    const before = await deleteIdp(tx, idOrName, opts.expectedVersion !== undefined ? { expectedVersion: opts.expectedVersion } : {});
    await auditChange(tx, actor, 'idp.delete', target(before.id), { ...via(opts), before });
    return before;
  });
}

/**
 * Links an upstream identity to an account (first sign-in through a
 * provider): audited as `account.linked` on the account, naming the provider
 * and the upstream subject, in the link's transaction.
 */
export async function linkAccountAs(
  db: DbOrTx,
  actor: Actor,
  link: { accountId: string; idp: Pick<IdpView, 'id' | 'name'>; subject: string; reason: 'verified_email' | 'new_account' },
  opts: WriteOptions = {},
): Promise<IdpLink> {
  return inTransaction(db, async (tx) => {
    const created = await createLink(tx, { accountId: link.accountId, idpId: link.idp.id, subject: link.subject });
    await auditChange(tx, actor, 'account.linked', { type: 'account', id: link.accountId }, {
      ...via(opts),
      idp: link.idp.name,
      idpId: link.idp.id,
      subject: link.subject,
      reason: link.reason,
    });
    return created;
  });
}
