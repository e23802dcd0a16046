// The account directory: cached account look-ups by id for the sign-in and
// token paths (oidc-provider's findAccount runs on the login resume, the code
// exchange, every refresh and every userinfo call).
//
// Entries are dropped when the change feed announces a change to the account
// (every write of src/accounts publishes one: update, disable, delete, MFA),
// on every instance within the feed's latency; without a feed they live 1 s.
// The password hash is never cached: authenticate() always reads it fresh.
import type { ChangeFeed } from '../db/changes.ts';
import type { Db } from '../db/client.ts';
import { createKeyedCache, type CacheOptions } from '../db/keyed-cache.ts';
import { NotFoundError } from '../kernel/errors.ts';
import { getAccount, isAccountId, type AccountView } from './store.ts';

export interface AccountDirectory {
  /** the account, or undefined when no account has that id; a cache hit does no I/O */
  get(id: string): Promise<Readonly<AccountView> | undefined>;
  close(): void;
}

/** Uncached look-ups straight from the database (CLI, tests). */
export function accountDirectory(db: Db): AccountDirectory {
  return { get: (id) => loadAccount(db, id), close: () => {} };
}

/** Cached look-ups, kept fresh by the change feed. */
export function createAccountDirectory(db: Db, feed?: ChangeFeed, opts: CacheOptions = {}): AccountDirectory {
  const cache = createKeyedCache((id) => loadAccount(db, id), { ...opts, feed, kind: 'account' });
  return {
    get: (id) => (isAccountId(id) ? cache.get(id) : Promise.resolve(undefined)),
    close: () => cache.close(),
  };
}

async function loadAccount(db: Db, id: string): Promise<AccountView | undefined> {
  if (!isAccountId(id)) return undefined;
  try {
    return await getAccount(db, id);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err; // a database failure is not "no such account"
  }
}
