// Cached client lookups for the token endpoint and the other hot paths: a hit
// does no I/O. Kept fresh by the change feed (see src/resources/cache.ts for
// the rules); without a feed, found entries live ttlMs (default 1 s).
//
// Unknown ids are cached too, apart from found clients and bounded on their
// own (src/db/keyed-cache.ts): anyone can send client_id values, and each
// unknown one would otherwise cost a query every second and could push real
// clients out of the cache. With a feed a miss is kept as long as a hit:
// creating a client announces its id, which drops the miss on every instance.
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

/** How long an unknown id is remembered when the change feed keeps the cache fresh (as long as a hit). */
const MISS_TTL_WITH_FEED_MS = 60_000;

/**
 * `builtIns`: clients that are not stored (src/clients/builtin.ts, the account
 * page's), answered before the database; a stored client cannot take their ids.
 */
export function createClientRegistry(db: DbOrTx, feed?: ChangeFeed, opts: CacheOptions & { builtIns?: readonly Readonly<ClientRecord>[] } = {}): ClientRegistry {
  const missTtlMs = feed ? MISS_TTL_WITH_FEED_MS : undefined;
  const { builtIns = [], ...cacheOpts } = opts;
  const fixed = new Map(builtIns.map((c) => [c.id, c]));
  const cache = createKeyedCache((id) => getClientRecord(db, id), { missTtlMs, ...cacheOpts, feed, kind: 'client' });
  // A string that cannot be a client id (e.g. a forged client_id parameter) costs no query and no cache slot.
  return {
    get: (id) => {
      const builtIn = fixed.get(id);
      if (builtIn) return Promise.resolve(builtIn);
      return CLIENT_ID.test(id) ? cache.get(id) : Promise.resolve(undefined);
    },
    invalidate: (id) => cache.invalidate(id),
    close: () => cache.close(),
  };
}
