/**
 * The variants a sweep may run, and the check of a trial's flags. The check is the variant's own: the train
 * command's yargs options (strict: an unknown flag is refused), then the same value and combination checks the
 * train command makes before training (`resolveTrainValues`: each flag's parser, the preset, the variant's config).
 * The producer runs it before a trial is queued and the worker again before it runs one: the queue carries flags,
 * never code, and a worker trusts nothing it is handed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type AnyVariant,
  COMMON_FLAGS,
  GantryError,
  kebab,
  readFlags,
  resolveTrainValues,
  TRAIN_FLAGS,
  workspaceRoot,
  yargsOptions,
} from '@gantry/core';
import yargs from 'yargs';
import type { Trial } from './spec.js';

/** The known variants, loaded only when a sweep names one. */
const LOADERS: Record<string, () => Promise<AnyVariant>> = {
  gan: async () => (await import('@gantry/gan')).gan,
  dcgan: async () => (await import('@gantry/dcgan')).dcgan,
  cgan: async () => (await import('@gantry/cgan')).cgan,
  pix2pix: async () => (await import('@gantry/pix2pix')).pix2pix,
  cyclegan: async () => (await import('@gantry/cyclegan')).cyclegan,
};

export const VARIANTS = Object.keys(LOADERS);

export function isVariant(name: unknown): name is string {
  return typeof name === 'string' && Object.hasOwn(LOADERS, name);
}

export async function loadVariant(name: string, field = 'variant'): Promise<AnyVariant> {
  if (!isVariant(name)) throw new GantryError(`${field}: unknown variant '${name}' (expected ${VARIANTS.join(', ')})`);
  return LOADERS[name]!();
}

/** The built command-line program of a variant's app (a trial runs it as a child process). */
export function variantCli(name: string): string {
  if (!isVariant(name)) throw new GantryError(`unknown variant '${name}' (expected ${VARIANTS.join(', ')})`);
  return path.join(workspaceRoot(), 'apps', name, 'dist', 'cli.js');
}

export function variantBuilt(name: string): boolean {
  return fs.existsSync(variantCli(name));
}

/** Parses `argv` against `options` as a variant command does (strict, unknown flags refused) without running it. */
async function parseStrict(
  argv: string[],
  options: Record<string, unknown>,
  command: string,
): Promise<Record<string, unknown>> {
  const unknown = (msg: string) => {
    // yargs' own messages ("Unknown argument: a", "Invalid values: Argument: a, Given: …") as one line naming the flag.
    const line = msg.trim().replace(/\s*\n\s*/g, ' ');
    const m = /^Unknown arguments?: (.+)$/.exec(line);
    if (m) return `--${m[1]!.split(', ')[0]}: not a flag of ${command}`;
    const c = /^Invalid values: Argument: ([\w-]+), Given: (.*), Choices: (.*)$/.exec(line);
    if (c) return `--${c[1]}: expected one of ${c[3]!.replace(/"/g, '')}, got ${c[2]!.replace(/"/g, "'")}`;
    return line;
  };
  return (await yargs(argv)
    .options(yargsOptions(COMMON_FLAGS))
    .options(options as Parameters<ReturnType<typeof yargs>['options']>[0])
    .strict()
    .version(false)
    .help(false)
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new GantryError(unknown(msg));
    })
    .parseAsync()) as Record<string, unknown>;
}

/** Checks a trial's train flags exactly as `<variant> train` would; throws its one-line GantryError. */
export async function checkTrainArgs(def: AnyVariant, argv: string[]): Promise<void> {
  const presetNames = Object.keys(def.presets);
  const opts = yargsOptions({ ...TRAIN_FLAGS, ...def.flags });
  opts.preset = { ...opts.preset, choices: presetNames };
  for (const t of argv)
    for (const reserved of ['out', 'resume'])
      if (t === `--${reserved}` || t.startsWith(`--${reserved}=`))
        throw new GantryError(`--${reserved}: set by the worker, not by a sweep`);
  const args = await parseStrict(argv, opts, `${def.name} train`);
  if (args._ && (args._ as unknown[]).length)
    throw new GantryError(`unexpected argument '${(args._ as unknown[])[0]}' (flags only)`);
  resolveTrainValues(def, args);
}

/** Checks a trial's evaluate flags as `<variant> evaluate` would. */
export async function checkEvaluateArgs(def: AnyVariant, argv: string[]): Promise<void> {
  if (!def.evaluate) throw new GantryError(`${def.name} has no evaluate command, so a sweep cannot rank its trials`);
  for (const t of argv)
    for (const reserved of ['checkpoint', 'json'])
      if (t === `--${reserved}` || t.startsWith(`--${reserved}=`))
        throw new GantryError(`--${reserved}: set by the worker, not by a sweep`);
  const args = await parseStrict(argv, yargsOptions(def.evaluate.flags), `${def.name} evaluate`);
  if (args._ && (args._ as unknown[]).length)
    throw new GantryError(`unexpected argument '${(args._ as unknown[])[0]}' (flags only)`);
  readFlags(def.evaluate.flags, args);
}

/** The spec field a flag error (`--name: …`) came from, for the producer's one-line error. */
export function fieldOf(message: string, trial: Pick<Trial, 'sources'>, evaluateField = false): string | undefined {
  const m = /^--([a-z0-9-]+)/.exec(message);
  if (!m) return undefined;
  const flag = m[1]!;
  if (evaluateField) return `evaluate.${flag}`;
  const key = Object.keys(trial.sources).find((k) => kebab(k) === flag);
  return key ? trial.sources[key] : undefined;
}
