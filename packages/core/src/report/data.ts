/**
 * What a run directory holds, read back for the report and the `gantry runs` / `compare` commands:
 * run.json (settings, backend), losses.jsonl (one line per step), samples/*.png, evaluation.json and an optional
 * metrics.jsonl (`{"step": N, "<metric>": value, …}` per line: any figure tracked over time).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readLossLog } from '../runs/progress.js';
import type { RunInfo } from '../runs/run.js';

export interface SampleImage {
  /** Path relative to the run directory, with forward slashes. */
  file: string;
  /** Training step the image shows (final.png: the last logged step). */
  step: number;
  final: boolean;
}

export interface RunData {
  dir: string;
  /** `<variant>/<stamp>` under the runs root, or the directory name. */
  id: string;
  info?: RunInfo;
  variant: string;
  /** The loss log, one entry per step (`step`, `epoch`, `time` and one key per named loss). */
  losses: Record<string, number>[];
  /** Names of the logged losses, main ones (D, G) first. */
  lossNames: string[];
  metrics: Record<string, number>[];
  metricNames: string[];
  samples: SampleImage[];
  evaluation?: Record<string, unknown>;
  /** Steps asked for (run.json `options.steps`), if known. */
  totalSteps?: number;
  lastStep: number;
  /** Wall-clock seconds between the first and last logged step. */
  seconds?: number;
  /** Time of the last change (last log line, sample or evaluation), ms since the epoch. */
  updated: number;
}

const RESERVED = new Set(['step', 'epoch', 'time']);

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** Loss log keys of older runs, under today's names (docs/naming.md: one style, the reference's `G_GAN`). */
const RENAMED_LOSS_KEYS: Readonly<Record<string, string>> = {
  'D(real)': 'D_real',
  'D cls': 'D_cls',
  'G cls': 'G_cls',
  'G ms': 'G_ms',
};
export function renameLossKeys(entry: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(entry)) out[RENAMED_LOSS_KEYS[k] ?? k] = v;
  return out;
}

/** Keys of the entries other than step/epoch/time, in first-seen order, main losses (D…, G…) first. */
export function seriesNames(entries: Record<string, number>[]): string[] {
  const seen = new Set<string>();
  for (const e of entries)
    for (const k of Object.keys(e)) if (!RESERVED.has(k) && typeof e[k] === 'number') seen.add(k);
  const rank = (k: string) => (k === 'D' ? 0 : k === 'G' ? 1 : k.startsWith('D') ? 2 : k.startsWith('G') ? 3 : 4);
  return [...seen].sort((a, b) => rank(a) - rank(b));
}

const STEP_PNG = /^step-(\d+)\.(png|jpe?g|webp)$/;

/** Sample images of a run, oldest first, final.png last. */
export function listSamples(runDir: string, lastStep: number): SampleImage[] {
  const dir = path.join(runDir, 'samples');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const steps: SampleImage[] = [];
  let final: SampleImage | undefined;
  for (const n of names) {
    const m = STEP_PNG.exec(n);
    if (m) steps.push({ file: `samples/${n}`, step: Number(m[1]), final: false });
    else if (/^final\.(png|jpe?g|webp)$/.test(n)) final = { file: `samples/${n}`, step: lastStep, final: true };
  }
  steps.sort((a, b) => a.step - b.step);
  if (final) {
    final.step = Math.max(final.step, steps.at(-1)?.step ?? 0);
    steps.push(final);
  }
  return steps;
}

/** Reads everything the report shows; missing files give empty parts, never an error. */
export function readRunData(runDir: string, root?: string): RunData {
  const dir = path.resolve(runDir);
  const info = readJson<RunInfo>(path.join(dir, 'run.json'));
  const losses = readLossLog(path.join(dir, 'losses.jsonl')).map(renameLossKeys);
  const metrics = readLossLog(path.join(dir, 'metrics.jsonl'));
  const evaluation = readJson<Record<string, unknown>>(path.join(dir, 'evaluation.json'));
  const lastStep = losses.at(-1)?.step ?? 0;
  const samples = listSamples(dir, lastStep);
  const options = (info?.options ?? {}) as Record<string, unknown>;
  const t0 = losses[0]?.time;
  const t1 = losses.at(-1)?.time;
  const rel = root ? path.relative(path.resolve(root), dir) : '';
  const id = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : path.basename(dir);
  const updated = Math.max(
    mtime(path.join(dir, 'losses.jsonl')),
    mtime(path.join(dir, 'evaluation.json')),
    ...samples.slice(-1).map((s) => mtime(path.join(dir, s.file))),
  );
  return {
    dir,
    id,
    info,
    variant: info?.variant ?? path.basename(path.dirname(dir)),
    losses,
    lossNames: seriesNames(losses),
    metrics,
    metricNames: seriesNames(metrics),
    samples,
    evaluation,
    totalSteps: typeof options.steps === 'number' ? options.steps : undefined,
    lastStep,
    seconds: typeof t0 === 'number' && typeof t1 === 'number' && t1 > t0 ? (t1 - t0) / 1000 : undefined,
    updated,
  };
}

/** Mean of each loss over the last `window` logged steps (less noisy than the last step alone). */
export function recentLosses(losses: Record<string, number>[], names: string[], window = 50): Record<string, number> {
  const tail = losses.slice(-window);
  const out: Record<string, number> = {};
  for (const n of names) {
    const v = tail.map((e) => e[n]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    if (v.length) out[n] = v.reduce((a, b) => a + b, 0) / v.length;
  }
  return out;
}

/** Every numeric leaf of the evaluation figures as `a.b.c → value` (array items by index, or by `label`). */
export function flattenFigures(value: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (typeof value === 'number' && Number.isFinite(value)) out[prefix] = value;
  else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const key = v && typeof v === 'object' && 'label' in v ? String((v as { label: unknown }).label) : String(i);
      flattenFigures(v, prefix ? `${prefix}[${key}]` : `[${key}]`, out);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'label') continue;
      flattenFigures(v, prefix ? `${prefix}.${k}` : k, out);
    }
  }
  return out;
}

const HEADLINE = /(frechet|fid|accuracy|ssim|psnr|l1|kid)$/i;

/**
 * A few figures worth a column in `gantry runs`: headline metrics of the generated images (not of the real-data
 * reference or a baseline), outside per-class breakdowns.
 */
export function headlineFigures(evaluation: Record<string, unknown> | undefined, max = 3): Record<string, number> {
  if (!evaluation) return {};
  const flat = flattenFigures(evaluation);
  const picked = Object.entries(flat).filter(
    ([k]) =>
      !k.includes('[') &&
      !/(^|\.)(real|identity|reference)(\.|$)|baseline/i.test(k) &&
      HEADLINE.test(k.split('.').at(-1)!),
  );
  return Object.fromEntries(picked.slice(0, max));
}

/** Run directories under `root` (`<root>/<variant>/<stamp>` holding a run.json or losses.jsonl), oldest first. */
export function findRuns(root: string): string[] {
  const runs: string[] = [];
  let variants: fs.Dirent[];
  try {
    variants = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  for (const v of variants) {
    if (!v.isDirectory() || v.name.startsWith('.')) continue;
    const base = path.join(root, v.name);
    for (const r of fs.readdirSync(base, { withFileTypes: true })) {
      if (!r.isDirectory() || r.name.startsWith('.')) continue;
      const dir = path.join(base, r.name);
      if (fs.existsSync(path.join(dir, 'run.json')) || fs.existsSync(path.join(dir, 'losses.jsonl'))) runs.push(dir);
    }
  }
  const created = (d: string) => {
    const info = readJson<RunInfo>(path.join(d, 'run.json'));
    const t = info?.created ? Date.parse(info.created) : Number.NaN;
    return Number.isFinite(t) ? t : mtime(d);
  };
  return runs
    .map((d) => [d, created(d)] as const)
    .sort((a, b) => a[1] - b[1])
    .map(([d]) => d);
}
