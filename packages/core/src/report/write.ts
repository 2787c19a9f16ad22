/** Writing `<run>/report.html`: on demand (`writeReport`) and from the training loop (`reportWriter`, throttled). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWrite } from '../runs/fsutil.js';
import { runsRoot } from '../runs/run.js';
import { readRunData } from './data.js';
import { type ReportOptions, renderReport } from './html.js';

export const REPORT_FILE = 'report.html';

/** Writes (atomically) and returns the path of `<runDir>/report.html`. */
export function writeReport(runDir: string, o: ReportOptions & { root?: string } = {}): string {
  const run = readRunData(runDir, o.root ?? runsRoot());
  const file = path.join(run.dir, REPORT_FILE);
  atomicWrite(file, renderReport(run, o));
  // A process killed mid-write leaves its temporary sibling behind: clear other processes' leftovers.
  for (const n of fs.readdirSync(run.dir)) {
    if (n.startsWith(`${REPORT_FILE}.tmp-`) && !n.startsWith(`${REPORT_FILE}.tmp-${process.pid}-`))
      fs.rmSync(path.join(run.dir, n), { force: true });
  }
  return file;
}

export interface ReportWriter {
  /** After a sample image: rewrites the report unless one was written recently. */
  update(): void;
  /** At the end of training (finished, interrupted or failed): always rewrites it. */
  finish(finished: boolean): void;
}

/**
 * The training loop's report hook. Cheap by construction: a rewrite happens at most every `minIntervalMs`, and
 * never takes more than ~5% of the wall time (a slow write pushes the next one further out). A failure is one
 * warning in the log, then the report is left alone for the rest of the run; training never fails because of it.
 */
export function reportWriter(
  runDir: string,
  o: { log?: (l: string) => void; minIntervalMs?: number } = {},
): ReportWriter {
  const log = o.log ?? ((l: string) => console.error(l));
  const minInterval = o.minIntervalMs ?? Number(process.env.GANTRY_REPORT_INTERVAL_MS ?? 15_000);
  const disabled = process.env.GANTRY_REPORT === '0';
  let failed = false;
  let nextAt = 0;
  const write = (status: 'running' | 'finished' | 'stopped') => {
    if (disabled || failed) return;
    const t0 = Date.now();
    try {
      writeReport(runDir, { status });
    } catch (err) {
      failed = true;
      log(
        `warning: could not write ${path.join(runDir, REPORT_FILE)} (${(err as Error).message}); training goes on without the report`,
      );
      return;
    }
    const took = Date.now() - t0;
    nextAt = Date.now() + Math.max(minInterval, 20 * took);
  };
  return {
    update() {
      if (Date.now() >= nextAt) write('running');
    },
    finish(finished) {
      write(finished ? 'finished' : 'stopped');
    },
  };
}
