// A tiny, safe HTML template engine.
//
// - html`…${value}…` escapes every interpolated value unless it is SafeHtml
//   (the result of another html`` or of a view). Arrays are joined; false,
//   null and undefined render as nothing, so `${cond && html`…`}` works.
// - Views are the files in views/*.html: page markup with {{name}}
//   placeholders. renderView() fills them the same way (strings escaped,
//   SafeHtml as is) and refuses a missing or an unknown placeholder, so a
//   typo fails loudly instead of rendering a half-empty page.
//
// Escaping covers text and quoted attribute values; templates must quote
// every attribute and never interpolate into <script>, <style>, event
// handlers or URLs taken from input (the CSP forbids inline script and
// style anyway).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function renderValue(v: HtmlValue): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map((x: HtmlValue) => renderValue(x)).join('');
  if (v === null || v === undefined || v === false || v === true) return '';
  return escapeHtml(String(v));
}

/** Tagged template: escapes every interpolation that is not SafeHtml. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += renderValue(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Marks trusted markup (never input) as safe. */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

// ------------------------------------------------------------------ views

/** The views/ directory (same relative place from src/ and from dist/). */
export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;

interface View {
  parts: string[];
  names: string[];
}

const views = new Map<string, View>();

function loadView(name: string): View {
  let v = views.get(name);
  if (!v) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`invalid view name ${name}`);
    const source = readFileSync(`${VIEWS_DIR}${name}.html`, 'utf8');
    const parts: string[] = [];
    const names: string[] = [];
    let last = 0;
    for (const m of source.matchAll(PLACEHOLDER)) {
      parts.push(source.slice(last, m.index));
      names.push(m[1]!);
      last = m.index + m[0].length;
    }
    parts.push(source.slice(last));
    v = { parts, names };
    views.set(name, v);
  }
  return v;
}

/** Fills views/<name>.html. Every placeholder must be given, and nothing else. */
export function renderView(name: string, vars: Record<string, HtmlValue>): SafeHtml {
  const v = loadView(name);
  const wanted = new Set(v.names);
  for (const key of Object.keys(vars)) {
    if (!wanted.has(key)) throw new Error(`view ${name} has no placeholder {{${key}}}`);
  }
  let out = v.parts[0]!;
  for (let i = 0; i < v.names.length; i++) {
    const key = v.names[i]!;
    if (!Object.hasOwn(vars, key)) throw new Error(`view ${name} needs {{${key}}}`);
    out += renderValue(vars[key]) + v.parts[i + 1]!;
  }
  return new SafeHtml(out);
}

/** Reads a static asset from views/static/. */
export function readStaticAsset(file: string): Buffer {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(file) || file.includes('..')) throw new Error(`invalid asset name ${file}`);
  return readFileSync(`${VIEWS_DIR}static/${file}`);
}
