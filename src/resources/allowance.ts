// Which scopes a client may get for an API resource: pure functions, no I/O,
// shared by every grant (authorization code, client_credentials, token
// exchange, refresh) and by the admin API.
//
//   allowed(client, resource)   = client.scopes ∩ resource.scopes,
//                                 if the resource is in client.resources; else ∅
//   grantable(requested, …)     = requested ∩ allowed
//                                 ∩ (for a requireRoles resource and a person:
//                                    ⋃ scopes of the person's roles on that resource)

export interface ClientAllowance {
  scopes: readonly string[];
  resources: readonly string[];
}

export interface ResourceOffer {
  identifier: string;
  scopes: readonly string[];
  requireRoles?: boolean;
}

export interface RoleScopes {
  name: string;
  resource: string;
  scopes: readonly string[];
}

/** A space-separated scope parameter → its scopes (duplicates and empty items dropped). */
export function parseScopeParam(scope: string | undefined | null): string[] {
  return [...new Set((scope ?? '').split(' ').filter(Boolean))];
}

/** The scopes the client may request for the resource, in the resource's order; [] if the resource is not the client's. */
export function allowedScopes(client: ClientAllowance, resource: ResourceOffer): string[] {
  if (!client.resources.includes(resource.identifier)) return [];
  const mine = new Set(client.scopes);
  return [...new Set(resource.scopes.filter((s) => mine.has(s)))];
}

/**
 * The requested scopes that may be granted, in the requested order.
 *
 * `roles` are the person's roles (any resources; only those on this resource
 * count). Pass them (an empty array when they hold none) whenever the token
 * is for a person. Leave them out only for a token with no person behind it
 * (client_credentials): roles do not apply to machines, whose allowance is
 * the client's own.
 */
export function grantableScopes(
  requested: readonly string[] | string,
  client: ClientAllowance,
  resource: ResourceOffer,
  roles?: readonly RoleScopes[],
): string[] {
  const wanted = typeof requested === 'string' ? parseScopeParam(requested) : [...new Set(requested)];
  const allowed = new Set(allowedScopes(client, resource));
  let result = wanted.filter((s) => allowed.has(s));
  if (resource.requireRoles && roles !== undefined) {
    const granted = new Set(roles.filter((r) => r.resource === resource.identifier).flatMap((r) => r.scopes));
    result = result.filter((s) => granted.has(s));
  }
  return result;
}

/** Names of the roles that apply to the resource (the `roles` claim), sorted. */
export function roleNamesFor(resource: Pick<ResourceOffer, 'identifier'>, roles: readonly RoleScopes[]): string[] {
  return [...new Set(roles.filter((r) => r.resource === resource.identifier).map((r) => r.name))].sort();
}
