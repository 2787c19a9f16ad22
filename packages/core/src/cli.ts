/**
 * What every app's yargs shell shares: the common flags, number validation, one-line errors, and the
 * train command's flow (backend, run directory, resume, loop, summary).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend } from './backend/index.js';
import { latestCheckpoint } from './checkpoint.js';
import { GantryError } from './errors.js';
import { GAN_LOSSES } from './losses.js';
import { formatLosses } from './progress.js';
import { checkNewRunDir, latestRun, lockRunDir, newRunDir, readRunInfo, removeIfUnused, userPath, writeRunInfo } from './run.js';
import { type GanTask, type TrainOptions, type TrainResult, train } from './trainer.js';
import type { LrSchedule } from './schedules.js';
import { type TranslateFn, type TranslateSummary, translateCommand } from './translate.js';

/** A yargs coerce for a numeric flag: `test` decides, and the one-line error says what was `expected`. */
export function numberFlag(flag: string, test: (n: number) => boolean, expected: string) {
  return (v: unknown): number => {
    const n = typeof v === 'number' ? v : Number(v);
    if (Array.isArray(v) || v === '' || v == null || !test(n)) throw new GantryError(`--${flag}: expected ${expected}, got '${v}'`);
    return n;
  };
}
export const positiveInt = (flag: string) => numberFlag(flag, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
export const nonNegativeInt = (flag: string) => numberFlag(flag, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
export const positiveNumber = (flag: string) => numberFlag(flag, (n) => Number.isFinite(n) && n > 0, 'a positive number');
export const nonNegativeNumber = (flag: string) => numberFlag(flag, (n) => Number.isFinite(n) && n >= 0, 'a non-negative number');
/** A positive integer with an upper limit; the error names the limit and why it is there. */
export const positiveIntUpTo = (flag: string, max: number, why: string) =>
  numberFlag(flag, (n) => Number.isInteger(n) && n > 0 && n <= max, `a positive integer up to ${max} (${why})`);
/** Adam's β1 (and other decays): a number in [0, 1). */
export const unitInterval = (flag: string) => numberFlag(flag, (n) => Number.isFinite(n) && n >= 0 && n < 1, 'a number in [0, 1)');
/** The largest --batch-size: a batch's activations must fit the wasm backend's 4 GB memory. */
export const MAX_BATCH_SIZE = 1024;
/** The largest --latent-dim (the generator's first layer grows with it). */
export const MAX_LATENT_DIM = 4096;
/** The largest generate --count (one PNG file each). */
export const MAX_GENERATE_COUNT = 10_000;

/** Flags every command has. */
export const commonOptions = {
  backend: { type: 'string', describe: 'compute backend: node-gpu, node, wasm or cpu (default: fastest available; env GANTRY_BACKEND)' },
  verbose: { type: 'boolean', default: false, describe: 'print stack traces on errors' },
} satisfies Record<string, Options>;

export interface TrainDefaults {
  epochs: number;
  batchSize: number;
  lr: number;
  /** D's learning rate where the variant sets one apart from `lr` (MNIST apps' --d-lr). */
  discriminatorLr?: number;
  /** γ of the R1 penalty where the variant sets one (MNIST apps' --r1; 0 or omitted: none). */
  r1Gamma?: number;
  /** Weight of the mode-seeking term where the variant sets one (MNIST apps' --mode-seeking; 0 or omitted: none). */
  modeSeekingWeight?: number;
  loss: string;
  sampleEvery: number;
  checkpointEvery: number;
}

/** Flags of every `train` command, with the variant's defaults. */
export function trainOptions(d: TrainDefaults) {
  return {
    epochs: { default: d.epochs, coerce: positiveNumber('epochs'), describe: 'training epochs (fractions allowed)' },
    steps: { coerce: positiveInt('steps'), describe: 'training steps (overrides --epochs)' },
    'batch-size': { default: d.batchSize, coerce: positiveIntUpTo('batch-size', MAX_BATCH_SIZE, 'memory'), describe: `images per step (at most ${MAX_BATCH_SIZE})` },
    lr: { default: d.lr, coerce: positiveNumber('lr'), describe: 'Adam learning rate' },
    beta1: { default: 0.5, coerce: unitInterval('beta1'), describe: 'Adam β1, in [0, 1)' },
    loss: { type: 'string', default: d.loss, choices: [...GAN_LOSSES], describe: 'adversarial loss' },
    seed: { default: 42, coerce: nonNegativeInt('seed'), describe: 'random seed (weights, noise, data order)' },
    out: { type: 'string', describe: 'run directory (default: runs/<variant>/<time>)' },
    resume: { type: 'string', describe: 'resume a run: a run directory, a checkpoint, or "latest"' },
    'sample-every': { default: d.sampleEvery, coerce: nonNegativeInt('sample-every'), describe: 'write a sample image every N steps (0: only at the end)' },
    'checkpoint-every': { default: d.checkpointEvery, coerce: nonNegativeInt('checkpoint-every'), describe: 'checkpoint every N steps (0: only at the end)' },
    keep: { default: 3, coerce: nonNegativeInt('keep'), describe: 'keep the last K checkpoints (0: all)' },
    'nan-policy': { type: 'string', default: 'stop', choices: ['stop', 'rollback'], describe: 'on a NaN/Inf loss: stop, or roll back to the last checkpoint with half the LR' },
    progress: { type: 'boolean', default: true, describe: 'show a progress bar' },
  } satisfies Record<string, Options>;
}

export interface CommonTrainArgs {
  epochs: number;
  steps?: number;
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
export function resolveResume(variant: string, value: string, flag = '--resume'): { runDir: string; checkpoint: string } {
  const runDir = value === 'latest' || value === '' ? latestRun(variant) : userPath(value);
  if (!runDir || !fs.existsSync(runDir)) throw new GantryError(`${flag} ${value}: no such run or checkpoint${value === 'latest' ? ` of ${variant}` : ''}`);
  if (fs.existsSync(path.join(runDir, 'state.json'))) return { runDir: path.dirname(path.dirname(runDir)), checkpoint: runDir };
  const checkpoint = latestCheckpoint(runDir);
  if (!checkpoint) throw new GantryError(`${flag} ${value}: no complete checkpoint in ${runDir}`);
  return { runDir, checkpoint };
}

/** The generator checkpoint for sampling commands: `--checkpoint` (run or checkpoint dir) or the latest run. */
export function resolveCheckpoint(variant: string, value: string | undefined): string {
  if (value) return resolveResume(variant, value, '--checkpoint').checkpoint;
  const run = latestRun(variant);
  const checkpoint = run && latestCheckpoint(run);
  if (!checkpoint) throw new GantryError(`no trained ${variant} model found: run \`pnpm --filter ${variant} train\` first or pass --checkpoint`);
  return checkpoint;
}

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * With `--resume`, the run continues with the options it was started with (saved in run.json), except the
 * flags given again on this command line (e.g. a larger --steps).
 */
export function withResumedArgs<A extends CommonTrainArgs>(variant: string, args: A, argv = hideBin(process.argv)): A {
  if (args.resume === undefined) return args;
  const { runDir } = resolveResume(variant, args.resume);
  const saved = fs.existsSync(path.join(runDir, 'run.json')) ? (readRunInfo(runDir).args as Record<string, unknown> | undefined) : undefined;
  if (!saved) return args;
  const given = new Set(argv.filter((t) => t.startsWith('--')).map((t) => camel(t.slice(2).split('=')[0]!.replace(/^no-/, ''))));
  const merged: Record<string, unknown> = { ...(args as object) };
  for (const [k, v] of Object.entries(saved)) {
    if (given.has(camel(k))) continue;
    merged[camel(k)] = v;
    merged[kebab(camel(k))] = v;
  }
  return merged as A;
}

/** The train options worth saving for a resume (yargs' bookkeeping and the resume flag itself left out). */
function savedArgs(args: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).filter(([k]) => k !== '_' && k !== '$0' && k !== 'resume' && !k.includes('-')));
}

/** The shared `train` flow: backend, run dir, run.json, the loop, a summary line. */
export async function runTraining(
  variant: string,
  args: CommonTrainArgs,
  makeTask: () => Promise<GanTask> | GanTask,
  extra: { schedule?: (task: GanTask) => LrSchedule; log?: (l: string) => void } = {},
): Promise<{ runDir: string; result: TrainResult; task: GanTask }> {
  const log = extra.log ?? ((l: string) => console.error(l));
  const backend = await initBackend({ backend: args.backend, log });
  const resumed = args.resume !== undefined ? resolveResume(variant, args.resume) : undefined;
  if (resumed && args.out && path.resolve(userPath(args.out)) !== path.resolve(resumed.runDir)) {
    log(`warning: --out ${args.out} is ignored with --resume: the run continues in ${resumed.runDir}`);
  }
  // A run directory is checked and locked before the (slow) task is built; a new one that fails before training
  // starts is removed again, so failed validation leaves nothing behind.
  const runDir = resumed?.runDir ?? (args.out ? userPath(args.out) : newRunDir(variant, undefined, false));
  if (!resumed) checkNewRunDir(runDir, args.out ? '--out' : 'run directory');
  const created = !fs.existsSync(runDir);
  const unlock = lockRunDir(runDir, log);
  let task: GanTask;
  let steps: number;
  try {
    if (!resumed) checkNewRunDir(runDir, args.out ? '--out' : 'run directory'); // again under the lock
    task = await makeTask();
    steps = args.steps ?? Math.max(1, Math.round(args.epochs * task.stepsPerEpoch));
    if (!resumed) {
      writeRunInfo(runDir, {
        variant,
        backend: backend.name,
        created: new Date().toISOString(),
        options: { ...task.config, steps, epochs: steps / task.stepsPerEpoch, lr: args.lr, beta1: args.beta1, seed: args.seed },
        args: savedArgs(args),
      });
    }
  } catch (err) {
    unlock();
    if (created) removeIfUnused(runDir);
    throw err;
  }
  log(`${variant}: ${steps} steps (${(steps / task.stepsPerEpoch).toFixed(2)} epochs of ${task.stepsPerEpoch}) → ${runDir}`);
  const options: TrainOptions = {
    runDir,
    steps,
    sampleEvery: args.sampleEvery,
    checkpointEvery: args.checkpointEvery,
    keep: args.keep,
    resume: resumed?.checkpoint,
    nanPolicy: args.nanPolicy,
    progress: args.progress,
    schedule: extra.schedule?.(task),
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
}

/**
 * The body of every app's `translate` command (flags: translateOptions + --backend): checks --input before
 * anything slow, starts the backend, loads the generator with `load`, translates.
 */
export async function translateFromArgs(
  a: Record<string, unknown>,
  load: () => Promise<LoadedTranslator>,
): Promise<TranslateSummary> {
  if (!fs.existsSync(userPath(a.input as string))) throw new GantryError(`--input ${a.input}: no such file or folder`);
  await initBackend({ backend: a.backend as string | undefined });
  const { fn, modelSize, inChannels } = await load();
  return translateCommand(fn, {
    input: a.input as string,
    output: a.output as string,
    modelSize,
    inChannels,
    quality: a.quality as number,
    maxMegapixels: a.maxMegapixels as number | undefined,
  });
}
