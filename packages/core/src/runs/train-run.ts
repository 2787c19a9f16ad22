/**
 * Training into a run directory (Node): the loop of train/trainer.ts with its hooks on files: checkpoints under
 * `<run>/checkpoints`, the loss log `<run>/losses.jsonl`, sample images under `<run>/samples`, report.html, a
 * progress bar, and Ctrl-C / SIGTERM as interrupts.
 */
import * as path from 'node:path';
import { GantryError } from '../errors.js';
import { reportWriter } from '../report/write.js';
import { type GanTask, type RunHooks, type TrainLoopOptions, type TrainResult, trainLoop } from '../train/trainer.js';
import { latestCheckpoint, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { mkdirp } from './fsutil.js';
import { saveImageGrid } from './image.js';
import { openLossLog, startProgress } from './progress.js';

export interface TrainOptions extends TrainLoopOptions {
  runDir: string;
  progress?: boolean;
  /**
   * Handle SIGINT and SIGTERM by checkpointing and stopping (CLIs do; tests don't). A second signal stops after
   * the current step without saving; a third kills the process at once (checkpoints are atomic, so the last
   * complete one stays). The process is never exited from inside the handler: with native kernels, exiting
   * while their work is under way crashes in the C++ runtime.
   */
  handleSigint?: boolean;
}

/** Writes `task`'s sample grid (or its own sample image) as `file`. */
export async function writeTaskSamples(task: GanTask, file: string, step: number): Promise<void> {
  if (task.sampleImages) {
    const { images, cols } = await task.sampleImages(step);
    try {
      await saveImageGrid(images, file, { cols });
    } finally {
      images.dispose();
    }
  } else await task.writeSamples?.(file, step);
}

/** The hooks of a run directory: where `train` keeps checkpoints, losses, samples and the report. */
export function runDirHooks(
  runDir: string,
  o: { steps: number; progress?: boolean; handleSigint?: boolean; log: (l: string) => void },
): RunHooks {
  mkdirp(path.join(runDir, 'samples'));
  let lossLog: ReturnType<typeof openLossLog> | undefined;
  let progress: ReturnType<typeof startProgress> | undefined;
  let report: ReturnType<typeof reportWriter> | undefined;
  return {
    checkpointsWhere: path.join(runDir, 'checkpoints'),
    latestCheckpoint: () => latestCheckpoint(runDir),
    checkResume: (dir) => checkResumePoint(runDir, dir),
    saveCheckpoint: (c) => saveCheckpoint(runDir, c),
    restoreCheckpoint: (dir, target) => restoreCheckpoint(dir, target),
    logLosses: (entry) => {
      lossLog ??= openLossLog(path.join(runDir, 'losses.jsonl'));
      lossLog.write(entry);
    },
    writeSamples: (task, name, step) => writeTaskSamples(task, path.join(runDir, 'samples', `${name}.png`), step),
    progress: (step, epoch, losses) => progress?.update(step, epoch, losses),
    samplesWritten: () => report?.update(),
    onInterrupt: o.handleSigint
      ? (handler) => {
          process.on('SIGINT', handler);
          process.on('SIGTERM', handler);
          return () => {
            process.off('SIGINT', handler);
            process.off('SIGTERM', handler);
          };
        }
      : undefined,
    // SIGKILL runs no exit handlers, so nothing native is torn down under a running kernel.
    killNow: () => process.kill(process.pid, 'SIGKILL'),
    start: (step) => {
      lossLog ??= openLossLog(path.join(runDir, 'losses.jsonl'));
      progress = startProgress({ total: o.steps, start: step, enabled: o.progress ?? false, log: o.log });
      report = reportWriter(runDir, { log: o.log }); // report.html: throttled, never fails the run
    },
    close: (done) => {
      progress?.stop();
      lossLog?.close();
      report?.finish(done);
    },
  };
}

/** Trains `task` into run directory `o.runDir` (see train/trainer.ts for the loop). */
export async function train(task: GanTask, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  return trainLoop(task, runDirHooks(o.runDir, { ...o, log }), { ...o, log });
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
