// A keyed in-memory cache kept fresh by the change feed (src/db/changes.ts):
// what the client registry, the resource catalog and the account directory
// put in front of their tables (the token endpoint's hot path: a hit does no
// I/O).
//
// - Entries are dropped when the change feed announces a change to their id
//   ('*' drops everything; the feed sends it after any reconnect, when
//   notifications may have been lost).
// - Hits expire after ttlMs anyway (a safety net; short when there is no feed).
// - Misses are cached for missTtlMs, so unknown ids cannot hammer the database,
//   in a map of their own with its own bound (maxMisses): a flood of unknown
//   ids (forged client_id values) evicts older misses, never found values.
// - Concurrent misses for one key share one query; a load that was in flight
//   when its key was invalidated is handed to its waiters but never cached.
// - Values are deep-frozen: callers share them and must not change them.
import type { ChangeFeed, ChangeKind } from './changes.ts';

export interface CacheOptions {
  /** how long a found value is kept (default: 60 s with a feed, 1 s without) */
  ttlMs?: number;
  /** how long "not found" is kept (default 1 s) */
  missTtlMs?: number;
  /** found values kept at most; the oldest go first (default 10 000) */
  maxEntries?: number;
  /** "not found" answers kept at most, apart from found values; the oldest go first (default 10 000) */
  maxMisses?: number;
}

export interface KeyedCache<T> {
  get(key: string): Promise<Readonly<T> | undefined>;
  /** drop one key, or everything with '*' */
  invalidate(key: string): void;
  /** entries currently held (found values and misses) */
  readonly size: number;
  close(): void;
}

interface Entry<T> {
  value: Readonly<T>;
  expiresAt: number;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value) && !(value instanceof Date)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export function createKeyedCache<T>(
  load: (key: string) => Promise<T | undefined>,
  opts: CacheOptions & { feed?: ChangeFeed; kind?: ChangeKind } = {},
): KeyedCache<T> {
  const ttlMs = opts.ttlMs ?? (opts.feed ? 60_000 : 1_000);
  const missTtlMs = opts.missTtlMs ?? 1_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const maxMisses = opts.maxMisses ?? 10_000;
  const entries = new Map<string, Entry<T>>();
  // expiry time of each cached "not found"
  const misses = new Map<string, number>();
  const inflight = new Map<string, Promise<Readonly<T> | undefined>>();

  const invalidate = (key: string) => {
    if (key === '*') {
      entries.clear();
      misses.clear();
      inflight.clear();
    } else {
      entries.delete(key);
      misses.delete(key);
      inflight.delete(key);
    }
  };
  const unsubscribe = opts.feed && opts.kind ? opts.feed.subscribe(opts.kind, invalidate) : undefined;

  /** Sets `key` last (Map order is the eviction order) and drops the oldest beyond `max`. */
  const put = <V>(map: Map<string, V>, max: number, key: string, value: V) => {
    map.delete(key);
    map.set(key, value);
    while (map.size > max) {
      const oldest = map.keys().next();
      if (oldest.done) break;
      map.delete(oldest.value);
    }
  };
  const store = (key: string, value: Readonly<T> | undefined) => {
    if (value === undefined) {
      entries.delete(key);
      put(misses, maxMisses, key, Date.now() + missTtlMs);
    } else {
      misses.delete(key);
      put(entries, maxEntries, key, { value, expiresAt: Date.now() + ttlMs });
    }
  };

  return {
    get(key) {
      const hit = entries.get(key);
      if (hit) {
        if (hit.expiresAt > Date.now()) return Promise.resolve(hit.value);
        entries.delete(key);
      }
      const missUntil = misses.get(key);
      if (missUntil !== undefined) {
        if (missUntil > Date.now()) return Promise.resolve(undefined);
        misses.delete(key);
      }
      const pending = inflight.get(key);
      if (pending) return pending;
      const p: Promise<Readonly<T> | undefined> = load(key).then(
        (value) => {
          const frozen = value === undefined ? undefined : deepFreeze(value);
          // Only cache if nobody invalidated the key while we were loading.
          if (inflight.get(key) === p) {
            inflight.delete(key);
            store(key, frozen);
          }
          return frozen;
        },
        (err: unknown) => {
          if (inflight.get(key) === p) inflight.delete(key);
          throw err;
        },
      );
      inflight.set(key, p);
      return p;
    },
    invalidate,
    get size() {
      return entries.size + misses.size;
    },
    close() {
      unsubscribe?.();
      entries.clear();
      misses.clear();
      inflight.clear();
    },
  };
}
