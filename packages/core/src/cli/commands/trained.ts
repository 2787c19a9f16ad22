/** Loading a trained model of a variant: `--checkpoint`, or the latest run the variant accepts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GantryError } from '../../errors.js';
import {
  type KeyMigrations,
  latestCheckpoint,
  loadModel,
  readCheckpointState,
  registerKeyMigrations,
} from '../../runs/checkpoint.js';
import { latestRun, runsRoot } from '../../runs/run.js';
import type { Trained } from '../../variant.js';
import { resolveCheckpoint } from '../cli.js';

/** What loading a trained model needs of a definition. */
export type TrainedOf<C> = KeyMigrations & { name: string; preferNets?: string[]; defaultRun?(config: C): boolean };

/** Loads the trained model of `def` at `--checkpoint` (or the latest suitable run). */
export async function loadTrained<C extends object>(
  def: TrainedOf<C>,
  checkpointArg: string | undefined,
): Promise<Trained<C>> {
  registerKeyMigrations(def);
  const checkpoint = checkpointArg ? resolveCheckpoint(def.name, checkpointArg) : defaultCheckpoint(def);
  const state = readCheckpointState(checkpoint);
  if (state.variant !== def.name)
    throw new GantryError(`--checkpoint ${checkpoint}: a ${state.variant} checkpoint, expected ${def.name}`);
  const config = state.config as C;
  const load = (net: string) => loadModel(path.join(checkpoint, net));
  const names = def.preferNets ?? ['generator'];
  const preferred = names.find((n) => fs.existsSync(path.join(checkpoint, n, 'model.json'))) ?? names.at(-1)!;
  return { checkpoint, config, load, loadGenerator: () => load(preferred) };
}

function defaultCheckpoint<C extends object>(def: TrainedOf<C>): string {
  if (def.defaultRun) {
    // The latest run whose newest complete checkpoint the variant accepts (run.ts's rule, with a filter).
    const accept = (checkpoint: string) => {
      try {
        return def.defaultRun!(readCheckpointState(checkpoint).config as C);
      } catch {
        return false;
      }
    };
    const run = latestRun(def.name, runsRoot(), accept);
    const checkpoint = run && latestCheckpoint(run);
    if (checkpoint) return checkpoint;
  }
  return resolveCheckpoint(def.name, undefined);
}
