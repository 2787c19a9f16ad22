/**
 * The worker: pulls trials from the queue and runs each as an ordinary run of the variant's app, in a child process
 * (`<variant> train`, then `<variant> evaluate`), so each trial has its own TF.js state, run directory, checkpoints
 * and report. It checks every job as the command line would before running it: a job naming an unknown variant or
 * carrying a flag the variant refuses is failed at once, without a retry (BullMQ's UnrecoverableError).
 *
 * Run directories: `<runs root>/<variant>/sweep-<sweep>-<trial>` under this worker's runs root. A trial that another
 * worker started and lost (killed, machine gone: BullMQ's stalled-job check hands it on when the lease runs out)
 * resumes from its last complete checkpoint when that run directory is reachable here (a runs root on shared
 * storage), and starts over otherwise. Figures go back through Redis as the job's result.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { flattenFigures, GantryError, latestCheckpoint, readCheckpointState } from '@gantry/core';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import { connect, PREFIX, QUEUE, type TrialJob, type TrialResult } from './queue.js';
import {
  checkEvaluateArgs,
  checkTrainArgs,
  isVariant,
  loadVariant,
  VARIANTS,
  variantBuilt,
  variantCli,
} from './variants.js';

/** A run directory held by another training that is still stopping (a lost trial's child saving its checkpoint). */
const IN_USE = /in use by another training/;

export interface WorkerOptions {
  url: string;
  /** This machine's runs root (shared storage lets another worker resume a lost trial). */
  root: string;
  /** Trials at once on this machine. */
  concurrency: number;
  /** Threads per trial (GANTRY_THREADS of its process). */
  threads?: number;
  /** How long a trial's lease lasts without a heartbeat before another worker may take it over. */
  leaseMs: number;
  log: (line: string) => void;
  /** Pass the trials' own output through. */
  verbose?: boolean;
}

const GUARD = fileURLToPath(new URL('./orphan-guard.js', import.meta.url));
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const TRIAL_ID = /^t\d{2,6}$/;

/** Why a job cannot be run at all (its shape), or undefined. The job comes from Redis: nothing is trusted. */
function badJob(d: unknown): string | undefined {
  if (!d || typeof d !== 'object') return 'not a trial';
  const j = d as Partial<TrialJob>;
  if (!isVariant(j.variant)) return `unknown variant '${String(j.variant)}' (this worker runs ${VARIANTS.join(', ')})`;
  if (typeof j.sweep !== 'string' || !SAFE_NAME.test(j.sweep)) return `bad sweep name ${JSON.stringify(j.sweep)}`;
  if (typeof j.trial !== 'string' || !TRIAL_ID.test(j.trial)) return `bad trial id ${JSON.stringify(j.trial)}`;
  const tokens = (xs: unknown) => Array.isArray(xs) && xs.every((x) => typeof x === 'string' && x.startsWith('--'));
  if (!tokens(j.args) || !tokens(j.evaluate)) return 'flags must be --name=value tokens';
  if (typeof j.metric !== 'string') return 'no metric';
  return undefined;
}

/** Who holds a run directory's lock (core's `.gantry.lock.json`), if anyone. */
function lockHolder(runDir: string): { pid: number; host: string } | undefined {
  try {
    const o = JSON.parse(fs.readFileSync(path.join(runDir, '.gantry.lock.json'), 'utf8'));
    return Number.isInteger(o.pid) && typeof o.host === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The tail of a child's output, for error messages. */
class Tail {
  private lines: string[] = [];
  private partial = '';
  push(chunk: string) {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts.filter((l) => l.trim()));
    if (this.lines.length > 40) this.lines.splice(0, this.lines.length - 40);
  }
  all(): string[] {
    return this.partial.trim() ? [...this.lines, this.partial] : this.lines;
  }
  /** The child's one-line error (`<app>: error: …`), else its last line. */
  error(): string {
    const all = this.all();
    const e = [...all].reverse().find((l) => / error: /.test(l));
    return (e ?? all.at(-1) ?? '').replace(/^\S+: error: /, '').trim();
  }
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  tail: Tail;
}

export async function startWorker(o: WorkerOptions): Promise<{ worker: Worker; close(): Promise<void> }> {
  const missing = VARIANTS.filter((v) => !variantBuilt(v));
  if (missing.length === VARIANTS.length)
    throw new GantryError(`no variant app is built (${variantCli(VARIANTS[0]!)} missing): run pnpm build first`);
  const host = os.hostname();
  const me = `${host}:${process.pid}`;
  const children = new Set<ChildProcess>();

  const runChild = (variant: string, args: string[], signal: AbortSignal | undefined, tag: string) =>
    new Promise<ChildOutcome>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', GUARD, variantCli(variant), ...args], {
        env: {
          ...process.env,
          GANTRY_RUNS: o.root,
          ...(o.threads ? { GANTRY_THREADS: String(o.threads) } : {}),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group: a Ctrl-C at the worker's terminal reaches the worker, which stops its trials itself.
        detached: true,
      });
      children.add(child);
      const tail = new Tail();
      const take = (d: Buffer) => {
        const s = d.toString();
        tail.push(s);
        if (o.verbose) for (const l of s.split('\n')) if (l.trim()) o.log(`  ${tag} | ${l}`);
      };
      child.stdout!.on('data', take);
      child.stderr!.on('data', take);
      const stop = () => child.kill('SIGTERM');
      signal?.addEventListener('abort', stop, { once: true });
      child.on('error', reject);
      child.on('exit', (code, sig) => {
        children.delete(child);
        signal?.removeEventListener('abort', stop);
        resolve({ code, signal: sig, tail });
      });
    });

  const processTrial = async (job: Job<TrialJob, TrialResult>, token?: string, signal?: AbortSignal) => {
    const why = badJob(job.data);
    if (why) {
      o.log(`${job.id}: refused: ${why}`);
      throw new UnrecoverableError(why);
    }
    const d = job.data;
    const tag = `${d.sweep}/${d.trial}`;
    // Not this trial's fault: fail the attempt (another machine may have the app built; the trial is retried).
    if (!variantBuilt(d.variant)) throw new Error(`${d.variant} is not built on ${host} (pnpm build there)`);
    const def = await loadVariant(d.variant);
    try {
      await checkTrainArgs(def, d.args);
      await checkEvaluateArgs(def, d.evaluate);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      o.log(`${tag}: refused: ${msg}`);
      throw new UnrecoverableError(msg);
    }
    const run = path.join(d.variant, `sweep-${d.sweep}-${d.trial}`);
    const runDir = path.join(o.root, run);
    // The training of a lost attempt on this machine may still be saving its checkpoint: wait for it (a retry).
    const holder = lockHolder(runDir);
    if (holder && holder.host === host && alive(holder.pid))
      throw new Error(`${runDir} is still in use by pid ${holder.pid} (retried)`);
    const checkpoint = latestCheckpoint(runDir);
    const resumedFrom = checkpoint ? readCheckpointState(checkpoint).step : undefined;
    // A run directory without a complete checkpoint holds nothing to continue from: start over.
    if (!checkpoint && fs.existsSync(runDir)) fs.rmSync(runDir, { recursive: true, force: true });
    const settings = Object.entries(d.settings).map(([k, v]) => `${k} ${v}`);
    o.log(
      `${tag}: ${resumedFrom !== undefined ? `resuming from step ${resumedFrom}` : 'start'}${settings.length ? ` (${settings.join(', ')})` : ''} → ${runDir}`,
    );
    const t0 = Date.now();
    const stopped = async (what: string, r: ChildOutcome) => {
      if (signal?.aborted) {
        if (signal.reason === 'shutdown' && token) {
          // This worker is stopping: the trial goes back to the queue (its checkpoint saved), no attempt used.
          o.log(`${tag}: handed back to the queue (worker stopping)`);
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
        }
        throw new Error(`${what} stopped: the trial's lease was lost to another worker`);
      }
      if (r.code === 2 && !IN_USE.test(r.tail.error())) {
        // The variant's own check refused the input (a flag, its data): failing again elsewhere would not help.
        const msg = r.tail.error();
        o.log(`${tag}: failed: ${msg}`);
        throw new UnrecoverableError(msg);
      }
      const msg = `${what} exited with ${r.signal ?? `code ${r.code}`}: ${r.tail.error()}`;
      o.log(`${tag}: attempt failed: ${msg}`);
      throw new Error(msg);
    };
    const resumeArg = checkpoint ? `--resume=${runDir}` : `--out=${runDir}`;
    const trained = await runChild(d.variant, ['train', ...d.args, resumeArg, '--progress=false'], signal, tag);
    if (trained.code !== 0 || signal?.aborted) await stopped('train', trained);
    const evaluated = await runChild(d.variant, ['evaluate', `--checkpoint=${runDir}`, ...d.evaluate], signal, tag);
    if (evaluated.code !== 0 || signal?.aborted) await stopped('evaluate', evaluated);

    const evaluation = JSON.parse(fs.readFileSync(path.join(runDir, 'evaluation.json'), 'utf8'));
    const figures = Object.fromEntries(Object.entries(flattenFigures(evaluation)).filter(([k]) => !k.includes('[')));
    const last = latestCheckpoint(runDir);
    const result: TrialResult = {
      host,
      worker: me,
      run,
      step: last ? readCheckpointState(last).step : 0,
      ...(resumedFrom !== undefined ? { resumedFrom } : {}),
      seconds: (Date.now() - t0) / 1000,
      figures,
      ...(typeof figures[d.metric] === 'number' ? { metric: figures[d.metric] } : {}),
    };
    o.log(
      `${tag}: done at step ${result.step} in ${result.seconds.toFixed(1)} s: ${d.metric} ${result.metric ?? `missing (figures: ${Object.keys(figures).join(', ')})`}`,
    );
    return result;
  };

  const connection = connect(o.url);
  const worker = new Worker<TrialJob, TrialResult>(QUEUE, processTrial, {
    connection,
    prefix: PREFIX,
    name: me,
    concurrency: o.concurrency,
    lockDuration: o.leaseMs,
    stalledInterval: Math.max(500, Math.round(o.leaseMs / 2)),
    // A trial may be handed on several times (machines going away) before it is failed for good.
    maxStalledCount: 5,
  });
  // A lease this worker could not renew belongs to another worker now: stop that trial's child (it checkpoints).
  worker.on('lockRenewalFailed', (ids: string[]) => {
    for (const id of ids) worker.cancelJob(id, 'lost');
  });
  worker.on('error', (err) => {
    if (o.verbose) o.log(`queue: ${err.message}`);
  });
  await worker.waitUntilReady();
  o.log(
    `worker ${me}: ${o.concurrency} trial(s) at once${o.threads ? `, ${o.threads} thread(s) each` : ''}; runs in ${o.root}; queue ${o.url.replace(/\/\/[^@/]*@/, '//***@')}${missing.length ? ` (not built, refused: ${missing.join(', ')})` : ''}`,
  );
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      worker.cancelAllJobs('shutdown');
      // Handing trials back needs Redis; if it is gone for good, stop anyway (their leases run out instead).
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(
          () => {
            o.log('worker: Redis does not answer; stopping without handing the trials back (their leases run out)');
            for (const c of children) c.kill('SIGTERM');
            resolve();
          },
          Math.max(10_000, o.leaseMs),
        );
      });
      await Promise.race([worker.close(), timeout]);
      clearTimeout(timer);
      if (children.size)
        await Promise.race([
          Promise.all([...children].map((c) => new Promise((r) => c.once('exit', r)))),
          new Promise((r) => setTimeout(r, 10_000)),
        ]);
      connection.disconnect();
    })());
  return { worker, close };
}
