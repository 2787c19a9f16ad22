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
import { latestRun, newRunDir, readRunInfo, userPath, writeRunInfo } from './run.js';
import { type GanTask, type TrainOptions, type TrainResult, train } from './trainer.js';
import type { LrSchedule } from './schedules.js';
import { measureBytesPerPixel } from './tiles.js';
import { nativeArgs, type TranslateFn, type TranslateSummary, translateCommand } from './translate.js';

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
    'batch-size': { default: d.batchSize, coerce: positiveInt('batch-size'), describe: 'images per step' },
    lr: { default: d.lr, coerce: positiveNumber('lr'), describe: 'Adam learning rate' },
    beta1: { default: 0.5, coerce: nonNegativeNumber('beta1'), describe: 'Adam β1' },
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
  const runDir = resumed?.runDir ?? (args.out ? userPath(args.out) : newRunDir(variant));
  const task = await makeTask();
  const steps = args.steps ?? Math.max(1, Math.round(args.epochs * task.stepsPerEpoch));
  if (!resumed) {
    writeRunInfo(runDir, {
      variant,
      backend: backend.name,
      created: new Date().toISOString(),
      options: { ...task.config, steps, epochs: steps / task.stepsPerEpoch, lr: args.lr, beta1: args.beta1, seed: args.seed },
      args: savedArgs(args),
    });
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
  const result = await train(task, options);
  // Interrupted runs exit as a shell expects after Ctrl-C, with their checkpoint saved.
  if (result.interrupted) process.exitCode = 130;
  log(
    `${result.interrupted ? 'interrupted' : 'done'} at step ${result.step} in ${result.seconds.toFixed(1)} s | ${formatLosses(result.losses)}\ncheckpoint: ${result.checkpoint}\nsamples: ${path.join(runDir, 'samples')}`,
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
 * The body of every app's `translate` command (flags: translateOptions + --backend): checks --input and the
 * native-resolution flags before anything slow, starts the backend, loads the generator with `load` (told whether
 * --eval was given), translates.
 */
export async function translateFromArgs(
  a: Record<string, unknown>,
  load: (o: { evalMode: boolean }) => Promise<LoadedTranslator>,
  defaults: { evalMode?: boolean } = {},
): Promise<TranslateSummary> {
  if (!fs.existsSync(userPath(a.input as string))) throw new GantryError(`--input ${a.input}: no such file or folder`);
  const native = nativeArgs(a);
  await initBackend({ backend: a.backend as string | undefined });
  const evalMode = (a.eval as boolean | undefined) ?? defaults.evalMode ?? false;
  const { fn, modelSize, inChannels, multiple } = await load({ evalMode });
  const m = multiple ?? 1;
  // One probe per command (it runs the generator once on a small image), only if some photo needs the estimate.
  let perPixel: Promise<number> | undefined;
  return translateCommand(fn, {
    input: a.input as string,
    output: a.output as string,
    modelSize,
    inChannels,
    quality: a.quality as number,
    ...native,
    multiple: m,
    bytesPerPixel: () => (perPixel ??= measureBytesPerPixel(fn, m, inChannels)),
  });
}
