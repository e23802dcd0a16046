// The admin console's static files (a Preact app built by Vite from console/
// into dist/console/, `npm run build`), served at <issuer>/console.
//
//   /console/assets/<name>-<hash>.<ext>  the hashed bundle: cached for a year, immutable
//   /console and every other /console/…  index.html (the app routes in the browser): no-cache
//
// index.html is rewritten once: its asset URLs get the issuer's path, and a
// <meta name="gatehouse-issuer"> tells the app where the admin API and the
// authorization server are. The app talks only to the public admin API with
// the signed-in person's token; this module serves files and nothing else.
//
// The CSP is the login pages' (security-headers.ts HTML_CSP: scripts, styles,
// connections only from 'self', no inline code) plus form-action 'none': the
// console never submits a form by navigation.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, Middleware } from 'koa';
import type { RouteGroup } from './routes.ts';
import { HTML_CSP } from './security-headers.ts';

export const CONSOLE_PATH = '/console';
export const CONSOLE_CSP = `${HTML_CSP}; form-action 'none'`;

/** src/http/ and dist/http/ both sit two levels below the package root. */
export const CONSOLE_DIST = fileURLToPath(new URL('../../dist/console/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

interface Asset {
  body: Buffer;
  type: string;
}

interface Bundle {
  index: string;
  assets: Map<string, Asset>;
}

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

function loadBundle(dir: string, issuer: string, base: string): Bundle | undefined {
  const indexFile = path.join(dir, 'index.html');
  if (!existsSync(indexFile)) return undefined;
  const assets = new Map<string, Asset>();
  const assetDir = path.join(dir, 'assets');
  if (existsSync(assetDir)) {
    for (const name of readdirSync(assetDir)) {
      const type = TYPES[path.extname(name)];
      if (type) assets.set(name, { body: readFileSync(path.join(assetDir, name)), type });
    }
  }
  const index = readFileSync(indexFile, 'utf8')
    .replace(/(src|href)="\/console\//g, `$1="${base}/console/`)
    .replace('<head>', `<head>\n    <meta name="gatehouse-issuer" content="${escapeAttr(issuer)}">`);
  return { index, assets };
}

export interface ConsoleOptions {
  issuer: string;
  /** where the built app is (default dist/console/) */
  dir?: string;
}

export function consoleRoutes(opts: ConsoleOptions): RouteGroup {
  const base = new URL(opts.issuer).pathname.replace(/\/+$/, '');
  const root = `${base}${CONSOLE_PATH}`;
  const dir = opts.dir ?? CONSOLE_DIST;
  let bundle: Bundle | undefined;
  const current = () => (bundle ??= loadBundle(dir, opts.issuer, base));

  const owns = (p: string) => p === root || p.startsWith(`${root}/`);

  const answerText = (ctx: Context, status: number, text: string) => {
    ctx.status = status;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = text;
  };

  const middleware: Middleware = async (ctx) => {
    ctx.state.route = `${CONSOLE_PATH}/*`;
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      return answerText(ctx, 405, 'The console is read with GET.');
    }
    const b = current();
    if (!b) return answerText(ctx, 503, 'The admin console is not built: run `npm run build`.');
    const rel = ctx.path.slice(root.length);
    if (rel.startsWith('/assets/')) {
      ctx.state.route = `${CONSOLE_PATH}/assets/*`;
      const asset = b.assets.get(rel.slice('/assets/'.length));
      if (!asset) return answerText(ctx, 404, 'No such console file.');
      ctx.status = 200;
      ctx.type = asset.type;
      // the name carries the content hash: a new build has new names
      ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
      ctx.body = asset.body;
      return;
    }
    ctx.status = 200;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Content-Security-Policy', CONSOLE_CSP);
    ctx.body = b.index;
  };

  return { owns, middleware };
}
