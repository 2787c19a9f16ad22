/**
 * Unpaired (CycleGAN) datasets in the layout of junyanz/pytorch-CycleGAN-and-pix2pix:
 * `<root>/trainA`, `<root>/trainB`, `<root>/testA`, `<root>/testB` (any counts). Like the reference's
 * UnalignedDataset, example i is A[i % |A|] with a B drawn at random (or B[i % |B|] with serialBatches), and the
 * length is max(|A|, |B|). A and B get independent random crops and flips.
 */
import { join, resolve } from 'node:path';
import { check, GantryError, imagesToTensor, type Rng, randInt } from '@gantry/core';
import {
  applyTransform,
  checkIndices,
  checkSameSize,
  drawParams,
  isDir,
  listImages,
  loadImage,
  resolveTransform,
  type Transform,
  type TransformOptions,
} from './folder.js';
import type { Tensor4D } from './types.js';

export interface UnalignedOptions extends TransformOptions {
  /** 'train' (default) reads trainA/trainB, 'test' reads testA/testB. */
  split?: string;
  /** Take B[i % |B|] instead of a random B (the reference's --serial_batches). */
  serialBatches?: boolean;
}

export interface UnpairedBatch {
  /** float32 [N, cropSize, cropSize, C] in [-1, 1]. */
  a: Tensor4D;
  b: Tensor4D;
  filesA: string[];
  filesB: string[];
}

export class UnalignedDataset {
  private constructor(
    readonly root: string,
    readonly split: string,
    readonly filesA: readonly string[],
    readonly filesB: readonly string[],
    readonly transform: Transform,
    readonly serialBatches: boolean,
    /** Non-image or unsafe entries that were skipped while listing. */
    readonly skipped: number,
  ) {}

  static async open(root: string, opts: UnalignedOptions = {}): Promise<UnalignedDataset> {
    const split = opts.split ?? 'train';
    check(
      split !== '' && !split.includes('/') && !split.includes('\\') && split !== '..' && split !== '.',
      `split must be a plain folder name, got '${split}'`,
    );
    const t = resolveTransform(opts, split);
    const r = resolve(root);
    if (!(await isDir(r)))
      throw new GantryError(
        `${root}: dataset folder not found (expected a CycleGAN dataset with ${split}A/ and ${split}B/ inside)`,
      );
    const dirA = join(r, `${split}A`);
    const dirB = join(r, `${split}B`);
    const expected = `CycleGAN layout ${root}/${split}A and ${root}/${split}B`;
    for (const d of [dirA, dirB]) {
      if (!(await isDir(d))) {
        const hint = (await isDir(join(r, split)))
          ? `; ${root}/${split}/ looks like a paired pix2pix dataset (use AlignedDataset)`
          : '';
        throw new GantryError(`${d}: folder not found (expected ${expected}${hint})`);
      }
    }
    const [la, lb] = await Promise.all([
      listImages(dirA, r, `domain A images (${expected})`),
      listImages(dirB, r, `domain B images (${expected})`),
    ]);
    return new UnalignedDataset(r, split, la.files, lb.files, t, opts.serialBatches ?? false, la.skipped + lb.skipped);
  }

  /** max(|A|, |B|), as the reference. */
  get length(): number {
    return Math.max(this.filesA.length, this.filesB.length);
  }

  get sizeA(): number {
    return this.filesA.length;
  }

  get sizeB(): number {
    return this.filesB.length;
  }

  /**
   * Loads and augments examples. Draws from `rng`: first the B index of every example (unless serialBatches),
   * then per example, in index order, A's crop/flip (3 draws) and B's crop/flip (3 draws).
   */
  async batch(indices: ArrayLike<number>, rng: Rng): Promise<UnpairedBatch> {
    checkIndices(indices, this.length, 'UnalignedDataset');
    const idx = Array.from(indices);
    const filesA = idx.map((i) => this.filesA[i % this.sizeA]!);
    const filesB = idx.map((i) =>
      this.serialBatches ? this.filesB[i % this.sizeB]! : this.filesB[randInt(rng, 0, this.sizeB - 1)]!,
    );
    const [rawA, rawB] = await Promise.all([
      Promise.all(filesA.map((f) => loadImage(f, this.transform))),
      Promise.all(filesB.map((f) => loadImage(f, this.transform))),
    ]);
    const params = idx.map((_, k) => [
      drawParams(this.transform, rawA[k]!.width, rawA[k]!.height, rng),
      drawParams(this.transform, rawB[k]!.width, rawB[k]!.height, rng),
    ]);
    const [imgsA, imgsB] = await Promise.all([
      Promise.all(rawA.map((im, k) => applyTransform(im, this.transform, params[k]![0]!, filesA[k]!))),
      Promise.all(rawB.map((im, k) => applyTransform(im, this.transform, params[k]![1]!, filesB[k]!))),
    ]);
    checkSameSize(imgsA, filesA);
    checkSameSize(imgsB, filesB);
    return { a: imagesToTensor(imgsA), b: imagesToTensor(imgsB), filesA, filesB };
  }
}
