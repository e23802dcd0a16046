// Output: the table on stdout, the JSON record and a small SVG bar chart.
import type { ScenarioResult, TargetName } from './types.ts';

export interface Ratio {
  compareKey: string;
  gatehouse: number;
  baseline: number;
  ratio: number;
}

export interface TargetCheck {
  what: string;
  goal: string;
  measured: string;
  met: boolean;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

export function table(results: ScenarioResult[]): string {
  const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'RSS MB'];
  const rows = results.map((r) =>
    r.skipped
      ? [r.name, '-', '-', '-', '-', '-']
      : [
          r.unit ? `${r.name} (${r.unit}s/s)` : r.name,
          fmtInt(r.requestsPerSec ?? 0),
          fmtMs(r.latencyMs?.p50 ?? 0),
          fmtMs(r.latencyMs?.p99 ?? 0),
          String(r.errors ?? 0),
          (r.rssMb ?? 0).toFixed(1),
        ],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Database cost per operation of the Gatehouse scenarios (issue 18). */
export function dbCostTable(results: ScenarioResult[]): string {
  const head = ['database cost per operation', 'statements', 'BEGIN', 'rows written', 'PG CPU ms', 'DB wait ms'];
  const rows = results.map((r) => {
    const c = r.dbCost!;
    return [
      r.name,
      c.statementsPerOp.toFixed(2),
      c.transactionsPerOp.toFixed(2),
      c.rowsWrittenPerOp.toFixed(2),
      c.pgCpuMsPerOp === undefined ? '-' : c.pgCpuMsPerOp.toFixed(3),
      c.waitMsPerOp === undefined ? (c.pgExecMsPerOp?.toFixed(3) ?? '-') : c.waitMsPerOp.toFixed(3),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const source = results[0]!.dbCost!.source === 'pool' ? 'statements counted through the pool in the server processes; rows written from pg_stat_database; PG CPU from /proc of the backends' : 'pg_stat_statements';
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), `(${source})`].join('\n');
}

export function ratios(results: ScenarioResult[], a: TargetName = 'gatehouse', b: TargetName = 'baseline'): Ratio[] {
  const out: Ratio[] = [];
  for (const r of results) {
    if (r.target !== a || !r.compareKey || r.skipped) continue;
    const other = results.find((x) => x.target === b && x.compareKey === r.compareKey && !x.skipped);
    if (!other || !other.requestsPerSec) continue;
    out.push({ compareKey: r.compareKey, gatehouse: r.requestsPerSec ?? 0, baseline: other.requestsPerSec, ratio: (r.requestsPerSec ?? 0) / other.requestsPerSec });
  }
  return out;
}

/** The Targets of issue 3, checked against this run. */
export function targetChecks(results: ScenarioResult[], rs: Ratio[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const cc = results.find((r) => r.target === 'gatehouse' && r.compareKey === 'client_credentials RS256' && !r.skipped);
  if (cc) {
    const ratio = rs.find((r) => r.compareKey === 'client_credentials RS256');
    if (ratio) checks.push({ what: 'client_credentials RS256 throughput', goal: '≥ 0.80× baseline', measured: `${ratio.ratio.toFixed(2)}×`, met: ratio.ratio >= 0.8 });
    const p99 = cc.latencyMs?.p99 ?? Infinity;
    checks.push({ what: 'client_credentials RS256 p99', goal: '< 25 ms', measured: `${fmtMs(p99)} ms`, met: p99 < 25 });
    checks.push({ what: 'client_credentials RS256 errors', goal: '0', measured: String(cc.errors ?? 0), met: (cc.errors ?? 0) === 0 });
  }
  const intro = results.find((r) => r.target === 'gatehouse' && r.compareKey?.startsWith('introspection JWT') && !r.skipped);
  if (intro) {
    const inactive = intro.notes.some((n) => n.includes('active:false'));
    checks.push({
      what: `${intro.compareKey} throughput${inactive ? ' (answers active:false)' : ''}`,
      goal: '≥ 2,500 req/s',
      measured: `${fmtInt(intro.requestsPerSec ?? 0)} req/s`,
      met: (intro.requestsPerSec ?? 0) >= 2500 && (intro.errors ?? 0) === 0 && !inactive,
    });
  }
  const w2 = results.find((r) => r.target.startsWith('gatehouse-w') && r.compareKey === 'client_credentials RS256' && !r.skipped);
  if (cc && w2) {
    checks.push({
      what: `client_credentials RS256 ${w2.name.slice(w2.name.lastIndexOf('['))} vs ${cc.name.slice(cc.name.lastIndexOf('['))} throughput (issue 7)`,
      goal: 'higher',
      measured: `${fmtInt(w2.requestsPerSec ?? 0)} vs ${fmtInt(cc.requestsPerSec ?? 0)} req/s`,
      met: (w2.requestsPerSec ?? 0) > (cc.requestsPerSec ?? 0),
    });
    const p99 = w2.latencyMs?.p99 ?? Infinity;
    checks.push({ what: `client_credentials RS256 p99 ${w2.name.slice(w2.name.lastIndexOf('['))} (issue 7)`, goal: '< 25 ms, 0 errors', measured: `${fmtMs(p99)} ms, ${w2.errors ?? 0} errors`, met: p99 < 25 && (w2.errors ?? 0) === 0 });
  }
  for (const flow of results.filter((r) => r.compareKey === 'login flow' && !r.skipped && r.extra)) {
    const perCore = Number(flow.extra!.flowsPerCoreSec ?? 0);
    checks.push({ what: `${flow.name} logins per server core (issue 4)`, goal: '≥ 35 /s per core', measured: `${perCore} /s per core`, met: perCore >= 35 && (flow.errors ?? 0) === 0 });
  }
  return checks;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A horizontal bar chart of req/s per scenario, as a standalone SVG document. */
export function svgChart(results: ScenarioResult[], title: string, subtitle: string): string {
  const rows = results.filter((r) => !r.skipped);
  const W = 820;
  const labelW = 300;
  const valueW = 150;
  const rowH = 26;
  const top = 58;
  const barMax = W - labelW - valueW - 20;
  const max = Math.max(1, ...rows.map((r) => r.requestsPerSec ?? 0));
  const H = top + rows.length * rowH + 34;
  const colors: Record<string, string> = { gatehouse: '#2b6cb0', baseline: '#a0aec0' };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="600" fill="#1a202c">${esc(title)}</text>`,
    `<text x="12" y="42" fill="#4a5568">${esc(subtitle)}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const w = Math.max(1, Math.round(((r.requestsPerSec ?? 0) / max) * barMax));
    const color = colors[r.target] ?? '#718096';
    parts.push(
      `<text x="${labelW - 8}" y="${y + 16}" text-anchor="end" fill="#1a202c">${esc(r.name)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${w}" height="${rowH - 8}" fill="${color}" rx="2"/>`,
      `<text x="${labelW + w + 6}" y="${y + 16}" fill="#2d3748">${esc(`${fmtInt(r.requestsPerSec ?? 0)} req/s · p99 ${fmtMs(r.latencyMs?.p99 ?? 0)} ms`)}</text>`,
    );
  });
  const ly = top + rows.length * rowH + 16;
  let lx = labelW;
  for (const [name, color] of Object.entries(colors)) {
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${color}"/>`, `<text x="${lx + 18}" y="${ly}" fill="#4a5568">${esc(name)}</text>`);
    lx += 120;
  }
  parts.push('</svg>', '');
  return parts.join('\n');
}
