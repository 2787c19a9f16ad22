/** Progress bar (cli-progress) and the run's loss log (one JSON object per line). */
import * as fs from 'node:fs';
import cliProgress from 'cli-progress';
import { writeError } from './fsutil.js';

export interface Progress {
  update(step: number, epoch: number, losses: Record<string, number>): void;
  stop(): void;
}

export function formatLosses(losses: Record<string, number>): string {
  return Object.entries(losses)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4)}`)
    .join(' ');
}

/**
 * A bar with step, epoch, losses, steps/s and ETA. Off a terminal (CI, pipes) cli-progress prints a line
 * every 10 s instead of redrawing.
 */
export function startProgress(o: {
  total: number;
  start: number;
  enabled: boolean;
  log: (l: string) => void;
}): Progress {
  if (!o.enabled) return { update() {}, stop() {} };
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {percentage}% | step {value}/{total} | epoch {epoch} | {losses} | {rate} steps/s | ETA {eta_formatted}',
      barsize: 24,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(o.total, o.start, { epoch: 0, losses: '', rate: '0.00' });
  return {
    update(step, epoch, losses) {
      const rate = (step - o.start) / Math.max(1e-3, (Date.now() - started) / 1000);
      bar.update(step, { epoch, losses: formatLosses(losses), rate: rate.toFixed(2) });
    },
    stop() {
      bar.stop();
    },
  };
}

export interface LossLog {
  write(entry: Record<string, number>): void;
  close(): void;
}

/** Appends one JSON line per step; readers take the last line of a step if a resumed run wrote it twice. */
export function openLossLog(file: string): LossLog {
  let fd: number;
  try {
    fd = fs.openSync(file, 'a');
  } catch (err) {
    throw writeError(file, err);
  }
  return {
    write(entry) {
      // A full disk (or any failed append) stops the run with the file named, not a raw errno.
      try {
        fs.writeSync(fd, `${JSON.stringify({ ...entry, time: Date.now() })}\n`);
      } catch (err) {
        throw writeError(file, err);
      }
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

/** Reads a loss log, one entry per step (the last written wins). */
export function readLossLog(file: string): Record<string, number>[] {
  // Only a regular file: a losses.jsonl that is a device (a link to /dev/zero, say) would be read forever.
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) return [];
  const bySteps = new Map<number, Record<string, number>>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as Record<string, number>;
      if (typeof e.step === 'number') bySteps.set(e.step, e);
    } catch {
      // A line cut short by a kill: skip it.
    }
  }
  return [...bySteps.values()].sort((a, b) => a.step! - b.step!);
}
