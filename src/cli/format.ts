// Plain-text output helpers shared by the CLI commands.

/** `label  value` lines, labels padded to one column. */
export function aligned(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, v]) => `${l.padEnd(width)}${v}`.trimEnd()).join('\n');
}

/** A table with a header row; columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export const show = {
  list: (v: readonly string[]) => (v.length > 0 ? v.join(' ') : '-'),
  opt: (v: string | number | null | undefined) => (v === null || v === undefined ? '-' : String(v)),
  yes: (v: boolean) => (v ? 'yes' : 'no'),
  date: (d: Date | null) => (d ? d.toISOString() : '-'),
};
