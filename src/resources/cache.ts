// The resource catalog: cached resource look-ups (the token endpoint's hot
// path), kept fresh by the change feed through the shared keyed cache
// (src/db/keyed-cache.ts).
import type { ChangeFeed } from '../db/changes.ts';
import { createKeyedCache, type CacheOptions } from '../db/keyed-cache.ts';
import type { DbOrTx } from '../kernel/tx.ts';
import { getResourceRecord, type ResourceRecord } from './store.ts';

export interface ResourceCatalog {
  /** the resource, or undefined; a cache hit does no I/O */
  get(identifier: string): Promise<Readonly<ResourceRecord> | undefined>;
  /** drop one cached identifier, or everything with '*' */
  invalidate(identifier: string): void;
  close(): void;
}

/**
 * Cached resource lookups, kept fresh by the change feed. Without a feed,
 * found entries live ttlMs (default 1 s).
 */
export function createResourceCatalog(db: DbOrTx, feed?: ChangeFeed, opts: CacheOptions = {}): ResourceCatalog {
  const cache = createKeyedCache((id) => getResourceRecord(db, id), { ...opts, feed, kind: 'resource' });
  return { get: (id) => (id.length > 0 && id.length <= 2048 ? cache.get(id) : Promise.resolve(undefined)), invalidate: (id) => cache.invalidate(id), close: () => cache.close() };
}
