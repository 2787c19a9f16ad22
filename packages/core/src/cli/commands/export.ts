/** `export`: the generator(s) in the TF.js layers format with metadata.json (for the browser), or as ONNX. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend/index.js';
import { GantryError } from '../../errors.js';
import { exportOnnxModels, onnxFileNames } from '../../onnx/export.js';
import { exportModels as exportTfjs } from '../../runs/export.js';
import { userPath } from '../../runs/run.js';
import type { LatentInference, TranslationInference } from '../../variant.js';
import { flag, readFlags, yargsOptions } from '../flags.js';
import { backendOf, type Command, checkpointFlag } from './common.js';
import { loadTrained, type TrainedOf } from './trained.js';

export function exportCommand<C extends object>(
  def: TrainedOf<C>,
  inference: LatentInference<C> | TranslationInference<C>,
): Command {
  const flags = {
    ...checkpointFlag(def.name),
    out: flag.string('output directory (tfjs: new or empty, or --force), or the .onnx file (onnx)', {
      required: true,
    }),
    force: flag.boolean('replace the content of a non-empty --out (or an existing .onnx file)', {
      default: false,
      transient: true,
    }),
    format: flag.choice(['tfjs', 'onnx'] as const, 'tfjs: TF.js layers format; onnx: ONNX (docs/onnx.md)', {
      default: 'tfjs',
    }),
    eval: flag.boolean("onnx, image-to-image: running batch-norm statistics, no dropout (translate's --eval)"),
  };
  return {
    name: 'export',
    describe: 'write the generator(s) in the TF.js layers format with metadata.json (for the browser), or as ONNX',
    options: yargsOptions(flags),
    async run(a) {
      const v = readFlags(flags, a);
      const dir = userPath(v.out!);
      if (v.format === 'onnx')
        onnxFileNames(dir, ['']); // checks the name before anything slow
      else if (v.eval !== undefined) throw new GantryError('--eval: only with --format onnx');
      await initBackend({ backend: backendOf(a) });
      const trained = await loadTrained(def, v.checkpoint);
      const c = trained.config;
      const common = { variant: def.name, checkpoint: trained.checkpoint };
      let onnxFiles: string[] | undefined;
      let tfjsFiles = 'model.json, weights.bin';
      const write = async (models: Record<string, tf.LayersModel>, meta: Record<string, unknown>) => {
        if (v.format === 'onnx')
          onnxFiles = await exportOnnxModels(dir, models, meta, { evalMode: v.eval, force: v.force });
        else await exportTfjs(dir, models, meta, { force: v.force });
      };
      if (inference.kind === 'latent') {
        const classes = inference.classNames?.(c);
        await write(
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
        const generators = inference.generators(c);
        // A CycleGAN imported from one .pth has only G_A: export that one.
        const hasBtoA = (n?: string) => n && fs.existsSync(path.join(trained.checkpoint, n, 'model.json'));
        const nets = { ...generators, BtoA: hasBtoA(generators.BtoA) ? generators.BtoA : undefined };
        if (nets.BtoA) tfjsFiles = 'G_A/, G_B/';
        const models: Record<string, tf.LayersModel> = nets.BtoA
          ? { G_A: await trained.load(nets.AtoB), G_B: await trained.load(nets.BtoA) }
          : { '': await trained.load(nets.AtoB) };
        await write(models, {
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
      if (onnxFiles) console.log(`exported ${def.name} to ${onnxFiles.join(' and ')} (ONNX)`);
      else console.log(`exported ${def.name} to ${dir} (${tfjsFiles}, metadata.json)`);
    },
  };
}
