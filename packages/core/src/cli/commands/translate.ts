/**
 * `translate` (image → image variants): an image or a folder through a trained generator, at the photo's own
 * resolution by default. Checks --input and the native-resolution flags before anything slow, starts the backend,
 * loads the generator, and hands the files to cli/translate.ts.
 */
import * as fs from 'node:fs';
import { initBackend } from '../../backend/index.js';
import { GantryError } from '../../errors.js';
import { imageTranslator } from '../../nn/fully-conv.js';
import { measureBytesPerPixel } from '../../nn/tiles.js';
import { userPath } from '../../runs/run.js';
import type { TranslationInference } from '../../variant.js';
import { type Flag, flag, readFlags, yargsOptions } from '../flags.js';
import {
  checkNativeOptions,
  DEFAULT_MAX_MEGAPIXELS,
  type TranslateFn,
  type TranslateSummary,
  translateCommand as translateFiles,
} from '../translate.js';
import { backendOf, type Command, checkpointFlag } from './common.js';
import { loadTrained, type TrainedOf } from './trained.js';

/** --tile: auto, 0 (never) or a tile side in pixels. */
const tileFlag: Flag<number | 'auto'> = {
  describe:
    'native resolution: tile side in pixels for photos too large for one pass; auto: tile only above --max-memory; 0: never',
  type: 'string',
  default: 'auto',
  parse(raw, name) {
    const t = String(raw).trim();
    if (t === 'auto') return 'auto';
    if (!/^\d+$/.test(t)) throw new GantryError(`--${name}: expected auto, 0 or a tile side in pixels, got '${raw}'`);
    return Number(t);
  },
};

/** The flags of every translate command (the files and how they go through the network). */
export const TRANSLATE_FLAGS = {
  input: flag.string('an image file (JPEG, PNG, WebP, GIF, TIFF, AVIF; any size) or a folder of them', {
    aliases: ['i'],
    required: true,
    transient: true,
  }),
  output: flag.string(
    'output file (.png, .jpg or .webp) for a single input, or a folder (created if needed; names and formats follow the inputs)',
    { aliases: ['o'], required: true, transient: true },
  ),
  quality: flag.number(
    'JPEG/WebP quality (1-100)',
    (n) => Number.isInteger(n) && n >= 1 && n <= 100,
    'an integer in 1..100',
    { default: 92 },
  ),
  maxMegapixels: flag.positiveNumber(
    'refuse inputs larger than this many megapixels (width × height / 10⁶), checked before decoding',
    { default: DEFAULT_MAX_MEGAPIXELS },
  ),
  resolution: flag.choice(
    ['native', 'model'] as const,
    "native: run on the photo's own pixels (padded to the network's stride multiple); model: resize to the model's size and back",
    { default: 'native' },
  ),
  tile: tileFlag,
  tileOverlap: flag.number(
    'overlap of adjacent tiles in pixels (default: a quarter of the tile)',
    (n) => Number.isInteger(n) && n >= 1,
    'a positive number of pixels',
  ),
  maxMemory: flag.number(
    'MB one forward pass may use before --tile auto cuts the photo into tiles (default: a quarter of RAM, at most 1024)',
    (n) => Number.isFinite(n) && n > 0,
    'a positive number of MB',
  ),
  eval: flag.boolean(
    "batch norm with its running statistics and no dropout (the reference's --eval); --no-eval: the image's own statistics and dropout on, as the reference tests by default",
  ),
};

/** What a translate command loads: the generator as a TranslateFn and the size it runs at. */
export interface LoadedTranslator {
  fn: TranslateFn;
  modelSize: number;
  inChannels: 1 | 3;
  /** Native resolution: the multiple height and width must be (the generator's stride multiple). */
  multiple?: number;
}

/**
 * The body of a translate command (flags: TRANSLATE_FLAGS): checks the flags and --input before anything slow,
 * starts the backend, loads the generator with `load` (told whether --eval was given), translates.
 */
export async function translateFromArgs(
  a: Record<string, unknown>,
  backend: string | undefined,
  load: (o: { evalMode: boolean }) => Promise<LoadedTranslator>,
  defaults: { evalMode?: boolean } = {},
): Promise<TranslateSummary> {
  const v = readFlags(TRANSLATE_FLAGS, a);
  const input = v.input!;
  if (!fs.existsSync(userPath(input))) throw new GantryError(`--input ${input}: no such file or folder`);
  const native = {
    resolution: v.resolution,
    tile: v.tile,
    tileOverlap: v.tileOverlap,
    maxMemory: v.maxMemory === undefined ? undefined : v.maxMemory * 1024 * 1024,
  };
  checkNativeOptions(native);
  await initBackend({ backend });
  const { fn, modelSize, inChannels, multiple } = await load({ evalMode: v.eval ?? defaults.evalMode ?? false });
  const m = multiple ?? 1;
  // One probe per command (it runs the generator once on a small image), only if some photo needs the estimate.
  let perPixel: Promise<number> | undefined;
  return translateFiles(fn, {
    input,
    output: v.output!,
    modelSize,
    inChannels,
    quality: v.quality,
    maxMegapixels: v.maxMegapixels,
    ...native,
    multiple: m,
    bytesPerPixel: () => (perPixel ??= measureBytesPerPixel(fn, m, inChannels)),
  });
}

export function translateCommand<C extends object>(def: TrainedOf<C>, inference: TranslationInference<C>): Command {
  const twoWay = (c: C) => inference.generators(c).BtoA !== undefined;
  // --direction only where the variant has a generator each way (a one-generator model translates A → B).
  const flags = {
    ...checkpointFlag(def.name),
    ...(inference.twoWay
      ? {
          direction: flag.choice(['AtoB', 'BtoA'] as const, 'AtoB: the A → B generator, BtoA: B → A', {
            default: 'AtoB',
          }),
        }
      : {}),
  };
  return {
    name: 'translate',
    describe:
      "translate an image or a folder with a trained generator, at the photo's own resolution (--resolution model: resized to the model's size and back); the output has the input's size",
    options: yargsOptions({ ...TRANSLATE_FLAGS, ...flags }),
    async run(a) {
      const v = readFlags(flags, a) as { checkpoint?: string; direction?: 'AtoB' | 'BtoA' };
      await translateFromArgs(a, backendOf(a), async ({ evalMode }) => {
        const trained = await loadTrained(def, v.checkpoint);
        const nets = inference.generators(trained.config);
        if (v.direction === 'BtoA' && !twoWay(trained.config))
          throw new GantryError(`--direction BtoA: ${trained.checkpoint} has one generator (A → B)`);
        const t = await imageTranslator(await trained.load(v.direction === 'BtoA' ? nets.BtoA! : nets.AtoB), evalMode);
        return {
          fn: t.fn,
          multiple: t.multiple,
          modelSize: inference.cropSize(trained.config),
          inChannels: inference.channels(trained.config),
        };
      });
    },
  };
}
