/**
 * The adversarial training loop every variant shares. A variant implements `GanTask` (its networks, a D step,
 * a G step, samples); the loop owns the rest: batches and their disposal, learning-rate schedule, progress,
 * loss log, sample images, checkpoints, resume, Ctrl-C, NaN handling and discriminator-collapse warnings.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import { reportWriter } from '../report/write.js';
import { type CheckpointState, latestCheckpoint, restoreCheckpoint, saveCheckpoint } from '../runs/checkpoint.js';
import { mkdirp } from '../runs/fsutil.js';
import { type LossLog, openLossLog, type Progress, startProgress } from '../runs/progress.js';
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
  /** Writes a sample image (grid or strip) for the current weights. */
  writeSamples(file: string, step: number): Promise<void>;
  dispose?(): void;
}

/** One training step of `task`: its D update, then its G update; the named losses of both. */
export function trainStep<Batch extends tf.TensorContainer>(task: GanTask<Batch>, batch: Batch, step: number): Losses {
  return task.trainStep
    ? task.trainStep(batch, step)
    : { ...task.discriminatorStep(batch, step), ...task.generatorStep(batch, step) };
}

export interface TrainOptions {
  runDir: string;
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
  progress?: boolean;
  log?: (line: string) => void;
  /** Stop after this many steps of this call (for tests of resume); the step count still runs to `steps`. */
  stopAfter?: number;
  /** Steps with D's loss under `collapseThreshold` before warning of discriminator collapse. */
  collapseSteps?: number;
  /** Called after each step with the losses read back (used by tests and the report). */
  onStep?: (step: number, losses: Record<string, number>) => void;
  /**
   * Handle SIGINT and SIGTERM by checkpointing and stopping (CLIs do; tests don't). A second signal stops after
   * the current step without saving; a third kills the process at once (checkpoints are atomic, so the last
   * complete one stays). The process is never exited from inside the handler: with native kernels, exiting
   * while their work is under way crashes in the C++ runtime.
   */
  handleSigint?: boolean;
}

export interface TrainResult {
  step: number;
  epoch: number;
  seconds: number;
  losses: Record<string, number>;
  checkpoint?: string;
  interrupted: boolean;
  /** The signal that interrupted the run (SIGINT or SIGTERM). */
  signal?: NodeJS.Signals;
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

export async function train(task: GanTask, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  const schedule = o.schedule ?? constantLr;
  const baseLr = Object.fromEntries(Object.entries(task.optimizers).map(([k, v]) => [k, getLearningRate(v)]));
  let lrScale = 1;
  mkdirp(path.join(o.runDir, 'samples'));

  let step = 0;
  let lastCheckpoint: string | undefined;
  let checkpointedStep = -1;
  const restore = async (dir: string) => {
    const state = await restoreCheckpoint(dir, task);
    step = state.step;
    lrScale = typeof state.lrScale === 'number' ? state.lrScale : 1;
    lastCheckpoint = dir;
    checkpointedStep = step;
    return state;
  };
  if (o.resume) {
    const dir = typeof o.resume === 'string' ? o.resume : latestCheckpoint(o.runDir);
    if (!dir) throw new GantryError(`--resume: no complete checkpoint in ${path.join(o.runDir, 'checkpoints')}`);
    checkResumePoint(o.runDir, dir);
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
    lastCheckpoint = await saveCheckpoint(o.runDir, {
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
  let signal: NodeJS.Signals | undefined;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
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
      // SIGKILL runs no exit handlers, so nothing native is torn down under a running kernel.
      process.kill(process.pid, 'SIGKILL');
    }
  };
  if (o.handleSigint) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  const lossLog: LossLog = openLossLog(path.join(o.runDir, 'losses.jsonl'));
  const progress: Progress = startProgress({ total: o.steps, start: step, enabled: o.progress ?? false, log });
  const report = reportWriter(o.runDir, { log }); // report.html: throttled, never fails the run
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
      await new Promise((resolve) => setImmediate(resolve));
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

      lossLog.write({ step, epoch: step / task.stepsPerEpoch, ...losses });
      o.onStep?.(step, losses);
      progress.update(step, Math.floor(step / task.stepsPerEpoch), losses);

      if (o.sampleEvery && step % o.sampleEvery === 0) {
        await task.writeSamples(path.join(o.runDir, 'samples', `step-${String(step).padStart(8, '0')}.png`), step);
        report.update();
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
      if (step >= o.steps) await task.writeSamples(path.join(o.runDir, 'samples', 'final.png'), step);
    }
  } finally {
    progress.stop();
    lossLog.close();
    report.finish(step >= o.steps);
    if (o.handleSigint) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
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

/**
 * A run directory holds one history: resuming from a checkpoint older than the run's newest would write new
 * checkpoints among later ones of another history (and pruning would then delete the new ones), so it is refused.
 */
export function checkResumePoint(runDir: string, checkpoint: string): void {
  const latest = latestCheckpoint(runDir);
  if (!latest || path.resolve(latest) === path.resolve(checkpoint)) return;
  const stepOf = (d: string) => Number(/step-(\d+)$/.exec(d)?.[1] ?? Number.NaN);
  if (
    stepOf(latest) > stepOf(checkpoint) &&
    path.resolve(path.dirname(checkpoint)) === path.resolve(runDir, 'checkpoints')
  ) {
    throw new GantryError(
      `--resume ${checkpoint}: step ${stepOf(checkpoint)} is older than this run's latest checkpoint (step ${stepOf(latest)}); a run directory holds one history: resume the run itself (--resume ${runDir}) to continue from step ${stepOf(latest)}`,
    );
  }
}
