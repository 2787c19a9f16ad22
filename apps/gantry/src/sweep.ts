/**
 * `gantry sweep SPEC`, `gantry worker`, and the sweep side of `gantry runs --sweep` / `gantry report --sweep`
 * (docs/sweeps.md). @gantry/sweep is loaded only when one of them runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { flag, GantryError, readFlags, userPath, yargsOptions } from '@gantry/core';

type Sweep = typeof import('@gantry/sweep');
const load = (): Promise<Sweep> => import('@gantry/sweep');

export const redisOptions = {
  redis: { type: 'string', describe: 'Redis URL of the queue (redis://host:port; env GANTRY_REDIS)' },
  local: {
    type: 'boolean',
    default: false,
    describe: "this machine's own Redis on loopback (started when needed; data in <runs>/sweeps/.redis)",
  },
} as const;

/** The worker flags (typed, checked as every command's flags are); `sweep --local` passes them to its workers. */
export const WORKER_FLAGS = {
  concurrency: flag.positiveInt('trials at once on this machine', { default: 1 }),
  threads: flag.positiveInt('threads per trial (GANTRY_THREADS of its process)'),
  lease: flag.positiveInt("seconds a trial stays a worker's without a heartbeat before another worker takes it over", {
    default: 30,
  }),
};
/** `sweep`'s own: how many local workers to start. */
export const SWEEP_FLAGS = {
  ...WORKER_FLAGS,
  workers: flag.positiveInt('with --local: worker processes here (default: 2)'),
};
export const workerOptions = yargsOptions(WORKER_FLAGS);
export const sweepOptions = yargsOptions(SWEEP_FLAGS);

/** The queue's Redis: `--redis`/GANTRY_REDIS, or with `--local` this machine's (stopped again by `done`). */
export async function openRedis(
  s: Sweep,
  a: { redis?: unknown; local?: unknown },
  root: string,
): Promise<{ url: string; done: () => Promise<void> }> {
  const given = a.redis !== undefined ? String(a.redis) : undefined;
  if (a.local) {
    if (given) throw new GantryError('--local and --redis: give one (--local runs a Redis on this machine)');
    const server = await s.localRedis(root);
    return { url: server.url, done: server.stop };
  }
  const url = s.redisUrl(given);
  if (!url) throw new GantryError('--redis: expected a Redis URL (or GANTRY_REDIS), or --local for this machine alone');
  await s.ping(url);
  return { url, done: async () => {} };
}

export function reportFile(root: string, sweep: string): string {
  return path.join(root, 'sweeps', sweep, 'report.html');
}

/** Starts `n` worker processes of this program on this machine, their lines prefixed with w1, w2…. */
function startLocalWorkers(n: number, url: string, root: string, a: Record<string, unknown>): ChildProcess[] {
  const perTrial = Number(a.threads ?? Math.max(1, Math.floor(os.cpus().length / (n * Number(a.concurrency)))));
  return Array.from({ length: n }, (_, i) => {
    const args = [
      process.argv[1]!,
      'worker',
      `--redis=${url}`,
      `--root=${root}`,
      `--concurrency=${a.concurrency}`,
      `--threads=${perTrial}`,
      `--lease=${a.lease}`,
      ...(a.verbose ? ['--verbose'] : []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) console.error(`w${i + 1} ${l}`);
    });
    return child;
  });
}

export async function sweepCommand(args: Record<string, unknown>, root: string): Promise<void> {
  const a: Record<string, unknown> = { ...args, ...readFlags(SWEEP_FLAGS, args) };
  const s = await load();
  const { spec, trials } = await s.prepareSweep(userPath(String(a.spec)));
  const workers = Number(a.workers ?? 0);
  if (workers && !a.local) throw new GantryError('--workers: only with --local (elsewhere start pnpm gantry worker)');
  const redis = await openRedis(s, a, root);
  const local: ChildProcess[] = [];
  try {
    const r = await s.submitSweep(redis.url, spec, trials);
    console.error(
      `sweep ${spec.name}: ${trials.length} trials of ${spec.variant} on ${a.local ? 'this machine' : redis.url} (${r.added} queued${r.existing ? `, ${r.existing} there already` : ''}${r.retried ? `, ${r.retried} failed ones retried` : ''})`,
    );
    if (!a.local && !a.wait) {
      console.error(
        `start workers (any machine): pnpm gantry worker --redis ${redis.url}\nfollow: pnpm gantry runs --sweep ${spec.name} --redis ${redis.url}`,
      );
      return;
    }
    if (a.local) local.push(...startLocalWorkers(workers || 2, redis.url, root, a));
    else console.error(`waiting for workers (pnpm gantry worker --redis ${redis.url}) to finish the trials…`);
    // Local workers that all exit (not built, cannot start) would leave the wait without an end.
    const gone = local.length
      ? Promise.all(local.map((c) => new Promise((r) => c.once('exit', r)))).then(() => {
          throw new GantryError('the local workers exited before the sweep was done (their last lines are above)');
        })
      : new Promise<never>(() => {});
    gone.catch(() => {}); // the workers stopped at the end below are no error
    // Ctrl-C: the workers hand their trials back (they got the signal too, or get SIGTERM below); all stay queued.
    let onSignal = () => {};
    const interrupted = new Promise<never>((_, reject) => {
      onSignal = () =>
        reject(
          new GantryError(
            `interrupted; the trials stay queued${a.local ? ', and the same command again continues the sweep' : ''}`,
            130,
          ),
        );
    });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const { meta, rows } = await Promise.race([s.waitForSweep(redis.url, spec.name), gone, interrupted]);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    console.log(s.sweepTable(meta, rows));
    console.log(`report: ${s.writeSweepReport(reportFile(root, spec.name), meta, rows)}`);
    if (rows.some((x) => x.state === 'failed')) process.exitCode = 1;
  } finally {
    await Promise.all(
      local.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    await redis.done();
  }
}

export async function workerCommand(args: Record<string, unknown>, root: string): Promise<void> {
  const a: Record<string, unknown> = { ...args, ...readFlags(WORKER_FLAGS, args) };
  const s = await load();
  const redis = await openRedis(s, a, root);
  const log = (l: string) => console.error(l);
  const w = await s.startWorker({
    url: redis.url,
    root,
    concurrency: Number(a.concurrency),
    threads: a.threads === undefined ? undefined : Number(a.threads),
    leaseMs: Number(a.lease) * 1000,
    log,
    verbose: Boolean(a.verbose),
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      // A second Ctrl-C quits at once (the trials' leases run out and other workers take them over).
      if (stopping && sig === 'SIGINT') process.exit(130);
      if (stopping) return;
      stopping = true;
      log(`worker: ${sig}: stopping; running trials are checkpointed and handed back to the queue`);
      w.close()
        .then(() => redis.done())
        .then(() => resolve());
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  // Redis connections that are still retrying (a Redis gone for good) must not keep a stopped worker alive.
  process.exit(process.exitCode ?? 0);
}

export async function sweepRuns(a: Record<string, unknown>, root: string): Promise<void> {
  const s = await load();
  const redis = await openRedis(s, a, root);
  try {
    const { meta, rows } = await s.readSweep(redis.url, String(a.sweep));
    console.log(a.json ? JSON.stringify(s.rankRows(meta, rows), null, 2) : s.sweepTable(meta, rows));
  } finally {
    await redis.done();
  }
}

export async function sweepReport(a: Record<string, unknown>, root: string): Promise<void> {
  const s = await load();
  const redis = await openRedis(s, a, root);
  try {
    const { meta, rows } = await s.readSweep(redis.url, String(a.sweep));
    console.log(s.writeSweepReport(reportFile(root, meta.spec.name), meta, rows));
  } finally {
    await redis.done();
  }
}
