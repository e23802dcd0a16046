import { describe, expect, it } from 'vitest';
import type { ChangeFeed, ChangeKind } from '../../src/db/changes.ts';
import { createKeyedCache } from '../../src/db/keyed-cache.ts';

/** An in-process stand-in for the LISTEN/NOTIFY feed (the real one is exercised in store.test.ts). */
function localFeed() {
  const subs = new Set<{ kind: ChangeKind; fn: (id: string) => void }>();
  const feed: ChangeFeed = {
    ready: Promise.resolve(),
    subscribe(kind, fn) {
      const s = { kind, fn };
      subs.add(s);
      return () => subs.delete(s);
    },
    close: async () => {},
  };
  const emit = (kind: ChangeKind, id: string) => {
    for (const s of subs) if (s.kind === kind) s.fn(id);
  };
  return { feed, emit, subscribers: () => subs.size };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('keyed cache', () => {
  it('loads once for concurrent misses and serves hits without loading', async () => {
    let loads = 0;
    const cache = createKeyedCache(async (k) => {
      loads++;
      return { k };
    });
    const [a, b] = await Promise.all([cache.get('x'), cache.get('x')]);
    expect(a).toBe(b);
    expect(await cache.get('x')).toBe(a);
    expect(loads).toBe(1);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('caches misses for missTtlMs only', async () => {
    let loads = 0;
    const cache = createKeyedCache<{ k: string }>(
      async () => {
        loads++;
        return undefined;
      },
      { missTtlMs: 30 },
    );
    expect(await cache.get('nope')).toBeUndefined();
    expect(await cache.get('nope')).toBeUndefined();
    expect(loads).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    await cache.get('nope');
    expect(loads).toBe(2);
  });

  it('drops entries on a change of their id, or of everything with *', async () => {
    const { feed, emit, subscribers } = localFeed();
    let version = 1;
    const cache = createKeyedCache(async (k) => ({ k, version }), { feed, kind: 'client' });
    expect((await cache.get('a'))?.version).toBe(1);
    await cache.get('b');
    version = 2;
    emit('resource', 'a'); // another kind: ignored
    expect((await cache.get('a'))?.version).toBe(1);
    emit('client', 'a');
    expect((await cache.get('a'))?.version).toBe(2);
    expect((await cache.get('b'))?.version).toBe(1);
    emit('client', '*');
    expect((await cache.get('b'))?.version).toBe(2);
    cache.close();
    expect(subscribers()).toBe(0);
  });

  it('does not cache a load that was invalidated while in flight', async () => {
    const { feed, emit } = localFeed();
    const gates = [deferred<{ v: number }>(), deferred<{ v: number }>()];
    let n = 0;
    const cache = createKeyedCache(() => gates[n++]!.promise, { feed, kind: 'resource' });
    const stale = cache.get('r');
    emit('resource', 'r'); // the row changed after the query started
    const fresh = cache.get('r'); // a new query, not the stale one
    gates[0]!.resolve({ v: 1 });
    gates[1]!.resolve({ v: 2 });
    expect((await stale)?.v).toBe(1);
    expect((await fresh)?.v).toBe(2);
    expect((await cache.get('r'))?.v).toBe(2);
    expect(n).toBe(2);
  });

  it('does not cache failures', async () => {
    let fail = true;
    const cache = createKeyedCache(async (k) => {
      if (fail) throw new Error('database down');
      return { k };
    });
    await expect(cache.get('x')).rejects.toThrow('database down');
    fail = false;
    expect(await cache.get('x')).toEqual({ k: 'x' });
  });

  it('keeps misses apart, under their own bound: unknown keys never evict found values', async () => {
    const loads: string[] = [];
    const cache = createKeyedCache(
      async (k) => {
        loads.push(k);
        return k.startsWith('known') ? { k } : undefined;
      },
      { maxEntries: 2, maxMisses: 3 },
    );
    await cache.get('known-1');
    for (let i = 0; i < 100; i++) await cache.get(`unknown-${i}`);
    expect(cache.size).toBe(1 + 3);
    loads.length = 0;
    await cache.get('known-1'); // still a hit
    await cache.get('unknown-99'); // a recent miss: still cached
    expect(loads).toEqual([]);
    await cache.get('unknown-0'); // fell out of the miss budget
    expect(loads).toEqual(['unknown-0']);
  });

  it('a cached miss is dropped when its key is announced (the row was created)', async () => {
    const { feed, emit } = localFeed();
    let exists = false;
    const cache = createKeyedCache(async (k) => (exists ? { k } : undefined), { feed, kind: 'client', missTtlMs: 60_000 });
    expect(await cache.get('c')).toBeUndefined();
    exists = true;
    expect(await cache.get('c')).toBeUndefined(); // cached miss
    emit('client', 'c');
    expect(await cache.get('c')).toEqual({ k: 'c' });
  });

  it('keeps at most maxEntries, dropping the oldest', async () => {
    const cache = createKeyedCache(async (k) => ({ k }), { maxEntries: 3 });
    for (const k of ['a', 'b', 'c', 'd']) await cache.get(k);
    expect(cache.size).toBe(3);
  });
});
