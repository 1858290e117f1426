/**
 * Rows of values → HTML table (notebook display) or Markdown table (README, reports).
 * Numbers are formatted with a fixed number of digits; Infinity prints as "∞", null/NaN as "—".
 */
export type Cell = string | number | boolean | null | undefined;
export type Row = Record<string, Cell>;

export interface TableOptions {
  /** column order and which columns to show (default: keys of the first row, then any new keys) */
  columns?: string[];
  /** digits after the decimal point for numbers (default 2); per-column overrides */
  digits?: number | Record<string, number>;
  caption?: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function columnsOf(rows: Row[], opts: TableOptions): string[] {
  if (opts.columns) return opts.columns;
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return cols;
}

export function formatCell(v: Cell, digits: number): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '—';
    if (v === Infinity) return '∞';
    if (v === -Infinity) return '−∞';
    return Number.isInteger(v) && digits > 0 && Math.abs(v) >= 1000 ? String(v) : v.toFixed(digits);
  }
  return String(v);
}

function digitsFor(col: string, opts: TableOptions): number {
  const d = opts.digits;
  if (typeof d === 'number') return d;
  return d?.[col] ?? 2;
}

/** An HTML `<table>` with a header row; numeric cells right-aligned. */
export function htmlTable(rows: Row[], opts: TableOptions = {}): string {
  const cols = columnsOf(rows, opts);
  const head = cols.map((c) => `<th style="text-align:center;padding:2px 8px">${escapeHtml(c)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        '<tr>' +
        cols
          .map((c) => {
            const v = r[c];
            const align = typeof v === 'number' ? 'right' : 'left';
            return `<td style="text-align:${align};padding:2px 8px">${escapeHtml(formatCell(v, digitsFor(c, opts)))}</td>`;
          })
          .join('') +
        '</tr>',
    )
    .join('');
  const caption = opts.caption ? `<caption style="caption-side:top;font-weight:bold">${escapeHtml(opts.caption)}</caption>` : '';
  return `<table class="tdr-table" style="border-collapse:collapse">${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** A GitHub-flavoured Markdown table. */
export function markdownTable(rows: Row[], opts: TableOptions = {}): string {
  const cols = columnsOf(rows, opts);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const out = [line(cols), line(cols.map(() => '---'))];
  for (const r of rows) out.push(line(cols.map((c) => formatCell(r[c], digitsFor(c, opts)).replace(/\|/g, '\\|'))));
  return (opts.caption ? `**${opts.caption}**\n\n` : '') + out.join('\n');
}

/**
 * A plain-text table for terminals (CLI reports): the header, a rule of dashes, then the rows, each
 * column padded to its widest cell, columns two spaces apart, trailing spaces trimmed.
 * @throws Error when a row has another number of cells than the header
 */
export function textTable(head: string[], rows: string[][]): string {
  rows.forEach((r, i) => {
    if (r.length !== head.length) throw new Error(`textTable: row ${i} has ${r.length} cells, the header has ${head.length}`);
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((x, i) => x.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
