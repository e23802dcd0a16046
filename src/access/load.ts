// The registry as the access model sees it, read from the database (or from
// an open transaction: the policy guard reads the state a write is about to commit).
import { listClients } from '../clients/store.ts';
import { everyPage } from '../kernel/pagination.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { listRoles } from '../resources/roles.ts';
import { listResources } from '../resources/store.ts';
import type { Registry } from './model.ts';

export async function loadRegistry(db: DbOrTx): Promise<Registry> {
  const [clients, resources, roles] = [
    await everyPage((page) => listClients(db, page)),
    await everyPage((page) => listResources(db, page)),
    await listRoles(db),
  ];
  return {
    clients: clients.map((c) => ({ id: c.id, grants: c.grants, scopes: c.scopes, resources: c.resources, disabled: c.disabled })),
    apis: resources.map((r) => ({
      identifier: r.identifier,
      scopes: r.scopes,
      servedBy: r.servedBy,
      requireRoles: r.requireRoles,
      sensitiveScopes: r.sensitiveScopes,
    })),
    roles: roles.map((r) => ({ name: r.name, resource: r.resource, scopes: r.scopes })),
  };
}
