/**
 * What every app's yargs shell shares: the common flags, number validation, one-line errors, and the
 * train command's flow (backend, run directory, resume, loop, summary).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend } from '../backend/index.js';
import { GantryError } from '../errors.js';
import { measureBytesPerPixel } from '../nn/tiles.js';
import { latestCheckpoint } from '../runs/checkpoint.js';
import { formatLosses } from '../runs/progress.js';
import {
  checkNewRunDir,
  latestRun,
  lockRunDir,
  newRunDir,
  removeIfUnused,
  userPath,
  writeRunInfo,
} from '../runs/run.js';
import type { LrSchedule } from '../train/schedules.js';
import { type GanTask, type TrainOptions, type TrainResult, train } from '../train/trainer.js';
import { nativeArgs, type TranslateFn, type TranslateSummary, translateCommand } from './translate.js';

/** A yargs coerce for a numeric flag of a command outside the variant commands (`gantry`, `translate`). */
export function numberFlag(flag: string, test: (n: number) => boolean, expected: string) {
  return (v: unknown): number => {
    const n = typeof v === 'number' ? v : Number(v);
    if (Array.isArray(v) || v === '' || v == null || !test(n))
      throw new GantryError(`--${flag}: expected ${expected}, got '${v}'`);
    return n;
  };
}
export const positiveInt = (flag: string) =>
  numberFlag(flag, (n) => Number.isInteger(n) && n > 0, 'a positive integer');

/** Flags every command has. */
export const commonOptions = {
  backend: {
    type: 'string',
    describe:
      'compute backend: node-gpu, webgpu, node, wasm or cpu; default: the first that starts, in that order (webgpu only on a hardware GPU adapter); env GANTRY_BACKEND',
  },
  verbose: { type: 'boolean', default: false, describe: 'print stack traces on errors' },
} satisfies Record<string, Options>;

/** The resolved settings of a `train` command (flags, the resumed run's values, then the preset). */
export interface TrainSettings {
  preset: string;
  epochs: number;
  steps?: number;
  /** The fewest steps when `steps` is not given (the preset's floor for small datasets). */
  minSteps?: number;
  batchSize: number;
  lr: number;
  beta1: number;
  loss: string;
  seed: number;
  out?: string;
  resume?: string;
  sampleEvery: number;
  checkpointEvery: number;
  keep: number;
  nanPolicy: 'stop' | 'rollback';
  progress: boolean;
  backend?: string;
}

/** Resolves `--resume`: "latest", a run directory or a checkpoint directory, to a run and its checkpoint. */
export function resolveResume(
  variant: string,
  value: string,
  flag = '--resume',
): { runDir: string; checkpoint: string } {
  const runDir = value === 'latest' || value === '' ? latestRun(variant) : userPath(value);
  if (!runDir || !fs.existsSync(runDir))
    throw new GantryError(`${flag} ${value}: no such run or checkpoint${value === 'latest' ? ` of ${variant}` : ''}`);
  if (fs.existsSync(path.join(runDir, 'state.json')))
    return { runDir: path.dirname(path.dirname(runDir)), checkpoint: runDir };
  const checkpoint = latestCheckpoint(runDir);
  if (!checkpoint) throw new GantryError(`${flag} ${value}: no complete checkpoint in ${runDir}`);
  return { runDir, checkpoint };
}

/** The generator checkpoint for sampling commands: `--checkpoint` (run or checkpoint dir) or the latest run. */
export function resolveCheckpoint(variant: string, value: string | undefined): string {
  if (value) return resolveResume(variant, value, '--checkpoint').checkpoint;
  const run = latestRun(variant);
  const checkpoint = run && latestCheckpoint(run);
  if (!checkpoint)
    throw new GantryError(
      `no trained ${variant} model found: run \`pnpm --filter ${variant} train\` first or pass --checkpoint`,
    );
  return checkpoint;
}

/** What the train flow needs of a variant: its data, its task, the values to save, the LR schedule. */
export interface TrainPlan<D extends { length: number; unit: string }> {
  /** The values the run was started with (saved in run.json for a resume). */
  saved: Record<string, unknown>;
  openData(): Promise<D>;
  createTask(data: D): GanTask | Promise<GanTask>;
  /** The LR multiplier schedule for a run of `epochs` epochs. */
  schedule(epochs: number): LrSchedule;
}

/** The shared `train` flow: backend, run dir, data, run.json, the loop, a summary line. */
export async function runTraining<D extends { length: number; unit: string }>(
  variant: string,
  args: TrainSettings,
  plan: TrainPlan<D>,
  log: (l: string) => void = (l) => console.error(l),
): Promise<{ runDir: string; result: TrainResult; task: GanTask }> {
  const backend = await initBackend({ backend: args.backend, log });
  const resumed = args.resume !== undefined ? resolveResume(variant, args.resume) : undefined;
  if (resumed && args.out && path.resolve(userPath(args.out)) !== path.resolve(resumed.runDir)) {
    log(`warning: --out ${args.out} is ignored with --resume: the run continues in ${resumed.runDir}`);
  }
  // A run directory is checked and locked before the (slow) data and task are made; a new one that fails before
  // training starts is removed again, so failed validation leaves nothing behind.
  const runDir = resumed?.runDir ?? (args.out ? userPath(args.out) : newRunDir(variant, undefined, false));
  if (!resumed) checkNewRunDir(runDir, args.out ? '--out' : 'run directory');
  const created = !fs.existsSync(runDir);
  const unlock = lockRunDir(runDir, log);
  let task: GanTask;
  let steps: number;
  try {
    if (!resumed) checkNewRunDir(runDir, args.out ? '--out' : 'run directory'); // again under the lock
    const data = await plan.openData();
    if (args.batchSize > data.length)
      throw new GantryError(`--batch-size ${args.batchSize}: larger than the dataset (${data.length} ${data.unit})`);
    task = await plan.createTask(data);
    steps = args.steps ?? Math.max(1, args.minSteps ?? 1, Math.round(args.epochs * task.stepsPerEpoch));
    if (!resumed) {
      writeRunInfo(runDir, {
        variant,
        backend: backend.name,
        created: new Date().toISOString(),
        options: {
          ...task.config,
          steps,
          epochs: steps / task.stepsPerEpoch,
          lr: args.lr,
          beta1: args.beta1,
          seed: args.seed,
        },
        args: plan.saved,
      });
    }
  } catch (err) {
    unlock();
    if (created) removeIfUnused(runDir);
    throw err;
  }
  const epochs = steps / task.stepsPerEpoch;
  const floored = args.steps === undefined && steps === args.minSteps && epochs > args.epochs;
  log(
    `${variant}: ${steps} steps (${epochs.toFixed(2)} epochs of ${task.stepsPerEpoch}${floored ? `; the default is at least ${steps} steps: --epochs or --steps for another length` : ''}) → ${runDir}`,
  );
  const options: TrainOptions = {
    runDir,
    steps,
    sampleEvery: args.sampleEvery,
    checkpointEvery: args.checkpointEvery,
    keep: args.keep,
    resume: resumed?.checkpoint,
    nanPolicy: args.nanPolicy,
    progress: args.progress,
    schedule: plan.schedule(epochs),
    handleSigint: true,
    log,
  };
  let result: TrainResult;
  try {
    result = await train(task, options);
  } finally {
    unlock();
  }
  // Interrupted runs exit as a shell expects after Ctrl-C (130) or SIGTERM (143), with their checkpoint saved.
  if (result.interrupted) process.exitCode = result.signal === 'SIGTERM' ? 143 : 130;
  if (result.quit) log(`quit at step ${result.step} without saving`);
  log(
    `${result.interrupted ? 'interrupted' : 'done'} at step ${result.step} in ${result.seconds.toFixed(1)} s | ${formatLosses(result.losses)}\ncheckpoint: ${result.checkpoint ?? 'none'}\nsamples: ${path.join(runDir, 'samples')}`,
  );
  return { runDir, result, task };
}

/**
 * Runs an app's yargs program: unknown flags and bad values are one-line errors with exit code 2; a GantryError
 * is printed as one line; other errors too, with the stack only under --verbose.
 */
export async function runCli(name: string, build: (y: Argv) => Argv, argv = hideBin(process.argv)): Promise<void> {
  const verbose = argv.includes('--verbose');
  const fail = (err: unknown): never => {
    const msg = err instanceof Error ? err.message : String(err);
    console.error(`${name}: error: ${msg.trim().replace(/\s*\n\s*/g, ' ')}`);
    // yargs reports bad flags (and errors thrown by coerce) as YError: usage errors like GantryError.
    const usage = err instanceof GantryError || (err instanceof Error && err.name === 'YError');
    if (verbose && err instanceof Error && !usage) console.error(err.stack);
    process.exit(err instanceof GantryError ? err.exitCode : usage ? 2 : 1);
  };
  const y = yargs(argv)
    .scriptName(name)
    .options(commonOptions)
    .strict()
    .demandCommand(1, 'a command is required (see --help)')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => fail(err ?? new GantryError(msg)));
  try {
    await build(y).parseAsync();
  } catch (err) {
    fail(err);
  }
}

/** What an app's `translate` command loads: the generator as a TranslateFn and the size it runs at. */
export interface LoadedTranslator {
  fn: TranslateFn;
  modelSize: number;
  inChannels: 1 | 3;
  /** Native resolution: the multiple height and width must be (the generator's stride multiple). */
  multiple?: number;
}

/**
 * The body of every app's `translate` command (flags: translateOptions): checks --input and the native-resolution
 * flags before anything slow, starts the backend, loads the generator with `load` (told whether --eval was given),
 * translates.
 */
export async function translateFromArgs(
  a: Record<string, unknown>,
  backend: string | undefined,
  load: (o: { evalMode: boolean }) => Promise<LoadedTranslator>,
  defaults: { evalMode?: boolean } = {},
): Promise<TranslateSummary> {
  const input = String(a.input);
  if (!fs.existsSync(userPath(input))) throw new GantryError(`--input ${input}: no such file or folder`);
  const native = nativeArgs(a);
  await initBackend({ backend });
  const evalMode = typeof a.eval === 'boolean' ? a.eval : (defaults.evalMode ?? false);
  const { fn, modelSize, inChannels, multiple } = await load({ evalMode });
  const m = multiple ?? 1;
  // One probe per command (it runs the generator once on a small image), only if some photo needs the estimate.
  let perPixel: Promise<number> | undefined;
  return translateCommand(fn, {
    input,
    output: String(a.output),
    modelSize,
    inChannels,
    quality: Number(a.quality),
    maxMegapixels: a.maxMegapixels === undefined ? undefined : Number(a.maxMegapixels),
    ...native,
    multiple: m,
    bytesPerPixel: () => (perPixel ??= measureBytesPerPixel(fn, m, inChannels)),
  });
}
