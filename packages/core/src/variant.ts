/**
 * The shape of a variant: the contract a variant package fills in.
 *
 * A variant package fills in one `VariantDefinition`: its flags (typed, named by their config keys), its presets,
 * how the flag values become its config, its data, its training task, how its trained generators are used
 * (noise → image, or image → image) and how it is evaluated. Core turns that into the app's commands (cli/commands/,
 * one file each: `train`, `generate` or `translate`, `evaluate`, `export`, `runs`) and owns everything they share:
 * flag parsing and checking, presets, resume, the backend, run directories, checkpoints, loading trained models,
 * exporting.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Command } from './cli/commands/common.js';
import type { Flag, FlagSpecs, FlagValues } from './cli/flags.js';
import type { KeyMigrations } from './runs/checkpoint.js';
import type { ArchKey } from './runs/init-from.js';
import type { TorchImport } from './torch/import.js';
import type { AdversarialLoss, GAN_LOSSES } from './train/losses.js';
import type { GanTask } from './train/trainer.js';

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
  /** The generator networks by direction. */
  generators(c: C): { AtoB: string; BtoA?: string };
  /** Whether the variant has a B → A generator too: then `translate` has --direction. */
  twoWay?: boolean;
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
> extends KeyMigrations {
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
  /**
   * `import-torch`: what the reference implementation's generators become in this variant (the networks and the
   * config for an architecture); the variant then has the command.
   */
  torch?: TorchImport<C>;
  /** Commands only this variant has. */
  commands?: ExtraCommand[];
}

/** A command only this variant has: its name, help line, yargs options and what it does. */
export type ExtraCommand = Command;

// biome-ignore lint/suspicious/noExplicitAny: a registry of definitions of any flags and config
export type AnyVariant = VariantDefinition<any, any, any, any>;

export type { Flag, FlagSpecs, FlagValues };
