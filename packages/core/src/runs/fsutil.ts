import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GantryError } from '../errors.js';

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
 * `mkdir -p` that cannot hang: Node's recursive mkdir spins forever under pseudo-filesystems such as /proc,
 * where mkdir answers ENOENT for a parent that exists. So find the nearest existing ancestor, check it is a
 * directory, and create the missing levels one at a time. Errors are Node's (with their `code`).
 */
export function mkdirp(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    const st = fs.statSync(at, { throwIfNoEntry: false });
    if (st) {
      if (!st.isDirectory())
        throw Object.assign(new Error(`ENOTDIR: ${at} is not a directory`), { code: 'ENOTDIR', path: at });
      break;
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      // Another process may create the same folder at the same moment.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw err;
    }
  }
}

/**
 * Writes a file so that readers see either the old content or the new one, never a half-written file:
 * write to a temporary sibling, fsync, rename.
 */
export function atomicWrite(target: string, data: string | Uint8Array): void {
  const tmp = tempSibling(target);
  try {
    mkdirp(path.dirname(target));
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    // The clean-up must not hide the real error (under a file, rm itself fails with ENOTDIR).
    try {
      fs.rmSync(tmp, { force: true });
    } catch {}
    throw writeError(target, err);
  }
}

/** Ensures `dir` is (or can be made) a writable directory; a one-line error otherwise. */
export function ensureWritableDir(dir: string, flag = '--out'): void {
  try {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
      throw new GantryError(`${flag} ${dir}: is a file, expected a directory`);
    }
    mkdirp(dir);
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    if (err instanceof GantryError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' || code === 'EPERM'
        ? `${code}: this file system does not allow new folders here`
        : (code ?? (err as Error).message);
    throw new GantryError(`${flag} ${dir}: not a writable directory (${why})`);
  }
}
