/**
 * The adversarial training loop every variant shares. A variant implements `GanTask` (its networks, a D step,
 * a G step, samples); the loop owns the rest: batches and their disposal, learning-rate schedule, progress,
 * loss log, sample images, checkpoints, resume, interrupts, NaN handling and discriminator-collapse warnings.
 *
 * Browser-safe: where checkpoints, losses and samples go is the `RunHooks` the caller passes (runs/train-run.ts
 * writes a run directory in Node; the demo page keeps them in IndexedDB), so this file imports nothing from Node.
 */
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import type { CheckpointState, CheckpointTarget } from '../runs/checkpoint-data.js';
import { constantLr, type LrSchedule } from './schedules.js';

export type Losses = Record<string, tf.Scalar>;

export interface GanTask<Batch extends tf.TensorContainer = tf.TensorContainer> {
  readonly variant: string;
  /** The options the networks were built with (JSON), stored in every checkpoint. */
  readonly config: Record<string, unknown>;
  /** Config keys a checkpoint must share to be restored into these networks. */
  readonly mustMatch: string[];
  readonly nets: Record<string, tf.LayersModel>;
  readonly optimizers: Record<string, tf.Optimizer>;
  readonly stepsPerEpoch: number;
  /** The adversarial loss in use (see losses.ts), for the collapse warning. */
  readonly lossName?: string;
  /** The batch for `step` (deterministic in the seed and step, so resumed runs see the same data). */
  nextBatch(step: number): Batch | Promise<Batch>;
  /** One update of the discriminator(s); returns named losses, the main one called 'D'. */
  discriminatorStep(batch: Batch, step: number): Losses;
  /** One update of the generator(s); returns named losses, the main one called 'G'. */
  generatorStep(batch: Batch, step: number): Losses;
  /**
   * Both updates of a step (D, then G), where a task shares work between them; without it the loop calls
   * `discriminatorStep` then `generatorStep`.
   */
  trainStep?(batch: Batch, step: number): Losses;
  /**
   * A sample grid for the current weights: images in [-1, 1] and the grid's columns (the caller disposes the
   * images). Tasks without it write their own sample files (`writeSamples`).
   */
  sampleImages?(step: number): SampleGrid | Promise<SampleGrid>;
  /** Writes a sample image (grid or strip) for the current weights, for tasks whose samples are not one grid. */
  writeSamples?(file: string, step: number): Promise<void>;
  dispose?(): void;
}

/** One training step of `task`: its D update, then its G update; the named losses of both. */
export function trainStep<Batch extends tf.TensorContainer>(task: GanTask<Batch>, batch: Batch, step: number): Losses {
  return task.trainStep
    ? task.trainStep(batch, step)
    : { ...task.discriminatorStep(batch, step), ...task.generatorStep(batch, step) };
}

/** A grid of sample images: `images` [N, H, W, C] in [-1, 1], `cols` per row. */
export interface SampleGrid {
  images: tf.Tensor4D;
  cols: number;
}

/**
 * Where a run keeps what it makes: checkpoints, the loss log, sample images, a report, progress, and where
 * interrupts come from. `runs/train-run.ts` implements it on a run directory; the demo page on IndexedDB.
 */
export interface RunHooks {
  /** Where the checkpoints are, for messages (a run's checkpoints folder). */
  readonly checkpointsWhere: string;
  /** The newest complete checkpoint's id (a directory in Node), if any. */
  latestCheckpoint(): string | undefined | Promise<string | undefined>;
  /** Refuses a resume point that would mix two histories in one run (see runs/train-run.ts). */
  checkResume?(id: string): void;
  /** Saves a checkpoint (keeping the `keep` newest, 0: all); returns its id. */
  saveCheckpoint(o: {
    state: CheckpointState;
    nets: Record<string, tf.LayersModel>;
    optimizers: Record<string, tf.Optimizer>;
    keep?: number;
  }): Promise<string>;
  /** Restores checkpoint `id` into the task's networks and optimizers; returns its state. */
  restoreCheckpoint(id: string, target: CheckpointTarget): Promise<CheckpointState>;
  /** One entry of the loss log per step. */
  logLosses?(entry: Record<string, number>): void;
  /** Makes a sample image named `name` ('step-00000100', 'final') of `task`'s current weights. */
  writeSamples?(task: GanTask, name: string, step: number): Promise<void>;
  /** Called after each step, for a progress display. */
  progress?(step: number, epoch: number, losses: Record<string, number>): void;
  /** Called after each sample image (a report's refresh). */
  samplesWritten?(): void;
  /** Subscribes to interrupt requests (Ctrl-C, a page's stop button); returns the unsubscribe. */
  onInterrupt?(handler: (signal: string) => void): () => void;
  /** A third interrupt: end at once (Node kills the process). */
  killNow?(): void;
  /** The loop starts at `step` (after a resume): open the loss log, start the progress display. */
  start?(step: number): void;
  /** The run ended (`done`: all steps made); called once, also after an error. */
  close?(done: boolean): void;
}

export interface TrainLoopOptions {
  /** Total optimisation steps (one D step + one G step each). */
  steps: number;
  sampleEvery?: number;
  checkpointEvery?: number;
  /** Keep the last K checkpoints (0: all). */
  keep?: number;
  /** Learning-rate multiplier as a function of the (fractional) epoch. */
  schedule?: LrSchedule;
  /** Resume from this checkpoint directory, or from the run's latest when `true`. */
  resume?: string | boolean;
  /**
   * 'stop' ends the run at the first NaN/Inf loss; 'rollback' restores the last checkpoint and halves the LR
   * (again at each retry, so every retry runs at a lower rate), at most `maxRollbacks` times in a row.
   */
  nanPolicy?: 'stop' | 'rollback';
  /** Rollbacks allowed without a new checkpoint in between before the run stops (default 5). */
  maxRollbacks?: number;
  log?: (line: string) => void;
  /** Stop after this many steps of this call (for tests of resume); the step count still runs to `steps`. */
  stopAfter?: number;
  /** Steps with D's loss under `collapseThreshold` before warning of discriminator collapse. */
  collapseSteps?: number;
  /** Called after each step with the losses read back (used by tests and the report). */
  onStep?: (step: number, losses: Record<string, number>) => void;
  /** Awaited before each step (a page's pause button holds the loop here). */
  beforeStep?: () => Promise<void> | void;
}

export interface TrainResult {
  step: number;
  epoch: number;
  seconds: number;
  losses: Record<string, number>;
  checkpoint?: string;
  interrupted: boolean;
  /** The signal that interrupted the run (SIGINT or SIGTERM in Node). */
  signal?: string;
  /** True when a second signal stopped the run without a final checkpoint. */
  quit?: boolean;
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  // tfjs optimizers read `learningRate` at every update; it is only `protected` in the typings.
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

function getLearningRate(opt: tf.Optimizer): number {
  return (opt as unknown as { learningRate: number }).learningRate;
}

/** Weight tensors of all nets are finite (checked before a checkpoint is written, so none is ever corrupt). */
async function weightsFinite(nets: Record<string, tf.LayersModel>): Promise<boolean> {
  const weights = Object.values(nets).flatMap((m) => m.weights);
  if (weights.length === 0) return true;
  const all = tf.tidy(() => tf.all(tf.stack(weights.map((w) => tf.all(tf.isFinite(w.read()))))));
  // data(), not dataSync(): the WebGPU backend in Node reads asynchronously only.
  const [ok] = await all.data();
  all.dispose();
  return ok === 1;
}

/** Lets queued events run (a Ctrl-C, a worker's messages) without the 1-4 ms floor of a timer. */
function yieldToEvents(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    // Browsers only (Node has setImmediate): the DOM's MessagePort, which Node's typings do not describe.
    (channel.port1 as unknown as { onmessage: () => void }).onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(0);
  });
}

/** The sample image name of `step`: step-00000100. */
export const sampleName = (step: number): string => `step-${String(step).padStart(8, '0')}`;

/** Trains `task` for `o.steps` steps, keeping checkpoints, losses and samples where `hooks` say. */
export async function trainLoop(task: GanTask, hooks: RunHooks, o: TrainLoopOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  const schedule = o.schedule ?? constantLr;
  const baseLr = Object.fromEntries(Object.entries(task.optimizers).map(([k, v]) => [k, getLearningRate(v)]));
  let lrScale = 1;

  let step = 0;
  let lastCheckpoint: string | undefined;
  let checkpointedStep = -1;
  const restore = async (dir: string) => {
    const state = await hooks.restoreCheckpoint(dir, task);
    step = state.step;
    lrScale = typeof state.lrScale === 'number' ? state.lrScale : 1;
    lastCheckpoint = dir;
    checkpointedStep = step;
    return state;
  };
  if (o.resume) {
    const dir = typeof o.resume === 'string' ? o.resume : await hooks.latestCheckpoint();
    if (!dir) throw new GantryError(`--resume: no complete checkpoint in ${hooks.checkpointsWhere}`);
    hooks.checkResume?.(dir);
    await restore(dir);
    log(`resumed from ${dir} at step ${step}`);
  }

  const checkpoint = async (): Promise<string | undefined> => {
    if (!(await weightsFinite(task.nets))) {
      throw new GantryError(
        `step ${step}: weights contain NaN/Inf; not checkpointing (last good checkpoint: ${lastCheckpoint ?? 'none'})`,
      );
    }
    const state: CheckpointState = {
      variant: task.variant,
      step,
      epoch: Math.floor(step / task.stepsPerEpoch),
      config: task.config,
      lrScale,
    };
    lastCheckpoint = await hooks.saveCheckpoint({
      state,
      nets: task.nets,
      optimizers: task.optimizers,
      keep: o.keep,
    });
    checkpointedStep = step;
    return lastCheckpoint;
  };

  let interrupted = false;
  let quit = false;
  let signal: string | undefined;
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals === 1) {
      interrupted = true;
      signal = sig;
      log(`\ninterrupt (${sig}): saving a checkpoint after this step (Ctrl-C again to quit without saving)`);
    } else if (signals === 2) {
      quit = true;
      log(
        `interrupt: quitting after this step without saving (last checkpoint: ${lastCheckpoint ?? 'none'}; Ctrl-C again to kill at once)`,
      );
    } else {
      hooks.killNow?.();
    }
  };
  const unsubscribe = hooks.onInterrupt?.(onSignal);
  try {
    hooks.start?.(step);
  } catch (err) {
    unsubscribe?.();
    throw err;
  }

  const started = Date.now();
  const stopAt = o.stopAfter != null ? Math.min(o.steps, step + o.stopAfter) : o.steps;
  let losses: Record<string, number> = {};
  let rollbacks = 0;
  /**
   * A diverged step (`what` went NaN/Inf): under 'rollback', restore the last checkpoint at a lower learning rate
   * (bounded retries); otherwise, or without a checkpoint, a one-line error.
   */
  const diverged = async (what: string, saved: string): Promise<void> => {
    const failed = step;
    if (o.nanPolicy === 'rollback' && lastCheckpoint) {
      const maxRollbacks = o.maxRollbacks ?? 5;
      if (rollbacks >= maxRollbacks) {
        throw new GantryError(
          `step ${failed}: ${what} again after ${rollbacks} rollbacks to ${lastCheckpoint}, the last at ${formatScale(lrScale)} of the learning rate; training diverged (lower --lr)`,
        );
      }
      // The checkpoint stores the scale it was saved at: keep the lower of that and the current one, then halve.
      const scale = lrScale;
      await restore(lastCheckpoint);
      lrScale = Math.min(lrScale, scale) / 2;
      rollbacks++;
      log(
        `step ${failed}: ${what}; rolled back to ${lastCheckpoint} (step ${step}) at ${formatScale(lrScale)} of the learning rate (retry ${rollbacks} of ${maxRollbacks})`,
      );
      return;
    }
    throw new GantryError(
      `step ${failed}: ${what}, training diverged; ${saved} (last good checkpoint: ${lastCheckpoint ?? 'none'}). Lower --lr or use --nan-policy rollback`,
    );
  };
  let lowDSteps = 0;
  let warnedCollapse = false;
  try {
    while (step < stopAt && !interrupted) {
      const epoch = step / task.stepsPerEpoch;
      for (const [k, opt] of Object.entries(task.optimizers))
        setLearningRate(opt, baseLr[k]! * schedule(epoch) * lrScale);

      // Yield to the event loop once a step, or a Ctrl-C (a macrotask) would wait until the run ends.
      await yieldToEvents();
      await o.beforeStep?.();
      if (quit) break;
      const batch = await task.nextBatch(step);
      try {
        const scalars = trainStep(task, batch, step);
        const names = Object.keys(scalars);
        const stacked = tf.tidy(() => tf.stack(names.map((n) => scalars[n]!)));
        tf.dispose(Object.values(scalars));
        const values = await stacked.data(); // one read per step, after it (async: WebGPU in Node)
        stacked.dispose();
        losses = Object.fromEntries(names.map((n, i) => [n, values[i]!]));
      } finally {
        tf.dispose(batch);
      }
      step++;

      // Name the main losses first: a NaN in D or G is what the user needs to hear about.
      const bad = Object.entries(losses)
        .sort(([a], [b]) => Number(b === 'D' || b === 'G') - Number(a === 'D' || a === 'G'))
        .find(([, v]) => !Number.isFinite(v));
      if (bad) {
        await diverged(`${bad[0]} loss is ${bad[1]}`, 'nothing was saved for this step');
        continue;
      }
      // A Wasserstein critic's loss is unbounded below, so "near zero" says nothing there.
      if ('D' in losses && task.lossName !== 'wgan-gp') {
        lowDSteps = losses.D! < 1e-3 ? lowDSteps + 1 : 0;
        if (!warnedCollapse && lowDSteps >= (o.collapseSteps ?? 200)) {
          warnedCollapse = true;
          log(
            `warning: D's loss has stayed below 1e-3 for ${lowDSteps} steps (step ${step}): the discriminator has won and G gets no useful gradient. Try a smaller D (--ndf), a lower D learning rate, label smoothing or dropout in D.`,
          );
        }
      }

      hooks.logLosses?.({ step, epoch: step / task.stepsPerEpoch, ...losses });
      o.onStep?.(step, losses);
      hooks.progress?.(step, Math.floor(step / task.stepsPerEpoch), losses);

      if (o.sampleEvery && step % o.sampleEvery === 0) {
        await hooks.writeSamples?.(task, sampleName(step), step);
        hooks.samplesWritten?.();
      }
      if (o.checkpointEvery && step % o.checkpointEvery === 0) {
        // Weights can overflow while the losses stay finite (saturated activations): a divergence too.
        if (!(await weightsFinite(task.nets))) {
          await diverged('weights contain NaN/Inf', 'not checkpointing');
          continue;
        }
        await checkpoint();
        rollbacks = 0; // progress was made and saved: the retry budget starts again
      }
    }
    if (!quit) {
      if (checkpointedStep !== step) await checkpoint();
      if (step >= o.steps) await hooks.writeSamples?.(task, 'final', step);
    }
  } finally {
    unsubscribe?.();
    hooks.close?.(step >= o.steps);
  }
  return {
    step,
    epoch: Math.floor(step / task.stepsPerEpoch),
    seconds: (Date.now() - started) / 1000,
    losses,
    checkpoint: lastCheckpoint,
    interrupted,
    signal,
    quit,
  };
}

/** 1/2, 1/4, … for the rollback messages. */
function formatScale(scale: number): string {
  const inv = 1 / scale;
  return Number.isInteger(inv) ? `1/${inv}` : String(scale);
}
