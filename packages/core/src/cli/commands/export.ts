/** `export`: the generator(s) in the TF.js layers format and metadata.json, for the browser. */
import type * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend/index.js';
import { exportModels } from '../../runs/export.js';
import { userPath } from '../../runs/run.js';
import type { LatentInference, TranslationInference } from '../../variant.js';
import { flag, readFlags, yargsOptions } from '../flags.js';
import { backendOf, type Command, checkpointFlag } from './common.js';
import { loadTrained, type TrainedOf } from './trained.js';

export function exportCommand<C extends object>(
  def: TrainedOf<C>,
  inference: LatentInference<C> | TranslationInference<C>,
): Command {
  const flags = { ...checkpointFlag(def.name), out: flag.string('output directory', { required: true }) };
  return {
    name: 'export',
    describe: 'write the generator(s) (TF.js layers format) and metadata.json for the browser',
    options: yargsOptions(flags),
    async run(a) {
      const v = readFlags(flags, a);
      const dir = userPath(v.out!);
      await initBackend({ backend: backendOf(a) });
      const trained = await loadTrained(def, v.checkpoint);
      const c = trained.config;
      const common = { variant: def.name, checkpoint: trained.checkpoint };
      if (inference.kind === 'latent') {
        const classes = inference.classNames?.(c);
        await exportModels(
          dir,
          { '': await trained.loadGenerator() },
          {
            ...common,
            kind: 'latent',
            imageSize: inference.imageSize(c),
            channels: inference.channels(c),
            latentDim: inference.latentDim(c),
            labels: classes ?? null,
            normalisation: 'tanh: pixel = (value + 1) * 127.5',
          },
        );
      } else {
        const nets = inference.generators(c);
        const models: Record<string, tf.LayersModel> = nets.BtoA
          ? { G_A: await trained.load(nets.AtoB), G_B: await trained.load(nets.BtoA) }
          : { '': await trained.load(nets.AtoB) };
        await exportModels(dir, models, {
          ...common,
          kind: 'image-to-image',
          imageSize: inference.cropSize(c),
          channels: inference.channels(c),
          ...(nets.BtoA ? { generators: { G_A: 'A → B', G_B: 'B → A' } } : {}),
          ...inference.metadata?.(c),
          normalisation: 'input: pixel / 127.5 - 1; output: pixel = (value + 1) * 127.5',
          inference:
            "translate's default: batch norm on the image's own statistics, dropout on (the reference's test mode); --eval: model.predict (moving statistics, no dropout)",
        });
      }
      const files =
        inference.kind === 'latent' || !inference.generators(c).BtoA ? 'model.json, weights.bin' : 'G_A/, G_B/';
      console.log(`exported ${def.name} to ${dir} (${files}, metadata.json)`);
    },
  };
}
