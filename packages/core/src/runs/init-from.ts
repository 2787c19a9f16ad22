/**
 * `train --init-from CHECKPOINT_OR_DIR`: fine-tuning. A new run starts from the networks of a checkpoint, a run
 * (its latest checkpoint) or an imported model (`import-torch` writes the same layout: state.json with the variant
 * and its config, one folder per network). The architecture comes from the source's config; flags that contradict
 * it are a one-line error. Every network the source holds is loaded (a discriminator only when present: published
 * pix2pix and CycleGAN files hold generators only, so the discriminators then start fresh); the optimizers start
 * fresh, at step 0, with the learning-rate schedule of the new run.
 *
 * The train command calls, in order: `openInitSource` (before building its config), `initArchitecture` (the source's
 * architecture merged under the flags), and `initWeights` (once the networks exist).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { type CheckpointState, readCheckpointState, restoreModelWeights } from './checkpoint.js';
import { resolveResume } from '../cli/cli.js';
import { GantryError } from '../errors.js';
import { kebab } from '../cli/flags.js';

export interface InitSource {
  /** The checkpoint directory weights are read from. */
  checkpoint: string;
  state: CheckpointState;
  /** Networks the source holds (sub-folders with a model.json). */
  nets: string[];
}

/** Resolves `--init-from` (a checkpoint, a run or an imported model directory) and checks that it is `variant`'s. */
export function openInitSource(variant: string, value: string): InitSource {
  const { checkpoint } = resolveResume(variant, value, '--init-from');
  const state = readCheckpointState(checkpoint);
  if (state.variant !== variant)
    throw new GantryError(`--init-from ${value}: a ${state.variant} model, expected ${variant}`);
  if (!state.config || typeof state.config !== 'object')
    throw new GantryError(`--init-from ${value}: ${path.join(checkpoint, 'state.json')} has no config`);
  const nets = fs
    .readdirSync(checkpoint, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(checkpoint, d.name, 'model.json')))
    .map((d) => d.name)
    .sort();
  if (nets.length === 0)
    throw new GantryError(`--init-from ${value}: no network in ${checkpoint} (expected folders with model.json)`);
  return { checkpoint, state, nets };
}

/** One architecture setting, by its config key (the parsed-argument name; the flag is the key in kebab case). */
export interface ArchKey {
  key: string;
  /** Only when the source holds this network (e.g. the discriminator's width). */
  net?: string;
  /** A default only: the flag may set another value (e.g. the crop size, which the weights do not depend on). */
  soft?: boolean;
}

/**
 * The source's architecture as parsed-argument values: for each key the source's config has, its value, unless the
 * flag was given with another value (a GantryError naming both). Keys the source lacks, and keys of networks it does
 * not hold, are left to the flags.
 */
export function initArchitecture(
  source: InitSource,
  keys: readonly ArchKey[],
  args: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    if (k.net && !source.nets.includes(k.net)) continue;
    const have = source.state.config[k.key];
    if (have === undefined) continue;
    const given = args[k.key];
    if (given !== undefined && k.soft) continue;
    if (given !== undefined && JSON.stringify(given) !== JSON.stringify(have)) {
      throw new GantryError(
        `--${kebab(k.key)} ${JSON.stringify(given)}: contradicts --init-from ${source.checkpoint}, whose ${k.key} is ${JSON.stringify(have)} (leave the flag out)`,
      );
    }
    out[k.key] = have;
  }
  return out;
}

/**
 * Loads the source's weights into the networks it holds (shapes checked, every mismatch named); returns the names
 * loaded. The networks the source lacks keep their fresh initialisation.
 */
export function initWeights(
  source: InitSource,
  nets: Record<string, tf.LayersModel>,
  log: (line: string) => void = (l) => console.error(l),
): string[] {
  const loaded = Object.keys(nets).filter((n) => source.nets.includes(n));
  if (loaded.length === 0)
    throw new GantryError(
      `--init-from ${source.checkpoint}: holds ${source.nets.join(', ')}, none of ${Object.keys(nets).join(', ')}`,
    );
  for (const name of loaded) {
    try {
      restoreModelWeights(nets[name]!, path.join(source.checkpoint, name));
    } catch (e) {
      if (e instanceof GantryError) throw new GantryError(`--init-from: ${e.message}`);
      throw e;
    }
  }
  const fresh = Object.keys(nets).filter((n) => !loaded.includes(n));
  log(
    `init-from ${source.checkpoint}: ${loaded.join(', ')} loaded${fresh.length ? `; ${fresh.join(', ')} fresh` : ''}; optimizers fresh, step 0`,
  );
  return loaded;
}
