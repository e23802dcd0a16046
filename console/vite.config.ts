// Builds the admin console (a Preact single-page app) from console/ into
// dist/console/, which Gatehouse serves at /console (src/http/console.ts).
// `npm run build` runs it after tsc; scripts/build-if-changed.js hashes
// console/ with the server sources so `npm start` rebuilds when either changes.
// No CDN, no remote font: everything the page loads is in dist/console/.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  // the server rewrites this prefix when the issuer has a path (src/http/console.ts)
  base: '/console/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console/', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // nothing inline: the CSP allows only 'self' scripts
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
});
