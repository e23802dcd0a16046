// The one pagination rule, for the stores, the admin API and the CLI: a list
// is read a page at a time, `limit` items (1–1000, default 100) after an
// opaque `cursor` (the previous page's `nextCursor`), until `nextCursor` is
// null.
import { ValidationError } from './errors.ts';

export const PAGE_LIMIT = { min: 1, max: 1000, default: 100 } as const;

export interface PageRequest {
  /** the previous page's nextCursor */
  cursor?: string;
  /** page size, PAGE_LIMIT.min to PAGE_LIMIT.max (default PAGE_LIMIT.default) */
  limit?: number;
}

export interface Page<T> {
  items: T[];
  /** pass as `cursor` for the next page; null on the last page */
  nextCursor: string | null;
}

/** The page size asked for (the default when absent), or ValidationError('limit'). */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return PAGE_LIMIT.default;
  if (!Number.isInteger(limit) || limit < PAGE_LIMIT.min || limit > PAGE_LIMIT.max) {
    throw new ValidationError('limit', `must be a whole number between ${PAGE_LIMIT.min} and ${PAGE_LIMIT.max}`);
  }
  return limit;
}

/**
 * The page of `rows` read with one more row than the limit (`take: limit + 1`,
 * or a list already cut after the cursor): the extra row only tells that a
 * next page exists. `cursorOf` gives the cursor that continues after an item.
 */
export function toPage<T>(rows: readonly T[], limit: number, cursorOf: (item: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit && items.length > 0 ? cursorOf(items[items.length - 1]!) : null };
}

/** Every item of a paged list, read PAGE_LIMIT.max at a time (for the CLI's lists and apply's plan). */
export async function everyPage<T>(fetch: (req: PageRequest) => Promise<Page<T>>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetch({ limit: PAGE_LIMIT.max, ...(cursor !== undefined && { cursor }) });
    all.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return all;
}
