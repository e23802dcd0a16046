// Errors of the client registry and the resource catalog (src/resources
// re-exports them). Each carries a one-line message meant for the user: the
// CLI prints it, the admin API maps the class to a status
// (NotFoundError → 404, ConflictError → 409, ValidationError → 400).

/** The named entity does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(
    /** 'client' | 'resource' | 'role' | 'account' */
    readonly kind: string,
    readonly id: string,
  ) {
    super(`${kind} '${id}' not found`);
  }
}

/**
 * The write cannot happen in the current state: the entity already exists,
 * its version is not the expected one, it is built in, or it is still in use.
 */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Bad input; `field` names the input field (e.g. 'redirectUris'). */
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    readonly field: string,
    /** the reason without the field name, e.g. "must not have a fragment" */
    readonly reason: string,
  ) {
    super(`invalid ${field}: ${reason}`);
  }
}
