// Admin-API permissions: the scopes of the built-in resource urn:gatehouse:admin.
// A client holds those in its scopes when its resources include the admin
// API; a person holds those of their roles on it (the only way people reach
// it). The domains' write functions ask these questions to refuse any change
// that would give a permission the actor does not hold (src/kernel/actor.ts).
import { unique } from '../kernel/validation.ts';
import { ADMIN_RESOURCE, ADMIN_SCOPES } from './store.ts';

const isAdminScope = (s: string) => ADMIN_SCOPES.includes(s);

/** The admin-API permissions a client's allowance gives. */
export function adminScopesOf(allowance: { resources: readonly string[]; scopes: readonly string[] }): string[] {
  return allowance.resources.includes(ADMIN_RESOURCE) ? unique(allowance.scopes.filter(isAdminScope)) : [];
}

/** The admin-API permissions a set of roles gives (a person's, or one role's). */
export function adminScopesOfRoles(roles: readonly { resource: string; scopes: readonly string[] }[]): string[] {
  return unique(roles.filter((r) => r.resource === ADMIN_RESOURCE).flatMap((r) => r.scopes.filter(isAdminScope)));
}
