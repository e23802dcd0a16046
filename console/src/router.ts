// History routing under the console's path: the URL names the page and its
// filters (/console/clients?q=shop&cursor=…), so a link can be shared.
import { useEffect, useState } from 'preact/hooks';
import { BASE } from './api.ts';

export interface Route {
  /** the path below the console, e.g. /clients/abc */
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

export function current(): Route {
  const p = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  return { path: p === '' ? '/' : p, query: new URLSearchParams(location.search) };
}

/** Goes to a console path (with its query); `replace` keeps the history entry. */
export function navigate(to: string, replace = false): void {
  const url = `${BASE}${to.startsWith('/') ? to : `/${to}`}`;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const l of listeners) l();
}

/** A console path with query parameters (empty ones left out). */
export function href(path: string, query: Record<string, string | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  return `${path}${q.size ? `?${q.toString()}` : ''}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return route;
}
