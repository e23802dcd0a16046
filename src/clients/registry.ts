// Cached client lookups for the token endpoint and the other hot paths: a hit
// does no I/O. Kept fresh by the change feed (see src/resources/cache.ts for
// the rules); without a feed, found entries live ttlMs (default 1 s).
import type { ChangeFeed } from '../db/changes.ts';
import { createKeyedCache, type CacheOptions } from '../db/keyed-cache.ts';
import { getClientRecord, type ClientRecord } from './store.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { CLIENT_ID } from '../kernel/validation.ts';

export interface ClientRegistry {
  /** the full client record (digests included), or undefined; frozen, shared: do not modify */
  get(id: string): Promise<Readonly<ClientRecord> | undefined>;
  /** drop one cached id, or everything with '*' */
  invalidate(id: string): void;
  close(): void;
}

export function createClientRegistry(db: DbOrTx, feed?: ChangeFeed, opts: CacheOptions = {}): ClientRegistry {
  const cache = createKeyedCache((id) => getClientRecord(db, id), { ...opts, feed, kind: 'client' });
  // A string that cannot be a client id (e.g. a forged client_id parameter) costs no query and no cache slot.
  return { get: (id) => (CLIENT_ID.test(id) ? cache.get(id) : Promise.resolve(undefined)), invalidate: (id) => cache.invalidate(id), close: () => cache.close() };
}
