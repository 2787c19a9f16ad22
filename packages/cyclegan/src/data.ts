/** Loading whole images for samples and evaluation (training batches come from @gantry/datasets' UnalignedDataset). */
import * as path from 'node:path';
import { GantryError, imagesToTensor, readImage, resizeImage } from '@gantry/core';
import { ensureSceneDataset, isDir, UnalignedDataset } from '@gantry/datasets';
import type * as tf from '@tensorflow/tfjs';

/** Reads `files`, resized (bicubic, whole image, no crop) to size×size, as [N, size, size, C] in [-1, 1]. */
export async function loadImageFiles(
  files: readonly string[],
  size: number,
  channels: 1 | 3 = 3,
): Promise<tf.Tensor4D> {
  const imgs = await Promise.all(files.map(async (f) => resizeImage(await readImage(f, { channels }), size, size)));
  return imagesToTensor(imgs) as tf.Tensor4D;
}

/** The test split of an unaligned dataset (testA/testB), whole images at `size`; at most `limit` per domain. */
export async function loadTestSplit(
  root: string,
  size: number,
  channels: 1 | 3 = 3,
  limit = Number.POSITIVE_INFINITY,
): Promise<{ a: tf.Tensor4D; b: tf.Tensor4D; root: string }> {
  if (!(await isDir(path.join(root, 'testA'))) || !(await isDir(path.join(root, 'testB')))) {
    throw new GantryError(`${root}: no test split (expected ${root}/testA and ${root}/testB)`);
  }
  const ds = await UnalignedDataset.open(root, { split: 'test', cropSize: size, channels });
  const a = await loadImageFiles(ds.filesA.slice(0, limit), size, channels);
  const b = await loadImageFiles(ds.filesB.slice(0, limit), size, channels);
  return { a, b, root };
}

/** The default dataset: procedural day (A) / night (B) scenes, generated once under <repo>/data. */
export function defaultSceneDataset(size: number, count: number, log?: (l: string) => void): Promise<string> {
  return ensureSceneDataset({ layout: 'unaligned', size, count, log });
}
