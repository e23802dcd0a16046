// The one error model of Gatehouse's domains. Every error a domain throws on
// purpose is a GatehouseError: a stable `code` (what the admin API maps to a
// status), a one-line `message` meant for the person who sent the input (the
// CLI prints it as it is), and for bad input the `field` it is about.
// Anything else that escapes a domain is a bug or an outage, never shown.

export type ErrorCode =
  /** bad input (400/422): `field` names it */
  | 'validation_failed'
  /** the named entity does not exist (404) */
  | 'not_found'
  /** the write cannot happen in the current state: exists already, built in, still in use (409) */
  | 'conflict'
  /** the entity is no longer at the version the caller expected (412) */
  | 'version_mismatch'
  /** the caller may not make this change (403): it needs a scope the caller does not hold */
  | 'forbidden'
  /** the change would break an access policy (422): `violations` name the policy and the offending path */
  | 'policy_violation';

export abstract class GatehouseError extends Error {
  abstract readonly code: ErrorCode;
  /** the input field the error is about, when there is one */
  readonly field?: string;
  constructor(message: string, field?: string) {
    super(message);
    if (field !== undefined) this.field = field;
  }
}

/** Bad input. The message is `invalid <field>: <reason>` unless the domain words it itself. */
export class ValidationError extends GatehouseError {
  override name = 'ValidationError';
  readonly code = 'validation_failed';
  declare readonly field: string;
  constructor(
    field: string,
    /** the reason without the field name, e.g. "must not have a fragment" */
    readonly reason: string,
    message = `invalid ${field}: ${reason}`,
  ) {
    super(message, field);
  }
}

/** The named entity does not exist. */
export class NotFoundError extends GatehouseError {
  override name = 'NotFoundError';
  readonly code = 'not_found';
  constructor(
    /** 'client' | 'resource' | 'role' | 'account' | 'key' … */
    readonly kind: string,
    readonly id: string,
    message = `${kind} '${id}' not found`,
  ) {
    super(message);
  }
}

/** The write cannot happen in the current state: the entity exists already, is built in, or is still in use. */
export class ConflictError extends GatehouseError {
  override name: string = 'ConflictError';
  readonly code: ErrorCode = 'conflict';
}

/** `expectedVersion` no longer matches: someone else changed the entity first. */
export class VersionMismatchError extends ConflictError {
  override name = 'VersionMismatchError';
  override readonly code = 'version_mismatch';
  constructor(
    readonly currentVersion: number,
    message = `it was changed meanwhile (now at version ${currentVersion}); reload and retry`,
  ) {
    super(message);
  }
}

/** The actor may not make this change: it would give a scope the actor does not hold. */
export class ForbiddenError extends GatehouseError {
  override name = 'ForbiddenError';
  readonly code = 'forbidden';
  constructor(
    /** the scope the change needs */
    readonly scope: string,
  ) {
    super(`this change needs the scope ${scope}, which the caller does not hold`);
  }
}

/** One broken access policy (src/access/policies.ts). */
export interface PolicyBreach {
  /** the policy's name */
  policy: string;
  /** its kind (only-clients, max-chain …) */
  kind: string;
  /** what breaks it, one line */
  message: string;
  /** the offending path through the access map, when there is one */
  path?: string;
}

/** The change would break an access policy: nothing was written. */
export class PolicyViolationError extends GatehouseError {
  override name = 'PolicyViolationError';
  readonly code = 'policy_violation';
  constructor(readonly violations: readonly PolicyBreach[]) {
    const first = violations[0];
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
    super(
      first
        ? `refused by policy '${first.policy}' (${first.kind}): ${first.message}${first.path ? `; path: ${first.path}` : ''}${more}`
        : 'refused by an access policy',
    );
  }
}
