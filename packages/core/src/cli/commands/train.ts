/**
 * `train`: the flags given, then a resumed run's values, then the preset's, then each flag's default, make the
 * variant's config; core's train flow (cli.ts `runTraining`) runs the variant's task.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GantryError } from '../../errors.js';
import { addedConfigKeys, migrateKeys, readCheckpointState, registerKeyMigrations } from '../../runs/checkpoint.js';
import { blameSource, initArchitecture, initSizesLine, initWeights, openInitSource } from '../../runs/init-from.js';
import { readRunInfo } from '../../runs/run.js';
import { adversarialLoss, GAN_LOSSES } from '../../train/losses.js';
import { decayOverLast } from '../../train/schedules.js';
import type { VariantData, VariantDefinition } from '../../variant.js';
import { resolveResume, runTraining, type TrainSettings } from '../cli.js';
import {
  deprecatedFlagsUsed,
  type FlagSpecs,
  type FlagValues,
  flag,
  MAX_BATCH_SIZE,
  readFlags,
  yargsOptions,
} from '../flags.js';
import { backendOf, type Command } from './common.js';

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

/**
 * The values a `train` command runs with: the flags given (`given`, parsed arguments with only the flags typed),
 * then a resumed run's values (`saved`), then the preset's, then each flag's default; and the config they make.
 */
export function resolveTrainValues<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
  given: Record<string, unknown>,
  saved: Record<string, unknown> = {},
) {
  registerKeyMigrations(def);
  const presetNames = Object.keys(def.presets);
  const merged: Record<string, unknown> = { ...saved };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) merged[k] = v;
  // --init-from: the source's architecture under the flags given (a resumed run has its weights already).
  const fromSource = new Set<string>();
  const initFrom =
    typeof given.initFrom === 'string' && given.resume === undefined
      ? openInitSource(def.name, given.initFrom)
      : undefined;
  if (initFrom) {
    const keys = def.architecture ?? def.mustMatch.map((key) => ({ key }));
    for (const [k, v] of Object.entries(initArchitecture(initFrom, keys, merged)))
      if (merged[k] === undefined) {
        merged[k] = v;
        fromSource.add(k);
      }
  }
  const presetName = typeof merged.preset === 'string' ? merged.preset : presetNames[0]!;
  // Own names only: a run.json's "preset": "constructor" must not find Object's constructor.
  const preset = Object.hasOwn(def.presets, presetName) ? def.presets[presetName] : undefined;
  if (!preset) throw new GantryError(`--preset: unknown preset '${presetName}' (expected ${presetNames.join(' or ')})`);
  const train = readFlags(TRAIN_FLAGS, merged, preset);
  const values = blameSource(initFrom, fromSource, () => readFlags(def.flags, merged, preset));
  return { presetName, preset, train, values, config: def.config(values), initFrom };
}

/** The yargs options of `train`: the train flags and the variant's, with the default preset's values shown. */
function trainOptions<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
) {
  const presetNames = Object.keys(def.presets);
  const { constantEpochs, decayEpochs, describe: _, ...shown } = def.presets[presetNames[0]!]!;
  const opts = yargsOptions(
    { ...TRAIN_FLAGS, ...def.flags },
    { ...shown, epochs: constantEpochs + decayEpochs, decayEpochs },
  );
  opts.preset = {
    ...opts.preset,
    choices: presetNames,
    hidden: presetNames.length === 1,
    describe: `defaults for the flags below: ${presetNames.map((n) => `${n} = ${def.presets[n]!.describe}`).join('; ')} (default: ${presetNames[0]})`,
  };
  return opts;
}

export function trainCommand<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
  argv: readonly string[],
): Command {
  const trainSpecs = { ...TRAIN_FLAGS, ...def.flags };
  const log = (l: string) => console.error(l);
  return {
    name: 'train',
    describe: `train ${def.name} (${def.trainDescribe})`,
    options: trainOptions(def),
    async run(a) {
      for (const d of deprecatedFlagsUsed(trainSpecs, argv))
        log(`warning: --${d.used} is deprecated; use --${d.instead}`);
      const resume = readFlags(TRAIN_FLAGS, a).resume;
      const saved = resume !== undefined ? resumedValues(def.name, resume) : {};
      const { presetName, preset, train: t, values, config, initFrom } = resolveTrainValues(def, a, saved);
      if (initFrom) log(initSizesLine(initFrom, values, a));
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
    },
  };
}
