/**
 * The shape of a variant, and the commands core makes from it.
 *
 * A variant package fills in one `VariantDefinition`: its flags (typed, named by their config keys), its presets,
 * how the flag values become its config, its data, its training task, how its trained generators are used
 * (noise → image, or image → image) and how it is evaluated. Core turns that into the app's commands — `train`,
 * `generate` or `translate`, `evaluate`, `export`, `runs` — and owns everything they share: flag parsing and
 * checking, presets, resume, the backend, run directories, checkpoints, loading trained models, exporting.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Argv, Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend } from './backend/index.js';
import {
  resolveCheckpoint,
  resolveResume,
  runCli,
  runTraining,
  type TrainSettings,
  translateFromArgs,
} from './cli/cli.js';
import {
  deprecatedFlagsUsed,
  type Flag,
  type FlagSpecs,
  type FlagValues,
  flag,
  MAX_BATCH_SIZE,
  MAX_GENERATE_COUNT,
  readFlags,
  yargsOptions,
} from './cli/flags.js';
import { translateOptions } from './cli/translate.js';
import { GantryError } from './errors.js';
import { imageTranslator } from './nn/fully-conv.js';
import { listRuns, runsTable } from './report/runs.js';
import { addedConfigKeys, latestCheckpoint, loadModel, migrateKeys, readCheckpointState } from './runs/checkpoint.js';
import { exportModels, saveEvaluation } from './runs/export.js';
import { writeLatentSamples } from './runs/generate.js';
import { type ArchKey, initArchitecture, initWeights, openInitSource } from './runs/init-from.js';
import { latestRun, readRunInfo, runsRoot, userPath } from './runs/run.js';
import { type AdversarialLoss, adversarialLoss, GAN_LOSSES } from './train/losses.js';
import { decayOverLast } from './train/schedules.js';
import type { GanTask } from './train/trainer.js';

/** Flags every command of every app has. */
export const COMMON_FLAGS = {
  backend: flag.string(
    'compute backend: node-gpu, webgpu, node, wasm or cpu; default: the first that starts, in that order (webgpu only on a hardware GPU adapter); env GANTRY_BACKEND',
    { transient: true },
  ),
};

/** Flags of every `train` command. Those without a default take the preset's value. */
export const TRAIN_FLAGS = {
  preset: flag.string("defaults for the flags below (see the variant's presets)"),
  epochs: flag.positiveNumber(
    'training epochs in all, fractions allowed (the last --decay-epochs of them decay the LR)',
  ),
  decayEpochs: flag.nonNegativeNumber('epochs of linear LR decay to zero at the end of the training', {
    deprecated: ['epochs-decay'],
  }),
  steps: flag.positiveInt('training steps (overrides --epochs)'),
  batchSize: flag.positiveIntUpTo('images per step', MAX_BATCH_SIZE, 'memory'),
  lr: flag.positiveNumber('Adam learning rate'),
  beta1: flag.range('Adam β1', 0, 1, { default: 0.5 }),
  loss: flag.choice(GAN_LOSSES, 'adversarial loss'),
  seed: flag.nonNegativeInt('random seed (weights, noise, data order)', { default: 42 }),
  out: flag.string('run directory (default: runs/<variant>/<time>)', { transient: true }),
  resume: flag.string('resume a run: a run directory, a checkpoint, or "latest"', { transient: true }),
  initFrom: flag.string(
    'fine-tune: start from the networks of a checkpoint, run or imported model (architecture from it; optimizers fresh, step 0)',
  ),
  sampleEvery: flag.nonNegativeInt('write a sample image every N steps (0: only at the end)'),
  checkpointEvery: flag.nonNegativeInt('checkpoint every N steps (0: only at the end)'),
  keep: flag.nonNegativeInt('keep the last K checkpoints (0: all)', { default: 3 }),
  nanPolicy: flag.choice(
    ['stop', 'rollback'] as const,
    'on a NaN/Inf loss: stop, or roll back to the last checkpoint with half the LR',
    {
      default: 'stop',
    },
  ),
  progress: flag.boolean('show a progress bar', { default: true, transient: true }),
};

export type TrainValues = FlagValues<typeof TRAIN_FLAGS>;

/** A preset: values for a variant's flags and the training schedule. The first preset is the default. */
export type Preset<F extends FlagSpecs> = Partial<FlagValues<F>> & {
  describe: string;
  /** Epochs at the base learning rate, then epochs of linear decay to zero. */
  constantEpochs: number;
  decayEpochs: number;
  /**
   * The fewest steps a default-length run makes (neither --epochs nor --steps given): counted in epochs, the
   * preset would give a small folder of images only a few steps.
   */
  minSteps?: number;
  batchSize: number;
  lr: number;
  loss: (typeof GAN_LOSSES)[number];
  sampleEvery: number;
  checkpointEvery: number;
};

/** What a variant's data gives core: its size (for the batch-size check) and where it lives (saved with the run). */
export interface VariantData {
  length: number;
  /** What one example is called in messages: 'digits', 'pairs', 'images'. */
  unit: string;
  /** The dataset folder, when there is one (saved in the checkpoint config for `evaluate`). */
  root?: string;
}

/** What `createTask` gets: the config, the data, the optimisation settings, and what the task saves. */
export interface TaskContext<C, D extends VariantData> {
  config: C;
  data: D;
  lr: number;
  beta1: number;
  loss: AdversarialLoss;
  seed: number;
  batchSize: number;
  /** The config stored in checkpoints (the variant's config plus the data root). */
  checkpointConfig: Record<string, unknown>;
  mustMatch: string[];
  log: (line: string) => void;
}

/** A trained model of this variant: its checkpoint and config, and a loader for its networks. */
export interface Trained<C> {
  checkpoint: string;
  /** The variant's config, with the dataset folder it was trained on. */
  config: C & { data?: string };
  load(net: string): Promise<tf.LayersModel>;
  /** The network that samples or translates (A → B): the first of the definition's `preferNets` it has. */
  loadGenerator(): Promise<tf.LayersModel>;
}

/** Noise → image variants (GAN, DCGAN, cGAN). */
export interface LatentInference<C> {
  kind: 'latent';
  latentDim(c: C): number;
  imageSize(c: C): number;
  channels(c: C): 1 | 3;
  /** Class names of a conditional model (labels are their indices); undefined for an unconditional one. */
  classNames?(c: C): string[] | undefined;
}

/** Image → image variants (pix2pix, CycleGAN). */
export interface TranslationInference<C> {
  kind: 'translation';
  /** The generator networks by direction; with two, `translate` has --direction. */
  generators(c: C): { AtoB: string; BtoA?: string };
  cropSize(c: C): number;
  channels(c: C): 1 | 3;
  /** Extra fields for metadata.json (domain names, direction). */
  metadata?(c: C): Record<string, unknown>;
}

export interface EvaluateCommand<C, E extends FlagSpecs> {
  describe: string;
  flags: E;
  /** Computes, prints and returns the figures (core saves them as evaluation.json). */
  run(
    trained: Trained<C>,
    values: FlagValues<E>,
    tools: { loadTrained(checkpoint: string | undefined): Promise<Trained<C>> },
  ): Promise<Record<string, unknown>>;
}

export interface VariantDefinition<
  F extends FlagSpecs,
  C extends object,
  D extends VariantData,
  E extends FlagSpecs = FlagSpecs,
> {
  /** Package, app and checkpoint name. */
  name: string;
  /** What it is, with its paper: the first line of `--help`. */
  title: string;
  /** What `train` trains on by default. */
  trainDescribe: string;
  flags: F;
  /** Named presets; the first is the default. */
  presets: Record<string, Preset<F>>;
  /** Flag values → the variant's config; checks combinations (one-line GantryError). */
  config(values: FlagValues<F>): C;
  /** Config keys a checkpoint must share to be resumed. */
  mustMatch: readonly (keyof C & string)[];
  openData(config: C, values: FlagValues<F>, log: (line: string) => void): Promise<D>;
  createTask(ctx: TaskContext<C, D>): GanTask;
  inference: LatentInference<C> | TranslationInference<C>;
  evaluate?: EvaluateCommand<C, E>;
  /** The networks `generate`/`export` prefer, in order (e.g. a weight average before G itself); default: generator. */
  preferNets?: string[];
  /** Among runs, those `generate`/`translate` may pick by default (e.g. not an L1-only baseline). */
  defaultRun?(config: C): boolean;
  /**
   * What `train --init-from` takes from the source's config: the architecture keys (`net`: only when the source holds
   * that network; `soft`: a default the flags may change, e.g. a fully convolutional network's crop size). Default:
   * `mustMatch`.
   */
  architecture?: readonly ArchKey[];
  /** Commands only this variant has (pix2pix's and CycleGAN's import-torch). */
  commands?: ExtraCommand[];
}

export interface ExtraCommand {
  name: string;
  describe: string;
  options: Record<string, Options>;
  run(args: Record<string, unknown>): Promise<unknown>;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry of definitions of any flags and config
export type AnyVariant = VariantDefinition<any, any, any, any>;

/** The values a run was started with (run.json), for a resume. */
function savedValues(runDir: string): Record<string, unknown> {
  if (!fs.existsSync(path.join(runDir, 'run.json'))) return {};
  const info = readRunInfo(runDir);
  return info.args && typeof info.args === 'object'
    ? migrateKeys(info.variant, info.args as Record<string, unknown>)
    : {};
}

/**
 * What a resumed run was started with: its run.json values, and from its checkpoint the config keys added since
 * (an older run.json lacks them; its checkpoint says which networks it built).
 */
function resumedValues(variant: string, resume: string): Record<string, unknown> {
  const { runDir, checkpoint } = resolveResume(variant, resume);
  const saved = savedValues(runDir);
  const config = readCheckpointState(checkpoint).config;
  for (const key of addedConfigKeys(variant)) if (saved[key] === undefined) saved[key] = config[key];
  return saved;
}

function withoutTransient(specs: FlagSpecs, values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([k, v]) => v !== undefined && !specs[k]?.transient));
}

/** Loads the trained model of `def` at `--checkpoint` (or the latest suitable run). */
export async function loadTrained<C extends object>(
  def: TrainedOf<C>,
  checkpointArg: string | undefined,
): Promise<Trained<C>> {
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

/** What loading a trained model needs of a definition. */
type TrainedOf<C> = { name: string; preferNets?: string[]; defaultRun?(config: C): boolean };

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

/**
 * The values a `train` command runs with: the flags given (`given`, parsed arguments with only the flags typed),
 * then a resumed run's values (`saved`), then the preset's, then each flag's default; and the config they make.
 */
export function resolveTrainValues<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
  given: Record<string, unknown>,
  saved: Record<string, unknown> = {},
) {
  const presetNames = Object.keys(def.presets);
  const merged: Record<string, unknown> = { ...saved };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) merged[k] = v;
  // --init-from: the source's architecture under the flags given (a resumed run has its weights already).
  const initFrom =
    typeof given.initFrom === 'string' && given.resume === undefined
      ? openInitSource(def.name, given.initFrom)
      : undefined;
  if (initFrom) {
    const keys = def.architecture ?? def.mustMatch.map((key) => ({ key }));
    for (const [k, v] of Object.entries(initArchitecture(initFrom, keys, merged)))
      if (merged[k] === undefined) merged[k] = v;
  }
  const presetName = typeof merged.preset === 'string' ? merged.preset : presetNames[0]!;
  const preset = def.presets[presetName];
  if (!preset) throw new GantryError(`--preset: unknown preset '${presetName}' (expected ${presetNames.join(' or ')})`);
  const train = readFlags(TRAIN_FLAGS, merged, preset);
  const values = readFlags(def.flags, merged, preset);
  return { presetName, preset, train, values, config: def.config(values), initFrom };
}

/** The app's commands, built from the variant definition. */
export function variantCommands<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
  argv: readonly string[] = hideBin(process.argv),
): (y: Argv) => Argv {
  const presetNames = Object.keys(def.presets);
  const trainSpecs = { ...TRAIN_FLAGS, ...def.flags };
  const log = (l: string) => console.error(l);
  const backendOf = (a: Record<string, unknown>) => readFlags(COMMON_FLAGS, a).backend;

  const train = async (a: Record<string, unknown>) => {
    for (const d of deprecatedFlagsUsed(trainSpecs, argv))
      log(`warning: --${d.used} is deprecated; use --${d.instead}`);
    const resume = readFlags(TRAIN_FLAGS, a).resume;
    const saved = resume !== undefined ? resumedValues(def.name, resume) : {};
    const { presetName, preset, train: t, values, config, initFrom } = resolveTrainValues(def, a, saved);
    const settings: TrainSettings = {
      ...t,
      preset: presetName,
      epochs: t.epochs ?? preset.constantEpochs + preset.decayEpochs,
      minSteps: t.epochs === undefined ? preset.minSteps : undefined,
      batchSize: t.batchSize!,
      lr: t.lr!,
      loss: t.loss!,
      sampleEvery: t.sampleEvery!,
      checkpointEvery: t.checkpointEvery!,
      backend: backendOf(a),
    };
    await runTraining(def.name, settings, {
      saved: withoutTransient(trainSpecs, { ...t, ...values, preset: presetName }),
      openData: () => def.openData(config, values, log),
      createTask: (data) => {
        const task = def.createTask({
          config,
          data,
          lr: settings.lr,
          beta1: settings.beta1,
          loss: adversarialLoss(settings.loss),
          seed: settings.seed,
          batchSize: settings.batchSize,
          checkpointConfig: {
            ...config,
            ...(data.root ? { data: data.root } : {}),
            loss: settings.loss,
            batchSize: settings.batchSize,
          },
          mustMatch: [...def.mustMatch],
          log,
        });
        if (initFrom) initWeights(initFrom, task.nets, log);
        return task;
      },
      schedule: (epochs) => decayOverLast(epochs, t.decayEpochs ?? preset.decayEpochs),
    });
  };

  const checkpointFlag = {
    checkpoint: flag.string(`run or checkpoint directory (default: the latest ${def.name} run)`, { transient: true }),
  };
  const load = (checkpoint: string | undefined) => loadTrained<C>(def, checkpoint);

  return (y: Argv) => {
    let out = y
      .usage(`Gantry ${def.name}: ${def.title}.\n\nUsage: pnpm --filter ${def.name} <command> [options]`)
      .command(
        'train',
        `train ${def.name} (${def.trainDescribe})`,
        (c) => {
          const { constantEpochs, decayEpochs, describe: _, ...shown } = def.presets[presetNames[0]!]!;
          const opts = yargsOptions(trainSpecs, { ...shown, epochs: constantEpochs + decayEpochs, decayEpochs });
          opts.preset = {
            ...opts.preset,
            choices: presetNames,
            hidden: presetNames.length === 1,
            describe: `defaults for the flags below: ${presetNames.map((n) => `${n} = ${def.presets[n]!.describe}`).join('; ')} (default: ${presetNames[0]})`,
          };
          return c.options(opts);
        },
        train,
      );
    const inference = def.inference;
    if (inference.kind === 'latent') {
      const generateFlags = {
        count: flag.positiveIntUpTo(
          'images to write (per label for a conditional model)',
          MAX_GENERATE_COUNT,
          'one PNG file each',
          { default: 64 },
        ),
        out: flag.string('output directory', { default: 'samples' }),
        seed: flag.nonNegativeInt('noise seed (same seed, same images)', { default: 0 }),
        ...checkpointFlag,
        label: flag.string('class(es) to draw: a class, a comma list (0,3,9) or all (conditional models)'),
      };
      out = out.command(
        'generate',
        'write generated images as PNGs plus grid.png',
        (c) => c.options(yargsOptions(generateFlags)),
        async (a) => {
          const v = readFlags(generateFlags, a);
          await initBackend({ backend: backendOf(a) });
          const trained = await load(v.checkpoint);
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
      );
    } else {
      const twoWay = (c: C) => inference.generators(c).BtoA !== undefined;
      const translateFlags = {
        ...checkpointFlag,
        direction: flag.choice(
          ['AtoB', 'BtoA'] as const,
          'AtoB: the A → B generator, BtoA: B → A (two-generator models)',
          { default: 'AtoB' },
        ),
      };
      out = out.command(
        'translate',
        "translate an image or a folder with a trained generator, at the photo's own resolution (--resolution model: resized to the model's size and back); the output has the input's size",
        (c) => c.options({ ...translateOptions, ...yargsOptions(translateFlags) }),
        async (a) => {
          const v = readFlags(translateFlags, a);
          await translateFromArgs(a, backendOf(a), async ({ evalMode }) => {
            const trained = await load(v.checkpoint);
            const nets = inference.generators(trained.config);
            if (v.direction === 'BtoA' && !twoWay(trained.config))
              throw new GantryError(`--direction BtoA: ${trained.checkpoint} has one generator (A → B)`);
            const t = await imageTranslator(
              await trained.load(v.direction === 'BtoA' ? nets.BtoA! : nets.AtoB),
              evalMode,
            );
            return {
              fn: t.fn,
              multiple: t.multiple,
              modelSize: inference.cropSize(trained.config),
              inChannels: inference.channels(trained.config),
            };
          });
        },
      );
    }
    if (def.evaluate) {
      const ev = def.evaluate;
      const evaluateFlags = {
        ...checkpointFlag,
        json: flag.string('also write the figures as JSON to this file', { transient: true }),
        ...ev.flags,
      };
      out = out.command(
        'evaluate',
        ev.describe,
        (c) => c.options(yargsOptions(evaluateFlags)),
        async (a) => {
          const v = readFlags({ ...checkpointFlag, json: evaluateFlags.json }, a);
          await initBackend({ backend: backendOf(a) });
          const trained = await load(v.checkpoint);
          const figures = await ev.run(trained, readFlags(ev.flags, a), { loadTrained: load });
          saveEvaluation(trained.checkpoint, { checkpoint: trained.checkpoint, ...figures }, v.json);
        },
      );
    }
    for (const extra of def.commands ?? []) {
      out = out.command(
        extra.name,
        extra.describe,
        (c: Argv) => c.options(extra.options),
        async (a: Record<string, unknown>) => {
          await extra.run(a);
        },
      );
    }
    const exportFlags = { ...checkpointFlag, out: flag.string('output directory') };
    return out
      .command(
        'export',
        'write the generator(s) (TF.js layers format) and metadata.json for the browser',
        (c) => c.options(yargsOptions(exportFlags)).demandOption('out'),
        async (a) => {
          const v = readFlags(exportFlags, a);
          const dir = userPath(v.out!);
          await initBackend({ backend: backendOf(a) });
          const trained = await load(v.checkpoint);
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
          console.log(
            `exported ${def.name} to ${dir} (${inference.kind === 'latent' || !inference.generators(c).BtoA ? 'model.json, weights.bin' : 'G_A/, G_B/'}, metadata.json)`,
          );
        },
      )
      .command(
        'runs',
        `list ${def.name} runs with their steps, recent losses and evaluation figures`,
        (c) => c,
        () => {
          const root = runsRoot();
          const rows = listRuns(root, def.name);
          console.log(
            rows.length
              ? runsTable(rows)
              : `no ${def.name} runs in ${root} (train one: pnpm --filter ${def.name} train)`,
          );
        },
      );
  };
}

/** An app's whole program: `await runVariant(definition)`. */
export async function runVariant(def: AnyVariant, argv: string[] = hideBin(process.argv)): Promise<void> {
  await runCli(def.name, variantCommands(def, argv), argv);
}

export type { Flag, FlagSpecs, FlagValues };
