/** Where runs live and how user-given paths are resolved. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { atomicWrite } from './fsutil.js';
import { GantryError } from './errors.js';

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

/** A fresh run directory `<runs>/<variant>/<timestamp>`. */
export function newRunDir(variant: string, root = runsRoot()): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  let dir = path.join(root, variant, stamp);
  for (let i = 2; fs.existsSync(dir); i++) dir = path.join(root, variant, `${stamp}-${i}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The most recently modified run of `variant` that has a checkpoint. */
export function latestRun(variant: string, root = runsRoot()): string | undefined {
  const base = path.join(root, variant);
  if (!fs.existsSync(base)) return undefined;
  return fs
    .readdirSync(base)
    .map((n) => path.join(base, n))
    .filter((d) => fs.existsSync(path.join(d, 'checkpoints')))
    .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs)
    .at(-1);
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
