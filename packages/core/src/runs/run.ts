/** Where runs live and how user-given paths are resolved. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import lockfile from 'proper-lockfile';
import { latestCheckpoint } from './checkpoint.js';
import { GantryError } from '../errors.js';
import { atomicWrite, ensureWritableDir, mkdirp } from './fsutil.js';

/** The directory holding pnpm-workspace.yaml above this package (the repository root). */
export function workspaceRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/**
 * Resolves a path the user typed. `pnpm --filter app script` runs scripts inside the app's folder, so relative
 * paths are taken from the directory the user ran pnpm in (INIT_CWD), as they expect.
 */
export function userPath(p: string): string {
  return path.resolve(process.env.INIT_CWD ?? process.cwd(), p);
}

/** Default home of runs: GANTRY_RUNS or <repo>/runs. */
export function runsRoot(): string {
  return process.env.GANTRY_RUNS ? userPath(process.env.GANTRY_RUNS) : path.join(workspaceRoot(), 'runs');
}

/** A fresh run directory `<runs>/<variant>/<timestamp>` (created unless `create` is false). */
export function newRunDir(variant: string, root = runsRoot(), create = true): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  let dir = path.join(root, variant, stamp);
  for (let i = 2; fs.existsSync(dir); i++) dir = path.join(root, variant, `${stamp}-${i}`);
  if (create) mkdirp(dir);
  return dir;
}

/**
 * The run of `variant` whose newest complete checkpoint is the most recent. Runs without a complete checkpoint
 * (killed during their first one, failed at once) are passed over, so they never hide the good runs; so are
 * those whose newest checkpoint `accept` (given it and its run directory) turns down.
 */
export function latestRun(
  variant: string,
  root = runsRoot(),
  accept: (checkpoint: string, runDir: string) => boolean = () => true,
): string | undefined {
  const base = path.join(root, variant);
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return undefined;
  }
  let best: { dir: string; time: number } | undefined;
  for (const n of names) {
    const dir = path.join(base, n);
    const checkpoint = latestCheckpoint(dir);
    if (!checkpoint || !accept(checkpoint, dir)) continue;
    const time = fs.statSync(path.join(checkpoint, 'state.json')).mtimeMs;
    if (!best || time >= best.time) best = { dir, time };
  }
  return best?.dir;
}

/** Entries of a folder that make it a used run directory (hidden files, such as a stale lock, do not). */
function visibleEntries(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

/**
 * Checks a new run's `--out` before any expensive work: a directory (or nothing yet) that can be created, and
 * empty: a run directory belongs to one run, so training into another run's folder is refused (its checkpoints
 * would be mixed with, and pruned against, the new ones).
 */
export function checkNewRunDir(dir: string, flag = '--out'): void {
  const stat = (p: string) => {
    try {
      return fs.statSync(p);
    } catch {
      return undefined; // missing, or under a file (ENOTDIR): told apart below
    }
  };
  const st = stat(dir);
  if (st && !st.isDirectory()) throw new GantryError(`${flag} ${dir}: is a file, expected a directory`);
  if (st && visibleEntries(dir).length > 0) {
    // A training that holds the folder now (two started into one new folder at once: the first is already
    // writing) is named, as resuming into it would name it.
    const holder = fs.existsSync(path.join(dir, LOCK)) ? awaitOwner(dir) : undefined;
    if (holder && (holder.host !== os.hostname() || processAlive(holder.pid)))
      throw new GantryError(`${flag} ${dir}: ${inUse(holder)}`);
    const isRun = fs.existsSync(path.join(dir, 'run.json')) || fs.existsSync(path.join(dir, 'checkpoints'));
    throw new GantryError(
      isRun
        ? `${flag} ${dir}: already holds a run (a run directory belongs to one run); continue it with --resume ${dir}, or choose a new folder`
        : `${flag} ${dir}: folder is not empty (expected a new or empty folder for the run)`,
    );
  }
  // Nothing is created yet: only the nearest existing ancestor is checked.
  let at = path.resolve(dir);
  while (!stat(at) && path.dirname(at) !== at) at = path.dirname(at);
  const up = stat(at);
  if (up && !up.isDirectory()) throw new GantryError(`${flag} ${dir}: ${at} is a file, expected a directory`);
}

const LOCK = '.gantry.lock';
const OWNER = '.gantry.lock.json';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

function readOwner(runDir: string): LockOwner | undefined {
  try {
    const o = JSON.parse(fs.readFileSync(path.join(runDir, OWNER), 'utf8')) as LockOwner;
    return Number.isInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** The holder's record, waiting up to half a second for a holder that has taken the lock but not yet written it. */
function awaitOwner(runDir: string): LockOwner | undefined {
  for (let i = 0; i < 25; i++) {
    const owner = readOwner(runDir);
    if (owner) return owner;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  return undefined;
}

/** Why a run directory in use is refused, and by whom (after "DIR: "). */
function inUse(holder: LockOwner | undefined): string {
  const who = holder
    ? `pid ${holder.pid}${holder.host === os.hostname() ? '' : ` on ${holder.host}`}`
    : 'another process';
  return `in use by another training (${who}); wait for it to end or choose another run directory`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the run directory's exclusive lock (proper-lockfile: an atomic `mkdir` of `.gantry.lock`, kept fresh
 * while the process lives) and records the holder's pid beside it. A second writer gets a one-line error naming
 * that pid. A lock left by a killed process on this machine is taken over at once (its pid is gone); one from
 * another machine when it goes stale. Returns the release function (also run at exit by proper-lockfile).
 */
export function lockRunDir(runDir: string, log: (line: string) => void = (l) => console.error(l)): () => void {
  ensureWritableDir(runDir);
  const lockPath = path.join(runDir, LOCK);
  const inUseError = (holder: LockOwner | undefined) => new GantryError(`${runDir}: ${inUse(holder)}`);
  const owner = readOwner(runDir);
  const local = owner !== undefined && owner.host === os.hostname() && owner.pid !== process.pid;
  if (local && fs.existsSync(lockPath)) {
    // On this machine the pid decides: a live holder keeps the lock even when a long step kept it from being
    // refreshed; a dead one's lock is taken over at once.
    if (processAlive(owner.pid)) throw inUseError(owner);
    fs.rmSync(lockPath, { recursive: true, force: true });
  }
  let release: () => void;
  try {
    release = lockfile.lockSync(runDir, {
      lockfilePath: lockPath,
      realpath: false,
      stale: 30_000,
      // A step that blocks the event loop for longer than `stale` cannot refresh the lock; say so, do not crash.
      onCompromised: (err) => log(`warning: the lock on ${runDir} could not be kept fresh (${err.message})`),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED')
      throw new GantryError(`${runDir}: cannot lock the run directory (${(err as Error).message})`);
    throw inUseError(awaitOwner(runDir));
  }
  const mine: LockOwner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  atomicWrite(path.join(runDir, OWNER), JSON.stringify(mine));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (readOwner(runDir)?.pid === process.pid) fs.rmSync(path.join(runDir, OWNER), { force: true });
    try {
      release();
    } catch {
      // Already released or taken over: nothing of ours left to remove.
    }
  };
}

/** Removes a run directory this process created if nothing but its lock files ended up in it. */
export function removeIfUnused(runDir: string): void {
  if (fs.existsSync(runDir) && visibleEntries(runDir).length === 0) fs.rmSync(runDir, { recursive: true, force: true });
}

export interface RunInfo {
  variant: string;
  backend: string;
  created: string;
  options: Record<string, unknown>;
  [k: string]: unknown;
}

export function writeRunInfo(runDir: string, info: RunInfo): void {
  atomicWrite(path.join(runDir, 'run.json'), JSON.stringify(info, null, 2));
}

export function readRunInfo(runDir: string): RunInfo {
  const file = path.join(runDir, 'run.json');
  if (!fs.existsSync(file)) throw new GantryError(`${runDir}: not a Gantry run (no run.json)`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as RunInfo;
}
