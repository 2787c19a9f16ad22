import { execFile } from 'node:child_process';
import * as path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..');

/**
 * Runs a built app's CLI. Asynchronous on purpose: a synchronous child process would block the vitest worker,
 * whose RPC to the main process times out when a command runs long on a loaded machine.
 */
export function runApp(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(repoRoot, 'apps', name, 'dist', 'cli.js'), ...args],
      { env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}
