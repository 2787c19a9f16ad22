/**
 * Interrupted runs: SIGKILL at arbitrary moments (checkpoint writes included) never leaves a checkpoint that
 * --resume cannot use, and Ctrl-C (SIGINT) checkpoints before exiting.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'apps', 'cgan', 'dist', 'cli.js');
// Tiny networks and a checkpoint every step, so kills often land inside a checkpoint write.
const small = [
  '--batch-size',
  '8',
  '--limit',
  '256',
  '--ngf',
  '4',
  '--ndf',
  '4',
  '--keep',
  '2',
  '--sample-every',
  '0',
  '--progress',
  'false',
];

function start(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: string | null; err: string }>;
} {
  const child = spawn(process.execPath, [cli, 'train', ...args], { env: { ...process.env, INIT_CWD: root } });
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const done = new Promise<{ code: number | null; signal: string | null; err: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, err })),
  );
  return { child, done };
}

const lossLines = (run: string) =>
  fs.existsSync(path.join(run, 'losses.jsonl'))
    ? fs.readFileSync(path.join(run, 'losses.jsonl'), 'utf8').split('\n').length
    : 0;

const checkpoints = (run: string) =>
  fs.existsSync(path.join(run, 'checkpoints'))
    ? fs.readdirSync(path.join(run, 'checkpoints')).filter((n) => n.startsWith('step-'))
    : [];

async function waitFor(cond: () => boolean, child: ChildProcess, timeoutMs = 120_000) {
  const t0 = Date.now();
  while (!cond()) {
    if (child.exitCode !== null) throw new Error(`the training process exited early (${child.exitCode})`);
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('interrupted training', () => {
  it('survives repeated SIGKILLs: --resume finds the last complete checkpoint and continues the step count', async () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-kill-'));
    const total = 2000;
    let first = true;
    let kills = 0;
    // Kill at different moments after training has started: between steps and inside checkpoint writes.
    for (const delay of [0, 37, 91, 150, 233]) {
      const { child, done } = start([
        '--steps',
        String(total),
        ...small,
        '--checkpoint-every',
        '1',
        ...(first ? ['--out', run] : ['--resume', run]),
      ]);
      await waitFor(() => checkpoints(run).length > 0, child);
      const before = Math.max(...checkpoints(run).map((n) => Number(n.slice(5))));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      const r = await done;
      first = false;
      expect(r.signal, r.err).toBe('SIGKILL');
      kills++;
      // Every visible checkpoint is complete and parses.
      for (const n of checkpoints(run)) {
        const state = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', n, 'state.json'), 'utf8'));
        expect(state.step).toBe(Number(n.slice(5)));
        expect(fs.existsSync(path.join(run, 'checkpoints', n, 'generator', 'model.json'))).toBe(true);
      }
      expect(Math.max(...checkpoints(run).map((n) => Number(n.slice(5))))).toBeGreaterThanOrEqual(before);
    }
    expect(kills).toBe(5);
    const latest = Math.max(...checkpoints(run).map((n) => Number(n.slice(5))));
    const last = start(['--resume', run, '--steps', String(latest + 5), '--checkpoint-every', '0']);
    const r = await last.done;
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`step-${String(latest).padStart(8, '0')} at step ${latest}`);
    expect(r.err).toContain(`done at step ${latest + 5}`);
    // Interrupted checkpoint writes leave nothing behind once a later checkpoint succeeds.
    expect(fs.readdirSync(path.join(run, 'checkpoints')).filter((n) => !n.startsWith('step-'))).toEqual([]);
  }, 600_000);

  it('Ctrl-C checkpoints the current step and exits with 130', async () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-int-'));
    const { child, done } = start(['--steps', '100000', ...small, '--checkpoint-every', '0', '--out', run]);
    await waitFor(
      () =>
        fs.existsSync(path.join(run, 'losses.jsonl')) &&
        fs.readFileSync(path.join(run, 'losses.jsonl'), 'utf8').split('\n').length > 3,
      child,
    );
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.err).toMatch(/interrupt \(SIGINT\): saving a checkpoint/);
    const saved = checkpoints(run);
    expect(saved).toHaveLength(1);
    const step = Number(saved[0]!.slice(5));
    expect(r.err).toContain(`interrupted at step ${step}`);
    expect(step).toBeGreaterThan(2);
  }, 300_000);

  it('SIGTERM is handled like Ctrl-C: a checkpoint of the current step, exit code 143', async () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-term-'));
    const { child, done } = start(['--steps', '100000', ...small, '--checkpoint-every', '0', '--out', run]);
    await waitFor(() => lossLines(run) > 3, child);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.err).toBe(143);
    expect(r.err).toMatch(/interrupt \(SIGTERM\): saving a checkpoint/);
    const saved = checkpoints(run);
    expect(saved).toHaveLength(1);
    expect(r.err).toContain(`interrupted at step ${Number(saved[0]!.slice(5))}`);
  }, 300_000);

  it('a second Ctrl-C soon after the first quits between steps, without a crash, three times in a row', async () => {
    for (let i = 0; i < 3; i++) {
      const run = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-int2-'));
      const { child, done } = start(['--steps', '100000', ...small, '--checkpoint-every', '0', '--out', run]);
      await waitFor(() => lossLines(run) > 3, child);
      child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGINT');
      const r = await done;
      // Exited by itself (no abort signal), with the shell's Ctrl-C code.
      expect(r.signal, r.err).toBeNull();
      expect(r.code, r.err).toBe(130);
      expect(r.err).not.toMatch(/corrupted|free\(\)|Aborted|double free|Segmentation/);
      expect(r.err).toMatch(/quitting after this step without saving|interrupted at step/);
      // Whatever was saved is complete.
      for (const n of checkpoints(run))
        expect(fs.existsSync(path.join(run, 'checkpoints', n, 'state.json'))).toBe(true);
      const folder = path.join(run, 'checkpoints');
      if (fs.existsSync(folder)) expect(fs.readdirSync(folder).filter((n) => !n.startsWith('step-'))).toEqual([]);
    }
  }, 300_000);

  it("refuses a second training in a run directory in use, naming the holder's pid", async () => {
    const run = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-lock-'));
    const first = start(['--steps', '100000', ...small, '--checkpoint-every', '5', '--out', run]);
    await waitFor(() => checkpoints(run).length > 0, first.child);
    const second = start(['--resume', run, '--steps', '100000', ...small]);
    const r = await second.done;
    expect(r.code, r.err).toBe(2);
    expect(r.err.trim().split('\n').at(-1)).toBe(
      `cgan: error: ${run}: in use by another training (pid ${first.child.pid}); wait for it to end or choose another run directory`,
    );
    first.child.kill('SIGINT');
    const f = await first.done;
    expect(f.code, f.err).toBe(130);
    // Only the first training wrote the loss log: each step once, in order.
    const logged = fs
      .readFileSync(path.join(run, 'losses.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step);
    expect(logged).toEqual(logged.map((_: number, i: number) => i + 1));
    // The lock is released: resuming now works.
    const third = start(['--resume', run, '--steps', String(Math.max(...logged) + 2), ...small]);
    expect((await third.done).code).toBe(0);
  }, 300_000);

  it('two new trainings into one empty --out: one runs, the other is refused before writing anything', async () => {
    const run = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-race-')), 'run');
    const a = start(['--steps', '20', ...small, '--checkpoint-every', '5', '--out', run]);
    const b = start(['--steps', '20', ...small, '--checkpoint-every', '5', '--out', run]);
    const results = await Promise.all([a.done, b.done]);
    const codes = results.map((r) => r.code).sort();
    expect(codes, results.map((r) => r.err).join('\n')).toEqual([0, 2]);
    const loser = results.find((r) => r.code === 2)!;
    expect(loser.err.trim().split('\n').at(-1)).toMatch(/in use by another training \(pid \d+\)|already holds a run/);
    const logged = fs
      .readFileSync(path.join(run, 'losses.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step);
    expect(logged).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(checkpoints(run)).toEqual(['step-00000015', 'step-00000020']); // --keep 2
  }, 300_000);
});
