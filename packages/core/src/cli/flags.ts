/**
 * Typed flags. A variant names each of its options once, by its config key (`dLayers`); the command-line flag is
 * that key in kebab case (`--d-layers`), so flags, config keys and run.json keys cannot drift apart. A flag
 * knows how to parse and check its value, its default, and the old names it still accepts.
 */
import type { Options } from 'yargs';
import { GantryError } from '../errors.js';

/** One option of a command. `T` is the type of its parsed value. */
export interface Flag<T> {
  /** Help text. */
  describe: string;
  /** The value when neither the flag, a resumed run nor a preset gives one. */
  default?: T;
  /** yargs' type and choices; values are checked by `parse`. */
  type: 'string' | 'number' | 'boolean';
  choices?: readonly (string | number)[];
  /** Checks a raw value and returns it typed; throws a one-line GantryError naming `--name`. */
  parse(raw: unknown, name: string): T;
  /** Old names still accepted, with a deprecation warning. */
  deprecated?: readonly string[];
  /** Other names that are not deprecated (e.g. the reference implementation's spelling). */
  aliases?: readonly string[];
  /** Left out of run.json (paths that only matter to this invocation). */
  transient?: boolean;
  /** The command cannot run without it (yargs refuses the command line). */
  required?: boolean;
  /** Still accepted, with a warning that names the flag replacing it (a flag whose values another one took over). */
  replacedBy?: string;
}

export type FlagSpecs = Record<string, Flag<unknown>>;

/** The largest --batch-size: a batch's activations must fit the wasm backend's 4 GB memory. */
export const MAX_BATCH_SIZE = 1024;
/** The largest --latent-dim (the generator's first layer grows with it). */
export const MAX_LATENT_DIM = 4096;
/**
 * The largest training image side (--crop-size, --load-size): one 4096² crop's activations already take gigabytes;
 * a crop size from a tampered checkpoint (2^30) reached sharp's resize and failed with exit 1.
 */
export const MAX_IMAGE_SIDE = 4096;
/** The largest generate --count (one PNG file each). */
export const MAX_GENERATE_COUNT = 100_000;

/** The parsed values of a set of flags. */
export type FlagValues<F extends FlagSpecs> = { [K in keyof F]: F[K] extends Flag<infer T> ? T : never };

export const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function numeric(test: (n: number) => boolean, expected: string) {
  return (raw: unknown, name: string): number => {
    const n = typeof raw === 'number' ? raw : Number(raw);
    if (Array.isArray(raw) || raw === '' || raw == null || !test(n))
      throw new GantryError(`--${name}: expected ${expected}, got '${raw}'`);
    return n;
  };
}

type Extra<T> = Partial<Pick<Flag<T>, 'default' | 'deprecated' | 'aliases' | 'transient' | 'required' | 'replacedBy'>>;

/** A number flag whose values pass `test`; the error says what was `expected`. */
function numberFlag(
  describe: string,
  test: (n: number) => boolean,
  expected: string,
  extra: Extra<number> = {},
): Flag<number> {
  return { describe, type: 'number', parse: numeric(test, expected), ...extra };
}

export const flag = {
  number: numberFlag,
  positiveInt: (describe: string, extra?: Extra<number>) =>
    numberFlag(describe, (n) => Number.isInteger(n) && n > 0, 'a positive integer', extra),
  /** A positive integer with an upper limit; the error names the limit and why it is there. */
  positiveIntUpTo: (describe: string, max: number, why: string, extra?: Extra<number>) =>
    numberFlag(
      describe,
      (n) => Number.isInteger(n) && n > 0 && n <= max,
      `a positive integer up to ${max} (${why})`,
      extra,
    ),
  nonNegativeInt: (describe: string, extra?: Extra<number>) =>
    numberFlag(describe, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer', extra),
  positiveNumber: (describe: string, extra?: Extra<number>) =>
    numberFlag(describe, (n) => Number.isFinite(n) && n > 0, 'a positive number', extra),
  nonNegativeNumber: (describe: string, extra?: Extra<number>) =>
    numberFlag(describe, (n) => Number.isFinite(n) && n >= 0, 'a non-negative number', extra),
  /** A number in [lo, hi) (or [lo, hi] with `closed`). */
  range: (describe: string, lo: number, hi: number, extra?: Extra<number> & { closed?: boolean }) =>
    numberFlag(
      describe,
      (n) => Number.isFinite(n) && n >= lo && (extra?.closed ? n <= hi : n < hi),
      `a number in [${lo}, ${hi}${extra?.closed ? ']' : ')'}`,
      extra,
    ),
  /** One of a fixed set of strings (or numbers). */
  choice<T extends string | number>(choices: readonly T[], describe: string, extra: Extra<NoInfer<T>> = {}): Flag<T> {
    const numbers = typeof choices[0] === 'number';
    return {
      describe,
      type: numbers ? 'number' : 'string',
      choices,
      parse: (raw, name) => {
        const v = numbers ? Number(raw) : String(raw);
        if (!choices.includes(v as T))
          throw new GantryError(`--${name}: expected one of ${choices.join(', ')}, got '${raw}'`);
        return v as T;
      },
      ...extra,
    };
  },
  boolean: (describe: string, extra: Extra<boolean> = {}): Flag<boolean> => ({
    describe,
    type: 'boolean',
    parse: (raw) => Boolean(raw),
    ...extra,
  }),
  /** A free string (a path, a name); undefined when not given. */
  string: (describe: string, extra: Extra<string | undefined> = {}): Flag<string | undefined> => ({
    describe,
    type: 'string',
    parse: (raw, name) => {
      if (raw === undefined) return undefined;
      if (typeof raw !== 'string' || raw === '')
        throw new GantryError(`--${name}: expected a value, got '${raw ?? ''}'`);
      return raw;
    },
    ...extra,
  }),
};

/**
 * yargs options for `specs`, keyed by flag name. Defaults are applied by `readFlags` (a preset or a resumed run may
 * fill them), so yargs only shows them: `defaults` overrides the flags' own for the help text.
 */
export function yargsOptions(specs: FlagSpecs, defaults: Record<string, unknown> = {}): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const [key, f] of Object.entries(specs)) {
    const name = kebab(key);
    const value = defaults[key] ?? f.default;
    const shown = value !== undefined ? ` (default: ${value})` : '';
    out[name] = {
      // Numbers are left untyped for yargs, so that a bad value reaches `parse` as typed ('abc', not NaN).
      ...(f.type === 'number' ? {} : { type: f.type }),
      describe: f.describe + shown,
      ...(f.choices ? { choices: [...f.choices] } : {}),
      alias: [...(f.aliases ?? []), ...(f.deprecated ?? [])],
      ...(f.required ? { demandOption: true } : {}),
    };
  }
  return out;
}

/** The deprecated flag names that appear in `argv`, with the names that replace them. */
export function deprecatedFlagsUsed(specs: FlagSpecs, argv: readonly string[]): { used: string; instead: string }[] {
  const typed = new Set(
    argv.filter((t) => t.startsWith('--')).map((t) => t.slice(2).split('=')[0]!.replace(/^no-/, '')),
  );
  return Object.entries(specs).flatMap(([key, f]) => [
    ...(f.deprecated ?? []).filter((d) => typed.has(d)).map((d) => ({ used: d, instead: kebab(key) })),
    ...(f.replacedBy && typed.has(kebab(key)) ? [{ used: kebab(key), instead: f.replacedBy }] : []),
  ]);
}

/**
 * The typed values of `specs` from parsed arguments (`args`, camel-case keys), falling back to `fallback`
 * (a resumed run's or a preset's values) and then to each flag's default. Every value given is checked.
 */
export function readFlags<F extends FlagSpecs>(
  specs: F,
  args: Record<string, unknown>,
  ...fallbacks: Record<string, unknown>[]
): FlagValues<F> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(specs)) {
    let raw = args[key];
    for (const fb of fallbacks) if (raw === undefined) raw = fb[key];
    if (raw === undefined) raw = f.default;
    out[key] = raw === undefined ? undefined : f.parse(raw, kebab(key));
  }
  return out as FlagValues<F>;
}
