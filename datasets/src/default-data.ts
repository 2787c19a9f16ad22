/**
 * The procedural day/night scenes as the out-of-the-box dataset of pix2pix and CycleGAN: generated once into
 * `<repo>/data/scenes-v3-<layout>-<size>-<count>` (plus `-seed<seed>` for a seed other than 0; `<repo>/data/` is
 * gitignored) and reused by every later run.
 *
 * - 'aligned' (pix2pix): `{train,val,test}/NNNN.png`, A|B side by side, A = night, B = day (see scenes.ts;
 *   day→night is direction BtoA). `count` pairs over all splits (80/10/10).
 * - 'unaligned' (CycleGAN): `{trainA,trainB,testA,testB}/NNNN.png`, A = day, B = night, `count` images per
 *   domain, 10% held out.
 *
 * The folder is built in a temporary sibling and renamed into place (scenes.ts), so an existing folder is
 * always complete; two processes generating at once both end up using the one that was renamed first.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { check, GantryError, workspaceRoot } from '@gantry/core';
import { writeAlignedDataset, writeUnalignedDataset } from './scenes.js';

export interface SceneDatasetSpec {
  layout: 'aligned' | 'unaligned';
  /** Image size in pixels (each side of an aligned pair). */
  size: number;
  /** Aligned: pairs over all splits; unaligned: images per domain. */
  count: number;
  /** Base seed of the scenes (default 0). */
  seed?: number;
  /** Parent folder (default `<repo>/data`). */
  root?: string;
  /** Progress line when the data has to be generated (default console.error). */
  log?: (line: string) => void;
}

/** The folder `ensureSceneDataset` uses for `spec` (it may not exist yet). */
export function sceneDatasetPath(spec: SceneDatasetSpec): string {
  const seed = spec.seed ?? 0;
  // v3: day windows show (clearly visible) curtains where the room is lit at night; a new version never reuses an
  // old folder.
  return join(
    spec.root ?? join(workspaceRoot(), 'data'),
    `scenes-v3-${spec.layout}-${spec.size}-${spec.count}${seed ? `-seed${seed}` : ''}`,
  );
}

function complete(dir: string, layout: SceneDatasetSpec['layout']): boolean {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
  const need = layout === 'aligned' ? ['train'] : ['trainA', 'trainB'];
  return need.every((d) => existsSync(join(dir, d)) && readdirSync(join(dir, d)).length > 0);
}

/** Generates the scene dataset once (if its folder does not exist) and returns its path. */
export async function ensureSceneDataset(spec: SceneDatasetSpec): Promise<string> {
  check(
    spec.layout === 'aligned' || spec.layout === 'unaligned',
    `scenes: layout must be 'aligned' or 'unaligned', got '${spec.layout}'`,
  );
  check(
    Number.isInteger(spec.size) && spec.size >= 16 && spec.size <= 4096,
    `scenes: size must be an integer in 16..4096, got ${spec.size}`,
  );
  check(Number.isInteger(spec.count) && spec.count > 0, `scenes: count must be a positive integer, got ${spec.count}`);
  const dir = sceneDatasetPath(spec);
  if (complete(dir, spec.layout)) return dir;
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new GantryError(`${dir}: exists but is not a complete ${spec.layout} scene dataset; delete it to regenerate`);
  }
  const log = spec.log ?? ((l: string) => console.error(l));
  const started = Date.now();
  log(`generating ${spec.count} ${spec.layout} day/night scenes at ${spec.size}×${spec.size} into ${dir} (once)…`);
  const opts = { count: spec.count, size: spec.size, seed: spec.seed ?? 0, overwrite: true };
  try {
    if (spec.layout === 'aligned') await writeAlignedDataset(dir, opts);
    else await writeUnalignedDataset(dir, opts);
  } catch (e) {
    // Another process may have finished the same dataset first (its rename wins, ours fails or is redundant).
    if (complete(dir, spec.layout)) return dir;
    throw e;
  }
  log(`generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return dir;
}
