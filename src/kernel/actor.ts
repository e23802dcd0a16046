// Who makes a change: every domain write function takes the actor, checks
// what it may give (the admin-API permissions it holds) and records it in the
// change's audit event.
import { ForbiddenError } from './errors.ts';

/** The admin-API scope that implies every other one. */
export const FULL_ADMIN_SCOPE = 'gatehouse:admin';

export interface Actor {
  /** audit actor_type: 'user' (a person), 'client' (a machine token), 'operator' (CLI: the OS user), 'system' */
  type: 'user' | 'client' | 'operator' | 'system';
  /** account id, client id, or OS user name */
  id: string | null;
  /** the client that acted (a person's token, or the actor of an exchanged token) */
  clientId?: string;
  /** RFC 8693 act claim of an exchanged token, recorded in audit details */
  act?: Record<string, unknown>;
  requestId?: string | null;
  ip?: string | null;
  /** admin-API scopes this actor holds; 'all' for operator and system */
  scopes: ReadonlySet<string> | 'all';
}

/** Whether the actor holds the admin-API scope: 'all', gatehouse:admin, or the scope itself. */
export function holds(actor: Actor, scope: string): boolean {
  return actor.scopes === 'all' || actor.scopes.has(FULL_ADMIN_SCOPE) || actor.scopes.has(scope);
}

/** Refuses (ForbiddenError naming the first one missing) unless the actor holds every scope. */
export function assertHolds(actor: Actor, scopes: Iterable<string>): void {
  for (const s of scopes) if (!holds(actor, s)) throw new ForbiddenError(s);
}

/** The person at the command line (the CLI): may do anything. */
export function operator(name: string): Actor {
  return { type: 'operator', id: name, scopes: 'all' };
}

/** Gatehouse itself (start-up, background jobs). */
export const SYSTEM: Actor = Object.freeze({ type: 'system', id: null, scopes: 'all' });

/** Options every domain write function takes. */
export interface WriteOptions {
  /** how the change was made, kept in its audit event (e.g. 'apply') */
  via?: string;
}
