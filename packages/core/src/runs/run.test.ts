/** Run directories: the latest-run picker, the one-run-per-folder rule, the lock, and writes that must fail cleanly. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../errors.js';
import { ensureWritableDir, mkdirp } from './fsutil.js';
import { openLossLog } from './progress.js';
import { checkNewRunDir, latestRun, lockRunDir, removeIfUnused } from './run.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-run-'));

/** A fake complete checkpoint (what the picker looks at: checkpoints/step-N/state.json). */
function checkpoint(run: string, step: number, mtime: Date) {
  const dir = path.join(run, 'checkpoints', `step-${String(step).padStart(8, '0')}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ variant: 'gan', step, epoch: 0, config: {} }));
  fs.utimesSync(path.join(dir, 'state.json'), mtime, mtime);
}

describe('latestRun', () => {
  it('picks the newest run with a complete checkpoint; runs killed during their first checkpoint do not hide it', () => {
    const root = tmp();
    const run = (name: string) => path.join(root, 'gan', name);
    checkpoint(run('a'), 10, new Date(2026, 0, 1));
    checkpoint(run('b'), 20, new Date(2026, 0, 2));
    // Newer runs without a complete checkpoint: only a partial one, an empty checkpoints/ folder, nothing.
    fs.mkdirSync(path.join(run('c'), 'checkpoints', '.partial.tmp-123-abcdef'), { recursive: true });
    fs.mkdirSync(path.join(run('d'), 'checkpoints'), { recursive: true });
    fs.mkdirSync(run('e'), { recursive: true });
    expect(latestRun('gan', root)).toBe(run('b'));
    expect(latestRun('dcgan', root)).toBeUndefined();
  });
});

describe('checkNewRunDir', () => {
  it('accepts a missing or empty folder and refuses a used one, a file, or a path under a file', () => {
    const dir = tmp();
    expect(() => checkNewRunDir(path.join(dir, 'new'))).not.toThrow();
    expect(() => checkNewRunDir(dir)).not.toThrow();
    fs.writeFileSync(path.join(dir, 'run.json'), '{}');
    expect(() => checkNewRunDir(dir)).toThrow(
      /already holds a run \(a run directory belongs to one run\); continue it with --resume/,
    );
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    expect(() => checkNewRunDir(path.join(dir, 'f'))).toThrow(/--out .*\/f: is a file, expected a directory/);
    expect(() => checkNewRunDir(path.join(dir, 'f', 'sub'))).toThrow(/\/f is a file, expected a directory/);
  });

  it('names the training that holds a used folder (two trainings started into one new folder at once)', () => {
    const dir = tmp();
    const release = lockRunDir(dir);
    fs.writeFileSync(path.join(dir, 'losses.jsonl'), ''); // the holder has begun writing, run.json not yet
    expect(() => checkNewRunDir(dir)).toThrow(
      new RegExp(`--out .*: in use by another training \\(pid ${process.pid}\\); wait for it to end`),
    );
    release();
    expect(() => checkNewRunDir(dir)).toThrow(/folder is not empty \(expected a new or empty folder for the run\)/);
  });
});

describe('lockRunDir', () => {
  it("refuses a second writer naming the holder's pid, and frees the folder on release", () => {
    const dir = tmp();
    const release = lockRunDir(dir);
    expect(() => lockRunDir(dir)).toThrow(new RegExp(`in use by another training \\(pid ${process.pid}\\)`));
    release();
    const again = lockRunDir(dir);
    again();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('takes over the lock of a process that no longer exists', async () => {
    const dir = tmp();
    // A child takes the lock and is killed before it can release it.
    const script = `import('${path.resolve(import.meta.dirname, '../../dist/runs/run.js')}').then((m) => { m.lockRunDir(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000); })`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.on('data', () => resolve()));
    expect(() => lockRunDir(dir)).toThrow(new RegExp(`pid ${child.pid}\\)`));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const release = lockRunDir(dir);
    release();
  });
});

describe('writes that must fail cleanly', () => {
  it('mkdirp and ensureWritableDir fail at once under /proc instead of spinning', () => {
    const t0 = Date.now();
    expect(() => mkdirp('/proc/gantry-test/a/b')).toThrow(/ENOENT/);
    expect(() => ensureWritableDir('/proc/gantry-test/x')).toThrow(
      /--out \/proc\/gantry-test\/x: not a writable directory \(ENOENT/,
    );
    expect(Date.now() - t0).toBeLessThan(1000);
    const dir = tmp();
    mkdirp(path.join(dir, 'a', 'b', 'c'));
    expect(fs.statSync(path.join(dir, 'a', 'b', 'c')).isDirectory()).toBe(true);
  });

  it('a full disk while appending the loss log is a one-line error naming the file', () => {
    const log = openLossLog('/dev/full');
    try {
      expect(() => log.write({ step: 1, D: 0.5 })).toThrow(new GantryError('cannot write /dev/full: the disk is full'));
    } finally {
      log.close();
    }
  });

  it('removeIfUnused removes a folder holding nothing but hidden lock files, and keeps a used one', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, '.gantry.lock.json'), '{}');
    removeIfUnused(dir);
    expect(fs.existsSync(dir)).toBe(false);
    const used = tmp();
    fs.writeFileSync(path.join(used, 'run.json'), '{}');
    removeIfUnused(used);
    expect(fs.existsSync(path.join(used, 'run.json'))).toBe(true);
  });
});
