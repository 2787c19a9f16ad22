/**
 * The queue: one BullMQ queue on Redis shared by every sweep, one job per trial (job id `<sweep>--<trial>`, so
 * submitting a sweep again adds nothing twice), and a hash per sweep with its spec and trial list. A trial's result
 * (its evaluation figures) is the job's return value, kept in Redis with the job: the ranked table and the sweep
 * report need only Redis, not the machines' run directories.
 */
import { createHash } from 'node:crypto';
import { GantryError } from '@gantry/core';
import { type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { flagTokens, type Scalar, type SweepSpec, type Trial } from './spec.js';

export const QUEUE = 'trials';
export const PREFIX = 'gantry';
/** Failed attempts (a crash, not bad flags) before a trial is failed for good. */
export const ATTEMPTS = 3;

/** What a job carries: flags as command-line tokens, never code. */
export interface TrialJob {
  sweep: string;
  trial: string;
  variant: string;
  /** Train flags (`--name=value`), checked again by the worker. */
  args: string[];
  /** Evaluate flags, likewise. */
  evaluate: string[];
  settings: Record<string, Scalar>;
  metric: string;
}

/** What a worker reports back for a finished trial. */
export interface TrialResult {
  host: string;
  /** The worker that finished it (`host:pid`). */
  worker: string;
  /** The run directory on that host (relative to its runs root: `<variant>/sweep-<name>-<trial>`). */
  run: string;
  /** The step the run reached, and where a resumed attempt started from. */
  step: number;
  resumedFrom?: number;
  /** Seconds of training and evaluating in the attempt that finished it. */
  seconds: number;
  /** Every numeric figure of evaluation.json, flattened (`images.frechet`), per-class breakdowns left out. */
  figures: Record<string, number>;
  /** The spec's metric, when the figures have it. */
  metric?: number;
}

export interface TrialRow {
  trial: string;
  settings: Record<string, Scalar>;
  state: string;
  attempts: number;
  result?: TrialResult;
  error?: string;
}

export interface SweepMeta {
  spec: SweepSpec;
  trials: Trial[];
  created: string;
}

/** The Redis URL from `--redis` or GANTRY_REDIS, checked. */
export function redisUrl(flag: string | undefined): string | undefined {
  const url = flag ?? process.env.GANTRY_REDIS;
  if (url === undefined || url === '') return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new GantryError(`--redis ${url}: expected a Redis URL (redis://host:port)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new GantryError(`--redis ${url}: expected a redis:// or rediss:// URL`);
  return url;
}

/** A connection for BullMQ: it retries for ever while Redis is away (a restart loses nothing; commands wait). */
export function connect(url: string): Redis {
  const r = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  });
  // Connection errors while Redis restarts are expected: ioredis reconnects; callers that need Redis wait.
  r.on('error', () => {});
  return r;
}

/** Fails fast with a one-line error when nothing answers at `url`. */
export async function ping(url: string, timeoutMs = 5000): Promise<void> {
  const r = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  r.on('error', () => {});
  try {
    await Promise.race([
      r.connect().then(() => r.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), timeoutMs)),
    ]);
  } catch (err) {
    throw new GantryError(`--redis ${url}: no Redis answers (${(err as Error).message})`);
  } finally {
    r.disconnect();
  }
}

export const jobId = (sweep: string, trial: string) => `${sweep}--${trial}`;
const metaKey = (sweep: string) => `${PREFIX}:sweep:${sweep}`;
const specHash = (spec: SweepSpec) => createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);

export function openQueue(connection: Redis): Queue<TrialJob, TrialResult> {
  const queue = new Queue<TrialJob, TrialResult>(QUEUE, { connection, prefix: PREFIX });
  // While Redis restarts the connection reports errors; commands wait for it to come back.
  queue.on('error', () => {});
  return queue;
}

/**
 * Queues the sweep's trials. A sweep of the same name and spec again adds only the trials that are missing and
 * retries those that failed; one of the same name with another spec is refused.
 */
export async function submitSweep(
  url: string,
  spec: SweepSpec,
  trials: Trial[],
): Promise<{ added: number; retried: number; existing: number }> {
  const redis = connect(url);
  const queue = openQueue(redis);
  try {
    const hash = specHash(spec);
    const old = await redis.hget(metaKey(spec.name), 'hash');
    if (old && old !== hash)
      throw new GantryError(
        `name: a sweep '${spec.name}' with another spec is already on ${url} (choose another name)`,
      );
    if (!old)
      await redis.hset(metaKey(spec.name), {
        hash,
        spec: JSON.stringify(spec),
        trials: JSON.stringify(trials),
        created: new Date().toISOString(),
      });
    let added = 0;
    let retried = 0;
    let existing = 0;
    for (const t of trials) {
      const id = jobId(spec.name, t.id);
      const job = await queue.getJob(id);
      if (job) {
        existing++;
        if ((await job.getState()) === 'failed') {
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          retried++;
        }
        continue;
      }
      const data: TrialJob = {
        sweep: spec.name,
        trial: t.id,
        variant: spec.variant,
        args: t.args,
        evaluate: flagTokens(spec.evaluate),
        settings: t.settings,
        metric: spec.metric,
      };
      await queue.add(t.id, data, {
        jobId: id,
        attempts: ATTEMPTS,
        backoff: { type: 'fixed', delay: 2000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
      added++;
    }
    return { added, retried, existing };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** The sweep's spec and trials as submitted. */
export async function readMeta(redis: Redis, name: string, url: string): Promise<SweepMeta> {
  const h = await redis.hgetall(metaKey(name));
  if (!h.spec) {
    const names = (await redis.keys(`${PREFIX}:sweep:*`)).map((k) => k.slice(`${PREFIX}:sweep:`.length)).sort();
    throw new GantryError(
      `--sweep ${name}: no such sweep on ${url}${names.length ? ` (there: ${names.join(', ')})` : ''}`,
    );
  }
  return { spec: JSON.parse(h.spec), trials: JSON.parse(h.trials!), created: h.created ?? '' };
}

/** Every trial of a sweep with its state, attempts, result or error. */
export async function readSweep(url: string, name: string): Promise<{ meta: SweepMeta; rows: TrialRow[] }> {
  const redis = connect(url);
  const queue = openQueue(redis);
  try {
    const meta = await readMeta(redis, name, url);
    const rows: TrialRow[] = [];
    for (const t of meta.trials) {
      // The state first, then the job: read the other way round, a trial that completes in between would read as
      // completed with the return value it did not have yet.
      const known = await queue.getJobState(jobId(name, t.id));
      const job = (await queue.getJob(jobId(name, t.id))) as Job<TrialJob, TrialResult> | undefined;
      const state = job && known !== 'unknown' ? known : 'missing';
      rows.push({
        trial: t.id,
        settings: t.settings,
        // Delayed: handed back by a stopping worker, or waiting out a retry's back-off.
        state: ['prioritized', 'waiting-children', 'delayed'].includes(state) ? 'waiting' : state,
        attempts: job?.attemptsStarted ?? 0,
        result: state === 'completed' ? (job?.returnvalue ?? undefined) : undefined,
        error: state === 'failed' ? job?.failedReason : undefined,
      });
    }
    return { meta, rows };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** Waits until no trial of the sweep is waiting or running; `onChange` hears each state change. */
export async function waitForSweep(
  url: string,
  name: string,
  onChange: (row: TrialRow) => void = () => {},
  pollMs = 1000,
): Promise<{ meta: SweepMeta; rows: TrialRow[] }> {
  const seen = new Map<string, string>();
  for (;;) {
    const r = await readSweep(url, name);
    for (const row of r.rows) {
      const key = `${row.state}/${row.attempts}`;
      if (seen.get(row.trial) !== key) {
        seen.set(row.trial, key);
        onChange(row);
      }
    }
    if (r.rows.every((x) => x.state === 'completed' || x.state === 'failed' || x.state === 'missing')) return r;
    await new Promise((res) => setTimeout(res, pollMs));
  }
}
