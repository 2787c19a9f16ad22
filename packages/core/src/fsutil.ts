import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GantryError } from './errors.js';

/** A sibling temporary name for `target`, unique per process and call. */
export function tempSibling(target: string): string {
  return `${target}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Explains a failed write in one line, naming the path (a full disk gets its own wording). */
export function writeError(target: string, err: unknown): GantryError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOSPC'
      ? 'the disk is full'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'ENOTDIR' || code === 'EEXIST'
          ? 'a file stands where a directory is needed'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (err as Error).message;
  return new GantryError(`cannot write ${target}: ${why}`);
}

/**
 * Writes a file so that readers see either the old content or the new one, never a half-written file:
 * write to a temporary sibling, fsync, rename.
 */
export function atomicWrite(target: string, data: string | Uint8Array): void {
  const tmp = tempSibling(target);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw writeError(target, err);
  }
}

/** Ensures `dir` is (or can be made) a writable directory; a one-line error otherwise. */
export function ensureWritableDir(dir: string, flag = '--out'): void {
  try {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
      throw new GantryError(`${flag} ${dir}: is a file, expected a directory`);
    }
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    if (err instanceof GantryError) throw err;
    throw new GantryError(`${flag} ${dir}: not a writable directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
