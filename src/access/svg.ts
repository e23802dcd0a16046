// The access map as an SVG picture for the admin console: a deterministic
// layered layout (column = chain depth, rows sorted by name), with an
// accessible <title> and <desc>, and the table as a text alternative inside
// <desc> (and returned separately, for a page to show beside the picture).
// No script, no external reference: safe to serve as image/svg+xml.
import { graphOf, renderTable, type AccessMapView } from './views.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COL_W = 300;
const BOX_W = 240;
const LINE_H = 16;
const GAP = 24;
const PAD = 20;

export interface SvgMap {
  svg: string;
  /** the text alternative: the same entries as a table */
  text: string;
}

export function renderSvg(v: AccessMapView): SvgMap {
  const g = graphOf(v);
  const text = renderTable(v);
  const pos = new Map<string, { x: number; y: number; h: number }>();
  const colY = new Map<number, number>();
  for (const n of g.nodes) {
    const lines = n.label.split('\n');
    const h = lines.length * LINE_H + 12;
    const y = colY.get(n.layer) ?? PAD + 30;
    pos.set(n.key, { x: PAD + n.layer * COL_W, y, h });
    colY.set(n.layer, y + h + GAP);
  }
  const width = PAD * 2 + Math.max(1, ...g.nodes.map((n) => n.layer + 1)) * COL_W;
  const height = Math.max(120, ...colY.values()) + PAD;
  const title = v.query.ifLeaked !== undefined ? `Access map: if ${v.query.ifLeaked} leaks` : 'Access map';
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="am-title am-desc" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title id="am-title">${esc(title)}</title>`,
    `<desc id="am-desc">${esc(text)}</desc>`,
    '<style>.p{fill:#eef4ff;stroke:#1d4ed8}.a{fill:#f8fafc;stroke:#334155}.s{fill:#b91c1c;font-weight:bold}.e{stroke:#475569;fill:none;marker-end:url(#arrow)}.l{fill:#334155}text{fill:#0f172a}@media (prefers-color-scheme:dark){.p{fill:#1e293b;stroke:#93c5fd}.a{fill:#0f172a;stroke:#cbd5e1}.e{stroke:#cbd5e1}.l,text{fill:#e2e8f0}.s{fill:#fca5a5}}</style>',
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>',
    `<text x="${PAD}" y="${PAD + 4}" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const e of g.edges) {
    const a = pos.get(e.from)!;
    const b = pos.get(e.to)!;
    const x1 = a.x + BOX_W;
    const y1 = a.y + a.h / 2;
    const x2 = b.x;
    const y2 = b.y + b.h / 2;
    const mx = (x1 + x2) / 2;
    out.push(`<path class="e" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}"/>`);
    out.push(`<text class="l" x="${mx}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle" font-size="10">${esc(e.label)}</text>`);
  }
  for (const n of g.nodes) {
    const p = pos.get(n.key)!;
    out.push(`<g><rect class="${n.kind === 'api' ? 'a' : 'p'}" x="${p.x}" y="${p.y}" width="${BOX_W}" height="${p.h}" rx="${n.kind === 'api' ? 4 : 14}"/>`);
    n.label.split('\n').forEach((line, i) => {
      const sensitive = line.endsWith(' (sensitive)');
      out.push(
        `<text x="${p.x + 8}" y="${p.y + 18 + i * LINE_H}"${sensitive ? ' class="s"' : ''}${i === 0 ? ' font-weight="bold"' : ''}>${esc(line.length > 38 ? `${line.slice(0, 37)}…` : line)}</text>`,
      );
    });
    out.push('</g>');
  }
  out.push('</svg>');
  return { svg: out.join('\n'), text };
}
