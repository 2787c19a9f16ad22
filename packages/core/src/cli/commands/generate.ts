/** `generate` (noise → image variants): PNGs and grid.png from the trained generator. */
import { initBackend } from '../../backend/index.js';
import { GantryError } from '../../errors.js';
import { writeLatentSamples } from '../../runs/generate.js';
import { userPath } from '../../runs/run.js';
import type { LatentInference } from '../../variant.js';
import { flag, MAX_GENERATE_COUNT, readFlags, yargsOptions } from '../flags.js';
import { backendOf, type Command, checkpointFlag } from './common.js';
import { loadTrained, type TrainedOf } from './trained.js';

export function generateCommand<C extends object>(def: TrainedOf<C>, inference: LatentInference<C>): Command {
  const flags = {
    count: flag.positiveIntUpTo(
      'images to write (per label for a conditional model)',
      MAX_GENERATE_COUNT,
      'one PNG file each',
      { default: 64 },
    ),
    out: flag.string('output directory', { default: 'samples' }),
    seed: flag.nonNegativeInt('noise seed (same seed, same images)', { default: 0 }),
    ...checkpointFlag(def.name),
    label: flag.string('class(es) to draw: a class, a comma list (0,3,9) or all (conditional models)'),
  };
  return {
    name: 'generate',
    describe: 'write generated images as PNGs plus grid.png',
    options: yargsOptions(flags),
    async run(a) {
      const v = readFlags(flags, a);
      await initBackend({ backend: backendOf(a) });
      const trained = await loadTrained(def, v.checkpoint);
      const generator = await trained.loadGenerator();
      const classes = inference.classNames?.(trained.config);
      if (v.label !== undefined && !classes)
        throw new GantryError(`--label: ${trained.checkpoint} is not a conditional model`);
      const written = await writeLatentSamples(generator, {
        out: userPath(v.out!),
        count: v.count,
        seed: v.seed,
        latentDim: inference.latentDim(trained.config),
        classes,
        label: v.label ?? 'all',
      });
      console.log(`wrote ${written} images and grid.png to ${userPath(v.out!)}`);
    },
  };
}
