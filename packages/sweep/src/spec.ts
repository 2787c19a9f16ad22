/**
 * A sweep spec (YAML or JSON): the variant, the train flags every trial holds, the flags it varies (a grid, a list
 * or random draws), the seeds, the evaluate flags and the metric to rank by. `readSpec` checks its shape (a bad
 * field is a one-line GantryError naming it); `expandTrials` turns it into trials, each one train command line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GantryError, kebab, mixSeed, mulberry32 } from '@gantry/core';
import YAML from 'yaml';

export type Scalar = string | number | boolean;

/** How a random sweep draws one flag. */
export type Distribution =
  | { kind: 'uniform' | 'log-uniform'; lo: number; hi: number }
  | { kind: 'int'; lo: number; hi: number }
  | { kind: 'choice'; values: Scalar[] };

export interface SweepSpec {
  name: string;
  variant: string;
  metric: string;
  goal: 'min' | 'max';
  /** Train flags every trial gets (flag names as on the command line, without the dashes). */
  flags: Record<string, Scalar>;
  vary:
    | { kind: 'none' }
    | { kind: 'grid'; grid: Record<string, Scalar[]> }
    | { kind: 'list'; list: Record<string, Scalar>[] }
    | { kind: 'random'; count: number; seed: number; flags: Record<string, Distribution> };
  seeds?: number[];
  /** Flags of the variant's `evaluate` command. */
  evaluate: Record<string, Scalar>;
}

export interface Trial {
  /** t01, t02, …: the trial's place in the sweep. */
  id: string;
  /** The flags that differ between trials (the varied ones and the seed), for tables and plots. */
  settings: Record<string, Scalar>;
  /** The train flags as command-line tokens (`--name=value`), without --out/--resume (the worker sets those). */
  args: string[];
  /** Where each flag came from in the spec (flag → field), to name the field when a value is refused. */
  sources: Record<string, string>;
}

/** Flags the worker sets itself; a spec may not. */
const RESERVED_TRAIN = new Set(['out', 'resume', 'progress', 'backend']);
const RESERVED_EVALUATE = new Set(['checkpoint', 'json', 'backend']);
/** Sweep names become job ids, file names and run-directory names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const MAX_TRIALS = 10_000;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isScalar = (v: unknown): v is Scalar =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Reads and checks a spec file; `name` defaults to the file's name without its extension. */
export function readSpec(file: string): SweepSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new GantryError(`${file}: cannot read the sweep spec (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let doc: unknown;
  try {
    // JSON is YAML too; one parser for both. Duplicate keys are errors (yaml's default: uniqueKeys).
    doc = YAML.parse(text, { prettyErrors: false });
  } catch (err) {
    throw new GantryError(`${file}: not valid YAML or JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const base = path.basename(file).replace(/\.(ya?ml|json)$/i, '');
  return parseSpec(doc, file, base);
}

/** Checks a parsed spec document; errors read `<where>: <field>: <what was expected>`. */
export function parseSpec(doc: unknown, where = 'spec', defaultName = 'sweep'): SweepSpec {
  const fail = (field: string, expected: string, got?: unknown): never => {
    throw new GantryError(`${where}: ${field}: expected ${expected}${got === undefined ? '' : `, got ${show(got)}`}`);
  };
  if (!isObject(doc)) return fail('(top level)', 'a mapping of fields (name, variant, metric, flags, grid…)', doc);
  const known = ['name', 'variant', 'metric', 'goal', 'flags', 'grid', 'list', 'random', 'seeds', 'evaluate'];
  for (const k of Object.keys(doc)) if (!known.includes(k)) fail(k, `one of the fields ${known.join(', ')}`, k);

  const name = doc.name ?? defaultName;
  if (typeof name !== 'string' || !NAME.test(name))
    fail('name', 'letters, digits, _ . - (up to 64, starting with a letter or digit)', name);
  if (typeof doc.variant !== 'string' || !doc.variant)
    fail('variant', 'a variant name (gan, dcgan, cgan…)', doc.variant);
  if (typeof doc.metric !== 'string' || !/^[A-Za-z0-9_.[\]-]+$/.test(doc.metric))
    fail('metric', "a figure of the trial's evaluation.json as a dotted path (e.g. images.frechet)", doc.metric);
  const goal = doc.goal ?? 'min';
  if (goal !== 'min' && goal !== 'max') fail('goal', 'min or max', goal);

  const flagMap = (v: unknown, field: string, reserved: Set<string>): Record<string, Scalar> => {
    if (v === undefined || v === null) return {};
    if (!isObject(v)) return fail(field, 'a mapping of flag → value', v);
    const out: Record<string, Scalar> = {};
    for (const [k, x] of Object.entries(v)) {
      const key = flagKey(k, `${field}.${k}`, reserved, fail);
      if (!isScalar(x)) fail(`${field}.${k}`, 'a number, string or boolean', x);
      out[key] = x as Scalar;
    }
    return out;
  };
  const flags = flagMap(doc.flags, 'flags', RESERVED_TRAIN);
  const evaluate = flagMap(doc.evaluate, 'evaluate', RESERVED_EVALUATE);

  const modes = (['grid', 'list', 'random'] as const).filter((k) => doc[k] !== undefined);
  if (modes.length > 1) fail(modes[1]!, `one of grid, list or random, not both ${modes.join(' and ')}`);
  let vary: SweepSpec['vary'] = { kind: 'none' };
  const varied = new Set<string>();
  if (doc.grid !== undefined) {
    if (!isObject(doc.grid) || !Object.keys(doc.grid).length)
      fail('grid', 'a mapping of flag → list of values', doc.grid);
    const grid: Record<string, Scalar[]> = {};
    for (const [k, xs] of Object.entries(doc.grid as Record<string, unknown>)) {
      const key = flagKey(k, `grid.${k}`, RESERVED_TRAIN, fail);
      if (!Array.isArray(xs) || !xs.length || !xs.every(isScalar))
        fail(`grid.${k}`, 'a non-empty list of numbers, strings or booleans', xs);
      grid[key] = xs as Scalar[];
      varied.add(key);
    }
    vary = { kind: 'grid', grid };
  } else if (doc.list !== undefined) {
    if (!Array.isArray(doc.list) || !doc.list.length)
      fail('list', 'a non-empty list of mappings of flag → value', doc.list);
    const list = (doc.list as unknown[]).map((item, i) => {
      if (!isObject(item)) return fail(`list[${i}]`, 'a mapping of flag → value', item);
      const out: Record<string, Scalar> = {};
      for (const [k, x] of Object.entries(item)) {
        const key = flagKey(k, `list[${i}].${k}`, RESERVED_TRAIN, fail);
        if (!isScalar(x)) fail(`list[${i}].${k}`, 'a number, string or boolean', x);
        out[key] = x as Scalar;
        varied.add(key);
      }
      return out;
    });
    vary = { kind: 'list', list };
  } else if (doc.random !== undefined) {
    const r = doc.random;
    if (!isObject(r)) return fail('random', 'a mapping with count, flags and an optional seed', r);
    for (const k of Object.keys(r))
      if (!['count', 'seed', 'flags'].includes(k)) fail(`random.${k}`, 'one of count, seed, flags', k);
    if (!Number.isInteger(r.count) || (r.count as number) < 1 || (r.count as number) > MAX_TRIALS)
      fail('random.count', `a positive integer up to ${MAX_TRIALS}`, r.count);
    const seed = r.seed ?? 0;
    if (!Number.isInteger(seed) || (seed as number) < 0) fail('random.seed', 'a non-negative integer', seed);
    if (!isObject(r.flags) || !Object.keys(r.flags).length)
      fail('random.flags', 'a mapping of flag → {uniform|log-uniform|int: [lo, hi]} or {choice: [values]}', r.flags);
    const dists: Record<string, Distribution> = {};
    for (const [k, d] of Object.entries(r.flags as Record<string, unknown>)) {
      const field = `random.flags.${k}`;
      const key = flagKey(k, field, RESERVED_TRAIN, fail);
      dists[key] = distribution(d, field, fail);
      varied.add(key);
    }
    vary = { kind: 'random', count: r.count as number, seed: seed as number, flags: dists };
  }
  for (const k of varied)
    if (k in flags) fail(`flags.${kebab(k)}`, `a flag that is not also varied (${kebab(k)} is in ${vary.kind})`);

  let seeds: number[] | undefined;
  if (doc.seeds !== undefined) {
    const s = doc.seeds;
    if (!Array.isArray(s) || !s.length || !s.every((x) => Number.isInteger(x) && x >= 0))
      fail('seeds', 'a non-empty list of non-negative integers', s);
    if (new Set(s as number[]).size !== (s as number[]).length) fail('seeds', 'distinct seeds', s);
    if ('seed' in flags || varied.has('seed'))
      fail('seeds', `no seeds list when the seed is set in ${'seed' in flags ? 'flags' : vary.kind}`);
    seeds = s as number[];
  }
  const spec: SweepSpec = {
    name: name as string,
    variant: doc.variant as string,
    metric: doc.metric as string,
    goal: goal as 'min' | 'max',
    flags,
    vary,
    seeds,
    evaluate,
  };
  const n = settingsCount(spec) * (seeds?.length ?? 1);
  if (n > MAX_TRIALS) fail(vary.kind === 'none' ? 'seeds' : vary.kind, `at most ${MAX_TRIALS} trials`, `${n} trials`);
  return spec;
}

/** A flag name of the spec (as typed on the command line, no dashes) → its camel-case key. */
function flagKey(
  name: string,
  field: string,
  reserved: Set<string>,
  fail: (field: string, expected: string, got?: unknown) => never,
): string {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(name))
    fail(field, 'a flag name as on the command line, without dashes (batch-size)', name);
  const key = name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  if (reserved.has(key)) fail(field, `a flag other than --${name} (the worker sets it)`);
  return key;
}

function distribution(
  d: unknown,
  field: string,
  fail: (field: string, expected: string, got?: unknown) => never,
): Distribution {
  const expected = '{uniform: [lo, hi]}, {log-uniform: [lo, hi]}, {int: [lo, hi]} or {choice: [values]}';
  if (!isObject(d) || Object.keys(d).length !== 1) return fail(field, expected, d);
  const [kind, v] = Object.entries(d)[0]!;
  if (kind === 'choice') {
    if (!Array.isArray(v) || !v.length || !v.every(isScalar))
      fail(`${field}.choice`, 'a non-empty list of numbers, strings or booleans', v);
    return { kind: 'choice', values: v as Scalar[] };
  }
  if (kind !== 'uniform' && kind !== 'log-uniform' && kind !== 'int') return fail(field, expected, d);
  const pair = Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!pair || (v as number[])[0]! > (v as number[])[1]!) fail(`${field}.${kind}`, '[lo, hi] with lo ≤ hi', v);
  const [lo, hi] = v as [number, number];
  if (kind === 'log-uniform' && lo <= 0) fail(`${field}.${kind}`, 'positive bounds', v);
  if (kind === 'int' && (!Number.isInteger(lo) || !Number.isInteger(hi))) fail(`${field}.${kind}`, 'integer bounds', v);
  return { kind, lo, hi };
}

function settingsCount(spec: SweepSpec): number {
  const v = spec.vary;
  if (v.kind === 'grid') return Object.values(v.grid).reduce((n, xs) => n * xs.length, 1);
  if (v.kind === 'list') return v.list.length;
  if (v.kind === 'random') return v.count;
  return 1;
}

/** One value drawn from `d` (numbers rounded to 4 significant digits, so tables and flags stay readable). */
function draw(d: Distribution, rng: () => number): Scalar {
  const round = (x: number) => Number(x.toPrecision(4));
  switch (d.kind) {
    case 'choice':
      return d.values[Math.min(d.values.length - 1, Math.floor(rng() * d.values.length))]!;
    case 'int':
      return d.lo + Math.min(d.hi - d.lo, Math.floor(rng() * (d.hi - d.lo + 1)));
    case 'uniform':
      return round(d.lo + rng() * (d.hi - d.lo));
    case 'log-uniform':
      return round(Math.exp(Math.log(d.lo) + rng() * (Math.log(d.hi) - Math.log(d.lo))));
  }
}

/** The flag settings of the sweep, each with the spec field of every varied value. */
function settingsOf(spec: SweepSpec): { values: Record<string, Scalar>; sources: Record<string, string> }[] {
  const v = spec.vary;
  if (v.kind === 'grid') {
    let out: { values: Record<string, Scalar>; sources: Record<string, string> }[] = [{ values: {}, sources: {} }];
    for (const [k, xs] of Object.entries(v.grid))
      out = out.flatMap((o) =>
        xs.map((x) => ({ values: { ...o.values, [k]: x }, sources: { ...o.sources, [k]: `grid.${kebab(k)}` } })),
      );
    return out;
  }
  if (v.kind === 'list')
    return v.list.map((values, i) => ({
      values,
      sources: Object.fromEntries(Object.keys(values).map((k) => [k, `list[${i}].${kebab(k)}`])),
    }));
  if (v.kind === 'random') {
    // Deterministic: submitting the same spec again gives the same trials (and the same job ids).
    const rng = mulberry32(mixSeed(v.seed, 0x5eed));
    return Array.from({ length: v.count }, () => {
      const values: Record<string, Scalar> = {};
      const sources: Record<string, string> = {};
      for (const [k, d] of Object.entries(v.flags)) {
        values[k] = draw(d, rng);
        sources[k] = `random.flags.${kebab(k)}`;
      }
      return { values, sources };
    });
  }
  return [{ values: {}, sources: {} }];
}

/** Command-line tokens for flag values: `--name=value` (so a value starting with a dash stays a value). */
export function flagTokens(values: Record<string, Scalar>): string[] {
  return Object.entries(values).map(([k, v]) => `--${kebab(k)}=${String(v)}`);
}

/** Every trial of the sweep: each setting once per seed, in order. */
export function expandTrials(spec: SweepSpec): Trial[] {
  const settings = settingsOf(spec);
  const seeds = spec.seeds ?? [undefined];
  const trials: Trial[] = [];
  const width = Math.max(2, String(settings.length * seeds.length).length);
  for (const s of settings)
    for (const seed of seeds) {
      const varied = seed === undefined ? s.values : { ...s.values, seed };
      const values = { ...spec.flags, ...varied };
      const sources: Record<string, string> = {
        ...Object.fromEntries(Object.keys(spec.flags).map((k) => [k, `flags.${kebab(k)}`])),
        ...s.sources,
        ...(seed === undefined ? {} : { seed: 'seeds' }),
      };
      trials.push({
        id: `t${String(trials.length + 1).padStart(width, '0')}`,
        settings: varied,
        args: flagTokens(values),
        sources,
      });
    }
  return trials;
}
