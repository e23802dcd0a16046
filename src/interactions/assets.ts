// The static assets of the sign-in and account pages, read once and served
// under versioned URLs so browsers may cache them for good:
//   /static/gatehouse.css   the only stylesheet (views/static/)
//   /static/webauthn.js     @simplewebauthn/browser's UMD bundle, served from
//                           Gatehouse itself (no CDN; the CSP allows only 'self')
//   /static/passkey.js      the pages' passkey glue (views/static/)
//   /static/codes.js        copy / download of recovery codes (views/static/)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readStaticAsset } from './html.ts';

export interface Asset {
  body: Buffer;
  etag: string;
  /** content hash: the `v` query parameter of the URL the pages link */
  version: string;
  type: string;
}

function assetOf(body: Buffer, type: string): Asset {
  const digest = createHash('sha256').update(body).digest('base64url');
  return { body, etag: `"${digest.slice(0, 27)}"`, version: digest.slice(0, 12), type };
}

let cached: Asset | undefined;

export function stylesheet(): Asset {
  cached ??= assetOf(readStaticAsset('gatehouse.css'), 'text/css; charset=utf-8');
  return cached;
}

/** The browser bundle of @simplewebauthn/browser (its exact pinned version). */
function webauthnBundle(): Buffer {
  // the package exports only its modules: find its folder from the CommonJS entry (…/script/index.js)
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return readFileSync(join(dirname(entry), '..', 'dist/bundle/index.umd.min.js'));
}

const JS = 'text/javascript; charset=utf-8';
const scripts = new Map<string, Asset>();

/** The scripts the pages may load, by path below the issuer's. */
export const SCRIPT_PATHS = ['/static/webauthn.js', '/static/passkey.js', '/static/codes.js'] as const;
export type ScriptPath = (typeof SCRIPT_PATHS)[number];

export function script(path: ScriptPath): Asset {
  let a = scripts.get(path);
  if (!a) {
    a = assetOf(path === '/static/webauthn.js' ? webauthnBundle() : readStaticAsset(path.slice('/static/'.length)), JS);
    scripts.set(path, a);
  }
  return a;
}

/** The issuer URL's path, without a trailing slash ('' at the root). */
export function basePath(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/+$/, '');
}

export const STYLESHEET_PATH = '/static/gatehouse.css';

export function stylesheetUrl(issuer: string): string {
  return `${basePath(issuer)}${STYLESHEET_PATH}?v=${stylesheet().version}`;
}

export function scriptUrl(issuer: string, path: ScriptPath): string {
  return `${basePath(issuer)}${path}?v=${script(path).version}`;
}
