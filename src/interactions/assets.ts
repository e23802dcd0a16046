// The stylesheet of the sign-in pages, read once from views/static/ and
// served under a versioned URL so browsers may cache it for good.
import { createHash } from 'node:crypto';
import { readStaticAsset } from './html.ts';

export interface Stylesheet {
  body: Buffer;
  etag: string;
  /** content hash: the `v` query parameter of the URL the pages link */
  version: string;
}

let cached: Stylesheet | undefined;

export function stylesheet(): Stylesheet {
  if (!cached) {
    const body = readStaticAsset('gatehouse.css');
    const digest = createHash('sha256').update(body).digest('base64url');
    cached = { body, etag: `"${digest.slice(0, 27)}"`, version: digest.slice(0, 12) };
  }
  return cached;
}

/** The issuer URL's path, without a trailing slash ('' at the root). */
export function basePath(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/+$/, '');
}

export const STYLESHEET_PATH = '/static/gatehouse.css';

export function stylesheetUrl(issuer: string): string {
  return `${basePath(issuer)}${STYLESHEET_PATH}?v=${stylesheet().version}`;
}
