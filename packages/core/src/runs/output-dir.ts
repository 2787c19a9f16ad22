/**
 * Output folders of one-shot commands (`import-torch`, `export`): the same rule as `train`'s run directory — a
 * new or empty folder, or `--force` to replace what is there — and the same lock, so two commands writing one
 * folder at once cannot both succeed. Everything is written into a temporary sibling first and moved in only when
 * complete; an error or an interrupt (Ctrl-C, SIGTERM: exit 130 or 143) leaves the folder as it was.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GantryError } from '../errors.js';
import { mkdirp, tempSibling, writeError } from './fsutil.js';
import { awaitOwner, inUse, LOCK, lockRunDir, processAlive, removeIfUnused, userPath, visibleEntries } from './run.js';

/** Kernel file systems that are not places for files (statfs magic numbers, linux/magic.h). */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x1cd1, 'devpts'],
]);

/** The nearest existing ancestor of `p` (p itself if it exists). */
function existingAncestor(p: string): string {
  let at = path.resolve(p);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}

/**
 * Checks that `dir` can be an output folder, before any work: not on a kernel pseudo-file system (/proc, /sys:
 * Node's recursive mkdir spins forever there), no file in its path, not a file itself.
 */
export function checkOutputPath(dir: string, flag: string): void {
  const at = existingAncestor(dir);
  try {
    const kind = PSEUDO_FS.get(Number(fs.statfsSync(at).type));
    if (kind) throw new GantryError(`${flag} ${dir}: ${at} is on ${kind}, a kernel file system, not a place for files`);
  } catch (err) {
    if (err instanceof GantryError) throw err;
  }
  const st = fs.statSync(at, { throwIfNoEntry: false });
  if (st && !st.isDirectory())
    throw new GantryError(
      at === path.resolve(dir)
        ? `${flag} ${dir}: is a file, expected a directory`
        : `${flag} ${dir}: ${at} is a file, expected a directory`,
    );
}

const real = (p: string) => {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/** `--force` empties the folder: never the root, the home folder, the current folder, or one holding an input. */
function checkForce(dir: string, flag: string, inputs: string[]): void {
  const d = real(dir);
  const guarded = new Map([
    [real('/'), 'the root folder'],
    [real(os.homedir()), 'your home folder'],
    [real(userPath('.')), 'the current folder'],
  ]);
  const what = guarded.get(d);
  if (what) throw new GantryError(`${flag} ${dir}: --force would empty ${what}; choose a folder of its own`);
  for (const input of inputs) {
    const i = real(input);
    if (i === d || i.startsWith(d + path.sep))
      throw new GantryError(
        `${flag} ${dir}: --force would delete ${input}, which this command reads; choose another folder`,
      );
  }
}

/**
 * Temporary siblings of `dir` left by a command that was killed (SIGKILL, power loss) before it could clean up.
 * Called under the folder's lock, so no other command is writing one.
 */
function removeStaleSiblings(dir: string): void {
  const base = path.basename(dir);
  const parent = path.dirname(path.resolve(dir));
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith(`${base}.tmp-`) || !/^\d+-[0-9a-f]{6}$/.test(name.slice(base.length + 5))) continue;
    try {
      fs.rmSync(path.join(parent, name), { recursive: true, force: true });
    } catch {}
  }
}

export interface OutputDir {
  /** The temporary sibling to write everything into. */
  tmp: string;
  /** Moves the finished content into the folder (replacing what was there with --force) and unlocks it. */
  commit(): void;
  /** Removes the temporary folder (and the folder, if this command created it) and unlocks it. */
  abort(): void;
}

/**
 * Claims `dir` as the output folder of `what` (e.g. 'import-torch'): checked (checkOutputPath), locked, and new or
 * empty unless `force`. Throws a one-line GantryError otherwise.
 */
export function claimOutputDir(
  dir: string,
  o: {
    flag?: string;
    force?: boolean;
    what: string;
    log?: (line: string) => void;
    /** Paths the command reads: --force never empties a folder that holds one. */
    inputs?: string[];
  },
): OutputDir {
  const flag = o.flag ?? '--out';
  checkOutputPath(dir, flag);
  if (o.force && fs.existsSync(dir)) checkForce(dir, flag, o.inputs ?? []);
  const notEmpty = () => {
    if (o.force || !fs.existsSync(dir) || visibleEntries(dir).length === 0) return;
    const holder = fs.existsSync(path.join(dir, LOCK)) ? awaitOwner(dir) : undefined;
    if (holder && (holder.host !== os.hostname() || processAlive(holder.pid)))
      throw new GantryError(`${flag} ${dir}: ${inUse(holder)}`);
    throw new GantryError(`${flag} ${dir}: already exists and is not empty (pass --force to replace it)`);
  };
  notEmpty();
  const created = !fs.existsSync(dir);
  let release: () => void;
  try {
    release = lockRunDir(dir, o.log, o.what);
  } catch (err) {
    if (created) removeIfUnused(dir);
    if (err instanceof GantryError)
      throw new GantryError(err.message.startsWith(flag) ? err.message : `${flag} ${err.message}`);
    throw err;
  }
  const tmp = tempSibling(dir);
  const abort = () => {
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
    } catch {}
    release();
    if (created) removeIfUnused(dir);
  };
  try {
    notEmpty(); // again under the lock: another command may have finished into it meanwhile
    removeStaleSiblings(dir);
    mkdirp(tmp);
  } catch (err) {
    abort();
    throw err instanceof GantryError ? err : writeError(dir, err);
  }
  return {
    tmp,
    abort,
    commit() {
      try {
        // Synchronous from here to the end: a signal is handled only after the folder is complete.
        for (const name of visibleEntries(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
        for (const name of fs.readdirSync(tmp)) fs.renameSync(path.join(tmp, name), path.join(dir, name));
        fs.rmSync(tmp, { recursive: true, force: true });
      } catch (err) {
        abort();
        throw writeError(dir, err);
      }
      release();
    },
  };
}

/** Thrown by `Interrupts.check` after Ctrl-C or SIGTERM: exit 130 or 143, one line. */
export class Interrupted extends GantryError {}

/**
 * Ctrl-C and SIGTERM for a one-shot command: they are recorded, and `check` (awaited between the command's steps)
 * throws Interrupted, so the command cleans up and exits 130 (SIGINT) or 143 (SIGTERM). `dispose` removes the
 * handlers.
 */
export function interrupts(what: string): { check(): Promise<void>; dispose(): void } {
  let signal: NodeJS.Signals | undefined;
  const on = (s: NodeJS.Signals) => {
    signal ??= s;
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    async check() {
      // Let a pending signal's handler run (the steps between checks are synchronous).
      await new Promise((r) => setImmediate(r));
      if (signal)
        throw new Interrupted(`${what} interrupted (${signal}): nothing was written`, signal === 'SIGTERM' ? 143 : 130);
    },
    dispose() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}
