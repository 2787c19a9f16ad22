/**
 * Sweeps on a queue that several workers share (docs/sweeps.md), on loopback only: a Redis started here (its own
 * port and folder, append-only file), three `gantry worker` processes sharing one runs root, six tiny DCGAN trials.
 * One worker is killed mid-trial and another finishes that trial from its last checkpoint; Redis is killed and
 * restarted mid-sweep; every trial is done once. Jobs the workers must refuse (an unknown variant, a bad flag) fail
 * once without a retry, and a bad spec is a one-line error naming its field.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readLossLog } from '@gantry/core';
import {
  connect,
  openQueue,
  PREFIX,
  type RedisServer,
  readSweep,
  redisMissingReason,
  startRedis,
  type TrialJob,
} from '@gantry/sweep';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runApp } from './run-app.js';

const missing = redisMissingReason();
if (missing) console.warn(`tests/sweep.test.ts skipped: ${missing} (CI installs it: .ci/run)`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-sweep-'));
const at = (...p: string[]) => path.join(tmp, ...p);
const root = at('runs');
const env = { GANTRY_RUNS: root, GANTRY_DATA_CACHE: at('cache'), INIT_CWD: tmp, GANTRY_REDIS: '' };
const STEPS = 40;

const spec = (name = 'tiny', vary = 'grid:\n  lr: [0.0002, 0.0008]\nseeds: [1, 2, 3]\n') => `
name: ${name}
variant: dcgan
metric: images.frechet
flags:
  data: scenes:day
  image-size: 32
  ngf: 4
  ndf: 4
  limit: 32
  batch-size: 4
  steps: ${STEPS}
  sample-every: 0
  checkpoint-every: 5
${vary}evaluate:
  count: 8
`;

interface Proc {
  child: ChildProcess;
  log: string[];
  exited: Promise<void>;
}

function startWorker(url: string, runs = root): Proc {
  const cli = path.join(repoRoot, 'apps', 'gantry', 'dist', 'cli.js');
  const child = spawn(
    process.execPath,
    [cli, 'worker', `--redis=${url}`, `--root=${runs}`, '--lease=3', '--threads=1'],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log: string[] = [];
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    log.push(...lines);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, log, exited };
}

async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, timeoutMs = 90_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The newest complete checkpoint's step of a run directory (0: none yet). */
function checkpointStep(dir: string): number {
  try {
    const steps = fs
      .readdirSync(path.join(dir, 'checkpoints'))
      .filter((n) => fs.existsSync(path.join(dir, 'checkpoints', n, 'state.json')))
      .map((n) => Number(n.replace('step-', '')));
    return Math.max(0, ...steps);
  } catch {
    return 0;
  }
}

describe.skipIf(missing)('sweeps on a shared queue', () => {
  let redis: RedisServer;
  let url: string;
  const workers: Proc[] = [];

  beforeAll(async () => {
    redis = await startRedis(at('redis'));
    url = redis.url;
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await redis?.stop();
  });

  it('a bad spec is a one-line error naming its field, and nothing is queued', async () => {
    fs.writeFileSync(at('bad.yaml'), spec().replace('lr: [0.0002, 0.0008]', 'lr: [0.0002, -1]'));
    const r = await runApp('gantry', ['sweep', at('bad.yaml'), '--redis', url], env);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toEqual([
      `gantry: error: ${at('bad.yaml')}: grid.lr: --lr: expected a positive number, got '-1'`,
    ]);
    fs.writeFileSync(at('bad3.yaml'), spec().replace('variant: dcgan', 'variant: dcgann'));
    const r3 = await runApp('gantry', ['sweep', at('bad3.yaml'), '--redis', url], env);
    expect(r3.code).toBe(2);
    expect(r3.err).toContain("variant: unknown variant 'dcgann'");
    const redisClient = connect(url);
    expect(await redisClient.keys(`${PREFIX}:*`)).toEqual([]);
    redisClient.disconnect();
  });

  it('runs six trials on three workers through a worker kill and a Redis restart, each trial once', async () => {
    fs.writeFileSync(at('tiny.yaml'), spec());
    const submitted = await runApp('gantry', ['sweep', at('tiny.yaml'), '--redis', url], env);
    expect(submitted.err).toContain('sweep tiny: 6 trials of dcgan');
    expect(submitted.code).toBe(0);

    // Jobs a worker must refuse, put on the queue by hand (a producer that skipped the checks, or a forged one).
    const connection = connect(url);
    const queue = openQueue(connection);
    const forged = (variant: string, args: string[]): TrialJob => ({
      sweep: 'forged',
      trial: variant === 'dcgan' ? 't02' : 't01',
      variant,
      args,
      evaluate: [],
      settings: {},
      metric: 'x',
    });
    const opts = { attempts: 3, removeOnComplete: false, removeOnFail: false };
    await queue.add('t01', forged('evil', ['--steps=1']), { ...opts, jobId: 'forged--t01' });
    await queue.add('t02', forged('dcgan', ['--lr=-1', '--data=scenes:day']), { ...opts, jobId: 'forged--t02' });

    for (let i = 0; i < 3; i++) workers.push(startWorker(url));

    // Kill the worker of the first trial to reach a checkpoint, early (its child stops a few steps later at most).
    const runDir = (trial: string) => path.join(root, 'dcgan', `sweep-tiny-${trial}`);
    const trials = ['t01', 't02', 't03', 't04', 't05', 't06'];
    const victim = await until('a trial with a checkpoint', () =>
      trials.find((t) => {
        const s = checkpointStep(runDir(t));
        return s >= 5 && s <= 15;
      }),
    );
    const owner = workers.find((w) => w.log.some((l) => l.includes(`tiny/${victim}: start`)))!;
    expect(owner).toBeDefined();
    const killedPid = owner.child.pid!;
    owner.child.kill('SIGKILL');
    await owner.exited;
    const survivors = workers.filter((w) => w !== owner);
    // Another worker takes the trial over once its lease runs out, from the last checkpoint.
    await until('the takeover', () =>
      survivors.some((w) => w.log.some((l) => l.includes(`tiny/${victim}: resuming from step`))),
    );

    // Redis goes away mid-sweep (SIGKILL: no goodbye) and comes back on the same port from its append-only file.
    redis.child!.kill('SIGKILL');
    await new Promise<void>((r) => redis.child!.once('exit', () => r()));
    await new Promise((r) => setTimeout(r, 500));
    redis = await startRedis(at('redis'), redis.port);

    const done = await until(
      'the sweep to finish',
      async () => {
        const r = await readSweep(url, 'tiny');
        return r.rows.every((x) => x.state === 'completed' || x.state === 'failed') ? r : undefined;
      },
      150_000,
    );
    expect(done.rows.map((r) => r.state)).toEqual(Array(6).fill('completed'));
    for (const r of done.rows) {
      expect(r.result!.step).toBe(STEPS);
      expect(typeof r.result!.metric).toBe('number');
      // Shared storage: the run is where every worker keeps its runs, an ordinary run with its report.
      const dir = path.join(root, r.result!.run);
      expect(fs.existsSync(path.join(dir, 'report.html'))).toBe(true);
      expect(readLossLog(path.join(dir, 'losses.jsonl')).map((e) => e.step)).toEqual(
        Array.from({ length: STEPS }, (_, i) => i + 1),
      );
    }
    const killed = done.rows.find((r) => r.trial === victim)!;
    expect(killed.result!.resumedFrom).toBeGreaterThanOrEqual(5);
    // …from where the killed worker's child stopped (it stops with its worker), not from a run it finished alone.
    expect(killed.result!.resumedFrom).toBeLessThan(STEPS);
    expect(killed.attempts).toBe(2);
    expect(killed.result!.worker).not.toBe(`${os.hostname()}:${killedPid}`);
    // No trial ran twice to completion: one "done" line per trial over all workers.
    const doneLines = workers.flatMap((w) => w.log.filter((l) => /tiny\/t\d+: done at step/.test(l)));
    expect(doneLines.length).toBe(6);
    expect(new Set(doneLines.map((l) => /tiny\/(t\d+)/.exec(l)![1])).size).toBe(6);

    // The refused jobs failed once each, with the reason, and were not retried.
    for (const [id, why] of [
      ['forged--t01', "unknown variant 'evil'"],
      ['forged--t02', "--lr: expected a positive number, got '-1'"],
    ] as const) {
      const job = (await queue.getJob(id))!;
      expect(await job.getState()).toBe('failed');
      expect(job.failedReason).toContain(why);
      expect(job.attemptsStarted).toBe(1);
    }
    expect(fs.existsSync(path.join(root, 'evil'))).toBe(false);
    await queue.close();
    connection.disconnect();

    // The ranked table and the report page.
    const ranked = await runApp('gantry', ['runs', '--sweep', 'tiny', '--redis', url, '--json'], env);
    expect(ranked.code).toBe(0);
    const rows = JSON.parse(ranked.out) as { rank: number; result: { metric: number } }[];
    expect(rows.map((r) => r.rank)).toEqual([1, 2, 3, 4, 5, 6]);
    const metrics = rows.map((r) => r.result.metric);
    expect(metrics).toEqual([...metrics].sort((a, b) => a - b));
    const table = await runApp('gantry', ['runs', '--sweep', 'tiny', '--redis', url], env);
    expect(table.out).toContain('6 of 6 trials done; ranked by images.frechet (lower is better)');
    const report = await runApp('gantry', ['report', '--sweep', 'tiny', '--redis', url], env);
    expect(report.code).toBe(0);
    const html = fs.readFileSync(report.out.trim(), 'utf8');
    expect(html.match(/<canvas id="plot-/g)?.length).toBe(2); // lr and seed
    expect(html.match(/<tr/g)!.length).toBe(7);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // self-contained

    // Stopped workers leave nothing running.
    for (const w of survivors) w.child.kill('SIGTERM');
    await Promise.all(survivors.map((w) => w.exited));
    expect(survivors.map((w) => w.child.exitCode)).toEqual([0, 0]);
  }, 200_000);

  it("a worker that cannot reach a lost trial's run directory starts it over, and its figures still come back", async () => {
    fs.writeFileSync(at('solo.yaml'), spec('solo', ''));
    expect((await runApp('gantry', ['sweep', at('solo.yaml'), '--redis', url], env)).code).toBe(0);
    // Two machines without shared storage: each worker has its own runs root.
    const [rootA, rootB] = [at('runs-a'), at('runs-b')];
    const a = startWorker(url, rootA);
    workers.push(a);
    await until('the first machine to take the trial', () => a.log.some((l) => l.includes('solo/t01: start')));
    const b = startWorker(url, rootB);
    workers.push(b);
    await until(
      'a checkpoint on the first machine',
      () => checkpointStep(path.join(rootA, 'dcgan', 'sweep-solo-t01')) >= 10,
    );
    a.child.kill('SIGKILL');
    await a.exited;
    const done = await until('the trial to finish', async () => {
      const r = await readSweep(url, 'solo');
      return r.rows[0]!.state === 'completed' ? r.rows[0]! : undefined;
    });
    expect(done.result!.resumedFrom).toBeUndefined();
    expect(done.result!.worker).toBe(`${os.hostname()}:${b.child.pid}`);
    expect(done.result!.step).toBe(STEPS);
    expect(typeof done.result!.metric).toBe('number');
    expect(b.log.some((l) => l.includes('solo/t01: start →'))).toBe(true);
    const steps = readLossLog(path.join(rootB, done.result!.run, 'losses.jsonl')).map((e) => e.step);
    expect(steps).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    b.child.kill('SIGTERM');
    await b.exited;
  }, 120_000);
});
