/** What `gantry runs` and `gantry compare` print: runs found under the runs root, as text tables or JSON. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GantryError } from '../errors.js';
import { userPath } from '../runs/run.js';
import { findRuns, flattenFigures, headlineFigures, type RunData, readRunData, recentLosses } from './data.js';
import { formatFigure, inferStatus } from './html.js';

const isRunDir = (d: string) => fs.existsSync(path.join(d, 'run.json')) || fs.existsSync(path.join(d, 'losses.jsonl'));

/**
 * A run named on the command line: a directory (relative to where pnpm was run), `<variant>/<stamp>` under the
 * runs root, a unique suffix of a run id (`2026-01-02_10-00-00`), a variant name (its latest run) or `latest`.
 */
export function resolveRun(arg: string, root: string): string {
  const direct = userPath(arg);
  if (fs.existsSync(direct) && fs.statSync(direct).isDirectory() && isRunDir(direct)) return direct;
  const under = path.join(root, arg);
  if (fs.existsSync(under) && isRunDir(under)) return under;
  const all = findRuns(root);
  if (arg === 'latest') {
    const last = all.at(-1);
    if (!last) throw new GantryError(`no runs in ${root}`);
    return last;
  }
  const ofVariant = all.filter((d) => path.basename(path.dirname(d)) === arg);
  if (ofVariant.length) return ofVariant.at(-1)!;
  const ids = all.map((d) => path.relative(root, d).split(path.sep).join('/'));
  const matches = all.filter((_, i) => ids[i]!.endsWith(arg.replace(/\\/g, '/')));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new GantryError(`run '${arg}' is ambiguous: ${matches.map((d) => path.relative(root, d)).join(', ')}`);
  }
  throw new GantryError(`run '${arg}': not a run directory, nor a run under ${root} (see \`pnpm gantry runs\`)`);
}

export interface RunRow {
  id: string;
  dir: string;
  variant: string;
  status: string;
  backend: string;
  created: string;
  step: number;
  steps?: number;
  losses: Record<string, number>;
  metrics: Record<string, number>;
  report: boolean;
}

export function runRow(run: RunData): RunRow {
  return {
    id: run.id,
    dir: run.dir,
    variant: run.variant,
    status: inferStatus(run),
    backend: run.info?.backend ?? '',
    created: run.info?.created ?? '',
    step: run.lastStep,
    steps: run.totalSteps,
    losses: recentLosses(run.losses, run.lossNames),
    metrics: headlineFigures(run.evaluation),
    report: fs.existsSync(path.join(run.dir, 'report.html')),
  };
}

export function listRuns(root: string, variant?: string): RunRow[] {
  return findRuns(root)
    .filter((d) => !variant || path.basename(path.dirname(d)) === variant)
    .map((d) => runRow(readRunData(d, root)));
}

/** Left-aligned text columns separated by two spaces (numbers right-aligned). */
export function textTable(rows: string[][], numeric: boolean[] = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const short = (k: string) => k.replace(/^(generated|scores)\./, '');
const fmtMap = (m: Record<string, number>, shorten = (k: string) => k) =>
  Object.entries(m)
    .map(([k, v]) => `${shorten(k)} ${formatFigure(v)}`)
    .join(' ');

export function runsTable(rows: RunRow[]): string {
  const header = ['RUN', 'VARIANT', 'STATUS', 'STEPS', 'BACKEND', 'LOSSES (last 50 steps)', 'METRICS'];
  const body = rows.map((r) => [
    r.id,
    r.variant,
    r.status,
    r.steps !== undefined ? `${r.step}/${r.steps}` : String(r.step),
    r.backend,
    fmtMap(r.losses) || '–',
    fmtMap(r.metrics, short) || '–',
  ]);
  return textTable([header, ...body]);
}

export interface Comparison {
  runs: [string, string];
  rows: { section: string; key: string; values: [string, string]; differs: boolean }[];
}

/** Two runs side by side: summary, settings, recent losses and every evaluation figure. */
export function compareRuns(a: RunData, b: RunData, o: { perClass?: boolean } = {}): Comparison {
  const rows: Comparison['rows'] = [];
  const add = (section: string, key: string, x: unknown, y: unknown) => {
    const values: [string, string] = [x === undefined ? '–' : formatFigure(x), y === undefined ? '–' : formatFigure(y)];
    rows.push({ section, key, values, differs: values[0] !== values[1] });
  };
  const ra = runRow(a);
  const rb = runRow(b);
  add('run', 'variant', a.variant, b.variant);
  add('run', 'status', ra.status, rb.status);
  add('run', 'backend', a.info?.backend, b.info?.backend);
  add('run', 'created', a.info?.created, b.info?.created);
  add('run', 'steps', a.lastStep, b.lastStep);
  add('run', 'training time (s)', a.seconds, b.seconds);
  add(
    'run',
    'steps/s',
    a.seconds ? a.losses.length / a.seconds : undefined,
    b.seconds ? b.losses.length / b.seconds : undefined,
  );
  const oa = (a.info?.options ?? {}) as Record<string, unknown>;
  const ob = (b.info?.options ?? {}) as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(oa), ...Object.keys(ob)])]) add('settings', k, oa[k], ob[k]);
  for (const k of [...new Set([...a.lossNames, ...b.lossNames])])
    add('loss (mean of last 50 steps)', k, ra.losses[k], rb.losses[k]);
  const fa = flattenFigures(a.evaluation ?? {});
  const fb = flattenFigures(b.evaluation ?? {});
  for (const k of [...new Set([...Object.keys(fa), ...Object.keys(fb)])]) {
    if (!o.perClass && k.includes('[')) continue;
    add('evaluation', k, fa[k], fb[k]);
  }
  return { runs: [a.id, b.id], rows };
}

/** Figures that differ between any two runs, not worth a star. */
const VOLATILE = new Set(['created', 'training time (s)', 'steps/s']);

export function comparisonTable(c: Comparison): string {
  const lines: string[][] = [['', c.runs[0], c.runs[1], '']];
  let section = '';
  for (const r of c.rows) {
    if (r.section !== section) {
      section = r.section;
      lines.push([`[${section}]`, '', '', '']);
    }
    lines.push([`  ${r.key}`, r.values[0], r.values[1], r.differs && !VOLATILE.has(r.key) ? '*' : '']);
  }
  return `${textTable(lines)}\n(* differs)`;
}
