/**
 * Paired (pix2pix) datasets in the layouts of junyanz/pytorch-CycleGAN-and-pix2pix:
 *  - aligned: `<root>/<split>/*.{jpg,png}`, each image A|B side by side (A left, B right);
 *  - two folders with matching file names (matched by name without extension): `<root>/<split>/A` + `<root>/<split>/B`,
 *    `<root>/A/<split>` + `<root>/B/<split>` (the reference's combine_A_and_B input), or `<root>/A` + `<root>/B`.
 * Augmentation as the reference: resize to loadSize x loadSize, random crop cropSize, random horizontal flip,
 * with the same parameters for A and B.
 */
import { basename, extname, join, resolve } from 'node:path';
import type { Rng } from '@gantry/core';
import { check, cropImage, GantryError, imagesToTensor, type RawImage, readImageSize } from '@gantry/core';
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

export type Direction = 'AtoB' | 'BtoA';

export interface AlignedOptions extends TransformOptions {
  /** Sub-folder to read (default 'train'). */
  split?: string;
  /** 'AtoB' (default): `a` = A (left half), `b` = B. 'BtoA' swaps them. */
  direction?: Direction;
}

/** One example: a single A|B file, or an A file and a B file. */
export type PairSource = { ab: string } | { a: string; b: string };

export interface PairBatch {
  /** Input images, float32 [N, cropSize, cropSize, C] in [-1, 1]. */
  a: Tensor4D;
  /** Target images, same shape. */
  b: Tensor4D;
  /** The files each example came from. */
  sources: PairSource[];
}

const stem = (f: string) => basename(f, extname(f));

async function matchFolders(
  dirA: string,
  dirB: string,
  root: string,
): Promise<{ pairs: PairSource[]; skipped: number }> {
  const [la, lb] = await Promise.all([
    listImages(dirA, root, 'the A images of a paired dataset'),
    listImages(dirB, root, 'the B images of a paired dataset'),
  ]);
  const byStem = new Map(lb.files.map((f) => [stem(f), f]));
  const pairs: PairSource[] = [];
  const missing: string[] = [];
  for (const a of la.files) {
    const b = byStem.get(stem(a));
    if (b === undefined) missing.push(basename(a));
    else {
      pairs.push({ a, b });
      byStem.delete(stem(a));
    }
  }
  if (missing.length) {
    throw new GantryError(
      `${dirB}: no B image for ${missing.length} A image${missing.length > 1 ? 's' : ''} (first: ${missing[0]}); A and B folders must hold files with the same names`,
    );
  }
  if (byStem.size) {
    const first = [...byStem.values()][0]!;
    throw new GantryError(
      `${dirA}: no A image for ${byStem.size} B image${byStem.size > 1 ? 's' : ''} (first: ${basename(first)}); A and B folders must hold files with the same names`,
    );
  }
  return { pairs, skipped: la.skipped + lb.skipped };
}

export class AlignedDataset {
  private constructor(
    readonly root: string,
    readonly split: string,
    readonly direction: Direction,
    readonly layout: 'aligned' | 'folders',
    readonly sources: readonly PairSource[],
    readonly transform: Transform,
    /** Non-image or unsafe entries that were skipped while listing. */
    readonly skipped: number,
  ) {}

  /** Finds the layout under `root` and lists the examples of `opts.split` (default 'train'). */
  static async open(root: string, opts: AlignedOptions = {}): Promise<AlignedDataset> {
    const split = opts.split ?? 'train';
    const direction = opts.direction ?? 'AtoB';
    check(direction === 'AtoB' || direction === 'BtoA', `direction must be 'AtoB' or 'BtoA', got '${direction}'`);
    check(
      split !== '' && !split.includes('/') && !split.includes('\\') && split !== '..' && split !== '.',
      `split must be a plain folder name, got '${split}'`,
    );
    const t = resolveTransform(opts, split);
    const r = resolve(root);
    if (!(await isDir(r)))
      throw new GantryError(`${root}: dataset folder not found (expected a pix2pix dataset with ${split}/ inside)`);
    const splitDir = join(r, split);
    const expected = `pix2pix layout ${root}/${split}/*.jpg with A|B side by side, or ${root}/${split}/A and ${root}/${split}/B`;

    if (await isDir(splitDir)) {
      const [hasA, hasB] = await Promise.all([isDir(join(splitDir, 'A')), isDir(join(splitDir, 'B'))]);
      if (hasA && hasB) {
        const { pairs, skipped } = await matchFolders(join(splitDir, 'A'), join(splitDir, 'B'), r);
        return new AlignedDataset(r, split, direction, 'folders', pairs, t, skipped);
      }
      if (hasA !== hasB)
        throw new GantryError(
          `${splitDir}: has ${hasA ? 'A/' : 'B/'} but no ${hasA ? 'B/' : 'A/'} (expected ${expected})`,
        );
      const { files, skipped } = await listImages(splitDir, r, `A|B images side by side (${expected})`);
      const { width } = await readImageSize(files[0]!);
      check(
        width % 2 === 0,
        `${files[0]}: width ${width} is odd; aligned A|B images must be two equal halves side by side`,
      );
      return new AlignedDataset(
        r,
        split,
        direction,
        'aligned',
        files.map((ab) => ({ ab })),
        t,
        skipped,
      );
    }
    for (const [dirA, dirB] of [
      [join(r, 'A', split), join(r, 'B', split)],
      [join(r, 'A'), join(r, 'B')],
    ] as const) {
      if ((await isDir(dirA)) && (await isDir(dirB))) {
        const { pairs, skipped } = await matchFolders(dirA, dirB, r);
        return new AlignedDataset(r, split, direction, 'folders', pairs, t, skipped);
      }
    }
    if ((await isDir(join(r, `${split}A`))) || (await isDir(join(r, 'trainA')))) {
      throw new GantryError(
        `${root}: looks like an unaligned (CycleGAN) dataset with trainA/trainB; expected ${expected} (use UnalignedDataset)`,
      );
    }
    throw new GantryError(`${root}: no ${split}/ folder (expected ${expected})`);
  }

  get length(): number {
    return this.sources.length;
  }

  /** Loads A and B of one example, untransformed (A = left half / A file). */
  async loadPair(i: number): Promise<{ A: RawImage; B: RawImage; files: string[] }> {
    checkIndices([i], this.length, 'AlignedDataset');
    const src = this.sources[i]!;
    if ('ab' in src) {
      const ab = await loadImage(src.ab, this.transform);
      check(
        ab.width % 2 === 0,
        `${src.ab}: width ${ab.width} is odd; aligned A|B images must be two equal halves side by side`,
      );
      const w = ab.width / 2;
      return { A: cropImage(ab, 0, 0, w, ab.height), B: cropImage(ab, w, 0, w, ab.height), files: [src.ab, src.ab] };
    }
    const [A, B] = await Promise.all([loadImage(src.a, this.transform), loadImage(src.b, this.transform)]);
    if (this.transform.preprocess !== 'resize_and_crop') {
      check(
        A.width === B.width && A.height === B.height,
        `${src.b}: ${B.width}x${B.height} differs from its A image ${src.a} (${A.width}x${A.height}); without resizing A and B must have one size`,
      );
    }
    return { A, B, files: [src.a, src.b] };
  }

  /**
   * Loads, augments and stacks examples. Random crop offsets and flips are drawn from `rng` in index order
   * (3 draws per example), and applied identically to A and B.
   */
  async batch(indices: ArrayLike<number>, rng: Rng): Promise<PairBatch> {
    checkIndices(indices, this.length, 'AlignedDataset');
    const idx = Array.from(indices);
    const pairs = await Promise.all(idx.map((i) => this.loadPair(i)));
    const params = pairs.map((p) => drawParams(this.transform, p.A.width, p.A.height, rng));
    const out = await Promise.all(
      pairs.map(async (p, k) => {
        const [A, B] = await Promise.all([
          applyTransform(p.A, this.transform, params[k]!, p.files[0]!),
          applyTransform(p.B, this.transform, params[k]!, p.files[1]!),
        ]);
        return this.direction === 'AtoB' ? { a: A, b: B } : { a: B, b: A };
      }),
    );
    const aImgs = out.map((o) => o.a);
    const bImgs = out.map((o) => o.b);
    const files = pairs.map((p) => p.files[0]!);
    checkSameSize(aImgs, files);
    checkSameSize(bImgs, files);
    return { a: imagesToTensor(aImgs), b: imagesToTensor(bImgs), sources: idx.map((i) => this.sources[i]!) };
  }
}
