/**
 * The variant definition and the commands core makes from it: a toy sixth variant (a tiny latent GAN on random
 * 8×8 images) is one definition, and gets train, resume, generate, export and runs; a seventh, ACGAN-style (D
 * predicts the class, a config key renamed since its older checkpoints), needs no edit in core either.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { initBackend } from './backend/index.js';
import { variantCommands } from './cli/commands/index.js';
import { resolveTrainValues } from './cli/commands/train.js';
import { deprecatedFlagsUsed, type FlagSpecs, flag, readFlags, yargsOptions } from './cli/flags.js';
import { GantryError } from './errors.js';
import { denseBlock } from './nn/networks.js';
import { loadModel, migrateKeys, readCheckpointState, registerKeyMigrations } from './runs/checkpoint.js';
import { parseLabels } from './runs/generate.js';
import { readRunInfo } from './runs/run.js';
import { LatentGanTask } from './train/latent-gan.js';
import type { VariantDefinition } from './variant.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-variant-'));
const savedRuns = process.env.GANTRY_RUNS;
beforeAll(async () => {
  process.env.GANTRY_RUNS = path.join(tmp, 'runs');
  await initBackend({ backend: 'wasm', log: () => {} });
});
afterAll(() => {
  if (savedRuns === undefined) delete process.env.GANTRY_RUNS;
  else process.env.GANTRY_RUNS = savedRuns;
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('flags', () => {
  const specs = {
    width: flag.positiveInt('width', { default: 8, deprecated: ['old-width'] }),
    mode: flag.choice(['a', 'b'] as const, 'mode'),
    rate: flag.range('rate', 0, 1),
  };

  it('take the value given, then the fallbacks in order, then the default', () => {
    expect(readFlags(specs, {})).toEqual({ width: 8, mode: undefined, rate: undefined });
    expect(readFlags(specs, { width: 3 }, { width: 5, mode: 'b' })).toEqual({ width: 3, mode: 'b', rate: undefined });
    expect(readFlags(specs, {}, { rate: 0.5 }, { rate: 0.9, width: 2 })).toEqual({
      width: 2,
      mode: undefined,
      rate: 0.5,
    });
  });

  it('check every value with a one-line error naming the flag', () => {
    expect(() => readFlags(specs, { width: 'abc' })).toThrow(
      new GantryError("--width: expected a positive integer, got 'abc'"),
    );
    expect(() => readFlags(specs, { mode: 'c' })).toThrow(/--mode: expected one of a, b, got 'c'/);
    expect(() => readFlags(specs, { rate: 1 })).toThrow(/--rate: expected a number in \[0, 1\), got '1'/);
  });

  it('are named by their config key in kebab case, with deprecated names as aliases', () => {
    const o = yargsOptions({ ...specs, dLayers: flag.positiveInt('depth') });
    expect(Object.keys(o)).toEqual(['width', 'mode', 'rate', 'd-layers']);
    expect(o.width!.alias).toEqual(['old-width']);
    expect(deprecatedFlagsUsed(specs, ['train', '--old-width=3'])).toEqual([{ used: 'old-width', instead: 'width' }]);
    expect(deprecatedFlagsUsed(specs, ['train', '--width', '3'])).toEqual([]);
    // A flag whose values another took over (CycleGAN's --blocks → --net-g) warns under its own name.
    const replaced = { blocks: flag.positiveInt('blocks', { replacedBy: 'net-g' }) };
    expect(deprecatedFlagsUsed(replaced, ['train', '--blocks', '9'])).toEqual([{ used: 'blocks', instead: 'net-g' }]);
  });

  it("old checkpoints and runs are read under the new names, and get the keys added since, per variant's hooks", () => {
    registerKeyMigrations({
      name: 'renamer',
      renamedKeys: { size: 'cropSize' },
      addedKeys: { depth: (c) => (c.cropSize === 28 ? 2 : 3) },
    });
    expect(migrateKeys('renamer', { size: 64 })).toEqual({ cropSize: 64 });
    expect(migrateKeys('renamer', { size: 64, cropSize: 32 })).toEqual({ size: 64, cropSize: 32 });
    expect(migrateKeys('other', { size: 64 })).toEqual({ size: 64 });
    const state = (dir: string, variant: string, config: Record<string, unknown>) => {
      fs.mkdirSync(path.join(tmp, dir), { recursive: true });
      fs.writeFileSync(path.join(tmp, dir, 'state.json'), JSON.stringify({ variant, step: 1, config }));
      return readCheckpointState(path.join(tmp, dir)).config;
    };
    expect(state('old-28', 'renamer', { size: 28 })).toEqual({ cropSize: 28, depth: 2 });
    expect(state('new-28', 'renamer', { cropSize: 28, depth: 5 })).toEqual({ cropSize: 28, depth: 5 });
    expect(state('other-28', 'other', { size: 28 })).toEqual({ size: 28 });
  });

  it('--label takes class names or indices', () => {
    expect(parseLabels('all', ['cat', 'dog'])).toEqual([0, 1]);
    expect(parseLabels('dog,0', ['cat', 'dog'])).toEqual([1, 0]);
    expect(() => parseLabels('cow', ['cat', 'dog'])).toThrow(/--label: 'cow' is not a class \(expected cat, dog/);
    expect(() => parseLabels('12', ['0', '1', '2'])).toThrow(/expected 0-2/);
  });
});

/** A sixth variant in one definition: a dense G and D on random 8×8 images. */
const toyFlags = {
  latentDim: flag.positiveInt('size of z', { default: 4 }),
  width: flag.positiveInt('hidden units', { deprecated: ['hidden'] }),
};
interface ToyConfig {
  latentDim: number;
  width: number;
}
const toy: VariantDefinition<typeof toyFlags, ToyConfig, { length: number; unit: string }> = {
  name: 'toy',
  title: 'a test variant',
  trainDescribe: 'random 8×8 images',
  flags: toyFlags,
  presets: {
    small: {
      describe: 'width 4',
      width: 4,
      constantEpochs: 1,
      decayEpochs: 1,
      minSteps: 10,
      batchSize: 4,
      lr: 1e-3,
      loss: 'bce',
      sampleEvery: 0,
      checkpointEvery: 2,
    },
    wide: {
      describe: 'width 16',
      width: 16,
      constantEpochs: 2,
      decayEpochs: 0,
      batchSize: 8,
      lr: 1e-3,
      loss: 'lsgan',
      sampleEvery: 0,
      checkpointEvery: 0,
    },
  },
  config: (v) => ({ latentDim: v.latentDim, width: v.width }),
  mustMatch: ['latentDim', 'width'],
  openData: async () => ({ length: 16, unit: 'images' }),
  createTask: (t) => {
    const net = (inputs: number, outputs: number, act: 'tanh' | 'none', shape: number[]) => {
      const x = tf.input({ shape: [inputs] });
      const h = denseBlock(denseBlock(x, t.config.width, 'leaky'), outputs, act);
      return tf.model({ inputs: x, outputs: tf.layers.reshape({ targetShape: shape }).apply(h) as tf.SymbolicTensor });
    };
    const generator = net(t.config.latentDim, 64, 'tanh', [8, 8, 1]);
    const d = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 1] }), tf.layers.dense({ units: 1 })] });
    return new LatentGanTask({
      variant: 'toy',
      generator,
      discriminator: d,
      latentDim: t.config.latentDim,
      loss: t.loss,
      lr: t.lr,
      beta1: t.beta1,
      seed: t.seed,
      batchSize: t.batchSize,
      data: {
        count: 16,
        batch: (idx) => ({ x: tf.randomUniform([idx.length, 8, 8, 1], -1, 1), y: tf.zeros([idx.length], 'int32') }),
      },
      config: t.checkpointConfig,
      mustMatch: t.mustMatch,
    });
  },
  inference: { kind: 'latent', latentDim: (c) => c.latentDim, imageSize: () => 8, channels: () => 1 },
};

async function run<F extends FlagSpecs, C extends object>(
  def: VariantDefinition<F, C, { length: number; unit: string }>,
  ...argv: string[]
): Promise<string> {
  const out: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => out.push(a.join(' '));
  try {
    await variantCommands(
      def,
      argv,
    )(
      yargs(argv)
        .option('backend', { type: 'string' })
        .strict()
        .exitProcess(false)
        .fail((msg: string, e?: Error) => {
          throw e ?? new GantryError(msg);
        }),
    ).parseAsync();
  } finally {
    console.log = log;
    console.error = err;
  }
  return out.join('\n');
}

describe('a variant definition', () => {
  it('resolves flags over a resumed run over the preset over defaults, and checks the preset name', () => {
    expect(resolveTrainValues(toy, {}).config).toEqual({ latentDim: 4, width: 4 });
    const wide = resolveTrainValues(toy, { preset: 'wide', latentDim: 2 });
    expect(wide.config).toEqual({ latentDim: 2, width: 16 });
    expect([wide.train.batchSize, wide.train.loss]).toEqual([8, 'lsgan']);
    expect(resolveTrainValues(toy, { width: 7 }, { width: 9, latentDim: 3 }).config).toEqual({
      latentDim: 3,
      width: 7,
    });
    expect(() => resolveTrainValues(toy, { preset: 'huge' })).toThrow(
      /--preset: unknown preset 'huge' \(expected small or wide\)/,
    );
  });

  it('becomes train, resume, generate, export and runs commands', async () => {
    const runDir = path.join(tmp, 'runs', 'toy', 'a');
    await run(toy, 'train', '--steps', '2', '--out', runDir, '--no-progress', '--width', '6');
    const info = readRunInfo(runDir);
    expect(info.args).toMatchObject({ width: 6, latentDim: 4, preset: 'small', batchSize: 4, steps: 2 });
    expect(info.args).not.toHaveProperty('out');
    // Resuming keeps the run's values (width 6) and takes the new --steps.
    const resumed = await run(toy, 'train', '--resume', runDir, '--steps', '4', '--no-progress');
    expect(resumed).toMatch(/resumed from .*step-00000002 at step 2/);
    const state = readCheckpointState(path.join(runDir, 'checkpoints', 'step-00000004'));
    expect(state.config).toMatchObject({ width: 6, latentDim: 4, loss: 'bce', batchSize: 4 });
    expect(Object.keys(state.optimizers ?? {}).sort()).toEqual(['D', 'G']);

    const samples = path.join(tmp, 'samples');
    expect(await run(toy, 'generate', '--count', '7', '--out', samples)).toContain('wrote 7 images');
    expect(fs.readdirSync(samples).sort()).toEqual([...Array.from({ length: 7 }, (_, i) => `000${i}.png`), 'grid.png']);
    await expect(run(toy, 'generate', '--label', '3', '--out', samples)).rejects.toThrow(
      /--label: .* is not a conditional model/,
    );

    const web = path.join(tmp, 'web');
    await run(toy, 'export', '--out', web);
    expect(JSON.parse(fs.readFileSync(path.join(web, 'metadata.json'), 'utf8'))).toMatchObject({
      variant: 'toy',
      kind: 'latent',
      latentDim: 4,
      imageSize: 8,
    });
    expect(await run(toy, 'runs')).toMatch(/toy/);
  });

  it("trains the preset's epochs, but at least its minSteps unless --epochs or --steps is given", async () => {
    // 16 images in batches of 4: the preset's 2 epochs are 8 steps, below its floor of 10.
    const floored = path.join(tmp, 'runs', 'toy', 'floored');
    expect(await run(toy, 'train', '--out', floored, '--no-progress')).toMatch(
      /toy: 10 steps \(2\.50 epochs of 4; the default is at least 10 steps/,
    );
    expect(readRunInfo(floored).options).toMatchObject({ steps: 10 });
    const asked = path.join(tmp, 'runs', 'toy', 'asked');
    expect(await run(toy, 'train', '--epochs', '1', '--out', asked, '--no-progress')).toMatch(
      /toy: 4 steps \(1\.00 epochs/,
    );
  });

  it('refuses a bad flag before any work, and a deprecated name still works with a warning', async () => {
    await expect(run(toy, 'train', '--width', '0', '--out', path.join(tmp, 'bad'))).rejects.toThrow(
      /--width: expected a positive integer, got '0'/,
    );
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
    const old = path.join(tmp, 'runs', 'toy', 'old-name');
    expect(await run(toy, 'train', '--steps', '1', '--hidden', '5', '--out', old, '--no-progress')).toContain(
      'warning: --hidden is deprecated; use --width',
    );
    expect(readRunInfo(old).args).toMatchObject({ width: 5 });
  });
});

/**
 * A seventh variant, ACGAN-style (Odena et al. 2017), in one definition and no edit in core: G draws a requested
 * class, D gets only the image and predicts its class beside real/fake (an auxiliary classifier loss), and its
 * config key `classWeight` was `auxWeight` in older checkpoints and runs.
 */
const acganFlags = {
  classWeight: flag.nonNegativeNumber("weight of D's and G's class loss", { default: 1 }),
};
interface AcganConfig {
  classWeight: number;
  numClasses: number;
}
/** Two classes of 8×8 images: dark (0) and light (1), with a little noise. */
const twoClasses = {
  count: 16,
  batch: (idx: Int32Array) =>
    tf.tidy(() => {
      const y = tf.tensor1d(
        Array.from(idx, (i) => i % 2),
        'int32',
      );
      const level = tf.sub(tf.mul(tf.cast(y, 'float32'), 1.6), 0.8).reshape([-1, 1, 1, 1]);
      const x = tf.clipByValue(tf.add(level, tf.randomNormal([idx.length, 8, 8, 1], 0, 0.1)), -1, 1) as tf.Tensor4D;
      return { x, y };
    }),
};
const acgan: VariantDefinition<typeof acganFlags, AcganConfig, { length: number; unit: string }> = {
  name: 'acgan',
  title: 'a test variant whose D predicts the class',
  trainDescribe: 'dark and light 8×8 images',
  flags: acganFlags,
  presets: {
    tiny: {
      describe: 'tiny',
      constantEpochs: 1,
      decayEpochs: 0,
      batchSize: 4,
      lr: 1e-3,
      loss: 'bce',
      sampleEvery: 0,
      checkpointEvery: 2,
    },
  },
  config: (v) => ({ classWeight: v.classWeight, numClasses: 2 }),
  mustMatch: ['classWeight', 'numClasses'],
  renamedKeys: { auxWeight: 'classWeight' },
  openData: async () => ({ length: 16, unit: 'images' }),
  createTask: (t) => {
    const z = tf.input({ shape: [4] });
    const label = tf.input({ shape: [1], dtype: 'int32' });
    const embedded = tf.layers
      .flatten()
      .apply(tf.layers.embedding({ inputDim: t.config.numClasses, outputDim: 4 }).apply(label)) as tf.SymbolicTensor;
    const h = denseBlock(tf.layers.concatenate().apply([z, embedded]) as tf.SymbolicTensor, 64, 'tanh');
    const generator = tf.model({
      inputs: [z, label],
      outputs: tf.layers.reshape({ targetShape: [8, 8, 1] }).apply(h) as tf.SymbolicTensor,
    });
    const image = tf.input({ shape: [8, 8, 1] });
    const features = denseBlock(tf.layers.flatten().apply(image) as tf.SymbolicTensor, 8, 'leaky');
    const discriminator = tf.model({
      inputs: image,
      outputs: [denseBlock(features, 1, 'none'), denseBlock(features, t.config.numClasses, 'none')],
    });
    return new LatentGanTask({
      variant: 'acgan',
      generator,
      discriminator,
      latentDim: 4,
      numClasses: t.config.numClasses,
      labelToDiscriminator: false,
      auxClassifierWeight: t.config.classWeight,
      loss: t.loss,
      lr: t.lr,
      beta1: t.beta1,
      seed: t.seed,
      batchSize: t.batchSize,
      data: twoClasses,
      config: t.checkpointConfig,
      mustMatch: t.mustMatch,
    });
  },
  inference: {
    kind: 'latent',
    latentDim: () => 4,
    imageSize: () => 8,
    channels: () => 1,
    classNames: (c) => Array.from({ length: c.numClasses }, (_, i) => String(i)),
  },
};

describe('an ACGAN-style variant, added with no edit in core', () => {
  const cli = (...argv: string[]) => run(acgan, ...argv);

  it('trains with D predicting the class, and resumes an older run under the renamed key; generate draws by label', async () => {
    const runDir = path.join(tmp, 'runs', 'acgan', 'a');
    await cli('train', '--steps', '2', '--out', runDir, '--no-progress', '--class-weight', '0.5');
    const losses = fs
      .readFileSync(path.join(runDir, 'losses.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // The class loss is logged for D (on reals) and G (on fakes): D predicts the class.
    expect(losses.at(-1)).toHaveProperty('D_cls');
    expect(losses.at(-1)).toHaveProperty('G_cls');
    const first = path.join(runDir, 'checkpoints', 'step-00000002');
    const d = await loadModel(path.join(first, 'discriminator'));
    expect([d.inputs.length, d.outputs.length]).toEqual([1, 2]);
    d.dispose();

    // Make it an older run: its checkpoint and run.json say auxWeight.
    const stateFile = path.join(first, 'state.json');
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    state.config = { auxWeight: state.config.classWeight, numClasses: 2, loss: 'bce', batchSize: 4 };
    fs.writeFileSync(stateFile, JSON.stringify(state));
    const runFile = path.join(runDir, 'run.json');
    const info = JSON.parse(fs.readFileSync(runFile, 'utf8'));
    info.args = { ...info.args, auxWeight: info.args.classWeight };
    delete info.args.classWeight;
    fs.writeFileSync(runFile, JSON.stringify(info));
    expect(readCheckpointState(first).config).toMatchObject({ classWeight: 0.5 });

    const resumed = await cli('train', '--resume', runDir, '--steps', '4', '--no-progress');
    expect(resumed).toMatch(/resumed from .*step-00000002 at step 2/);
    expect(readCheckpointState(path.join(runDir, 'checkpoints', 'step-00000004')).config).toMatchObject({
      classWeight: 0.5,
      numClasses: 2,
    });
    const samples = path.join(tmp, 'acgan-samples');
    expect(await cli('generate', '--count', '2', '--label', '1', '--out', samples)).toContain('wrote 2 images');
  });
});

describe('core', () => {
  it('names no variant in its code: what differs between variants is in their definitions', () => {
    const root = path.dirname(new URL(import.meta.url).pathname);
    const sources = (fs.readdirSync(root, { recursive: true }) as string[]).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    );
    expect(sources.length).toBeGreaterThan(30);
    const named = sources.filter((f) =>
      /'(gan|dcgan|cgan|pix2pix|cyclegan)'/.test(fs.readFileSync(path.join(root, f), 'utf8')),
    );
    expect(named).toEqual([]);
  });
});
