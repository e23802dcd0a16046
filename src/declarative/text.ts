// Config file text ↔ data: JSON or YAML (YAML 1.2 core schema, so `on`/`yes`
// stay strings and a file means what it says).
import { parseDocument, stringify } from 'yaml';
import { DeclarativeError } from './format.ts';

export type TextFormat = 'json' | 'yaml';

/** JSON for a .json file or content that starts with `{`; YAML otherwise. */
export function detectFormat(source: string, text: string): TextFormat {
  if (/\.json$/i.test(source)) return 'json';
  if (/\.ya?ml$/i.test(source)) return /^\s*\{/.test(text) ? 'json' : 'yaml';
  return /^\s*[{[]/.test(text) ? 'json' : 'yaml';
}

/** The file's data (not yet checked). Throws a one-line DeclarativeError naming the file. */
export function parseText(text: string, source: string): unknown {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') throw new DeclarativeError(`${source}: the file is empty (give resources, clients and/or roles lists)`);
  if (detectFormat(source, body) === 'yaml') {
    // Aliases are refused so a small file cannot expand into a huge one.
    const doc = parseDocument(body, { schema: 'core', uniqueKeys: true, prettyErrors: true });
    const problem = doc.errors[0];
    if (problem) {
      const at = problem.linePos?.[0];
      throw new DeclarativeError(`${source}:${at ? `${at.line}:${at.col}:` : ''} not valid YAML: ${problem.message.split('\n')[0]}`);
    }
    try {
      return doc.toJS({ maxAliasCount: 0 }) as unknown;
    } catch (err) {
      throw new DeclarativeError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  try {
    return JSON.parse(body) as unknown;
  } catch (err) {
    throw new DeclarativeError(`${source}: not valid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** The text of an export. */
export function renderText(doc: unknown, format: TextFormat): string {
  if (format === 'yaml') return stringify(doc, { lineWidth: 0 });
  return JSON.stringify(doc, null, 2) + '\n';
}
