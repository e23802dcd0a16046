// Errors of the accounts domain. Messages are one line, safe to show to an
// administrator (the CLI prints them as they are; the admin API maps the
// classes to 400 / 404 / 409 / 412).

/** Bad input; `field` names the offending field (e.g. 'email', 'password'). */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** The write conflicts with the current state (e.g. a duplicate email). */
export class ConflictError extends Error {
  override readonly name: string = 'ConflictError';
}

/** `expectedVersion` no longer matches: someone else changed the account first. */
export class VersionMismatchError extends ConflictError {
  override readonly name = 'VersionMismatchError';
  constructor(readonly currentVersion: number) {
    super(`the account was changed meanwhile (now at version ${currentVersion}); reload and retry`);
  }
}
