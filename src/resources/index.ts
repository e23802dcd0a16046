// API resources (RFC 8707) and roles: storage, cache, scope allowance rules.
export { ConflictError, NotFoundError, ValidationError } from './errors.ts';
export {
  ADMIN_RESOURCE,
  ADMIN_SCOPES,
  RESOURCE_TTL,
  ResourceInput,
  ResourcePatch,
  SIGNING_ALGS,
  createResource,
  deleteResource,
  ensureBuiltInResources,
  getResource,
  getResourceRecord,
  listResources,
  updateResource,
  type ResourceRecord,
  type ResourceSigningAlg,
  type ResourceView,
} from './store.ts';
export { createResourceCatalog, type ResourceCatalog } from './cache.ts';
export {
  ROLE_NAME,
  RoleInput,
  RolePatch,
  addRoleToAccount,
  createRole,
  deleteRole,
  getRole,
  listRoles,
  removeRoleFromAccount,
  rolesForAccount,
  updateRole,
  type RoleGrant,
  type RoleView,
} from './roles.ts';
export {
  allowedScopes,
  grantableScopes,
  parseScopeParam,
  roleNamesFor,
  type ClientAllowance,
  type ResourceOffer,
  type RoleScopes,
} from './allowance.ts';
