import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const nativeDir = path.dirname(require.resolve('@gantry/native'));
const { binding } = require('@gantry/native') as { binding: unknown };

// oneDNN 2.6's sgemm keeps data below the stack pointer, where a signal handler's frame lands (docs/backend.md,
// "Signals"): the addon holds signals back while a thread is inside it. Without that, this loop under Node's CPU
// profiler (SIGPROF every millisecond) died within a second or two, of a corrupted heap or a segmentation fault.
const CHILD = `
const { binding } = require(process.argv[2]);
const [M, N, K] = [64, 256, 256];
const heap = new ArrayBuffer((M * K + K * N + M * N) * 4);
new Float32Array(heap, 0, M * K + K * N).fill(1);
const params = Float64Array.of(0, M * K * 4, (M * K + K * N) * 4, -1, 0, 1, 1, M, N, K, 0, 0, 0, 0);
const until = Date.now() + 3000;
let calls = 0;
for (; Date.now() < until; calls++) binding.matmul(heap, params);
const c = new Float32Array(heap, (M * K + K * N) * 4, M * N);
console.log(JSON.stringify({ calls, first: c[0], last: c[M * N - 1] }));
`;

describe('native kernels under signals', () => {
  it.skipIf(!binding)("keep running, with the right products, under Node's CPU profiler", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-signals-'));
    try {
      const child = path.join(dir, 'child.cjs');
      fs.writeFileSync(child, CHILD);
      const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, child, nativeDir], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.signal, run.stderr).toBeNull();
      expect(run.status, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout) as { calls: number; first: number; last: number };
      expect(out.calls).toBeGreaterThan(100);
      expect([out.first, out.last]).toEqual([256, 256]); // rows of K ones times columns of K ones
      expect(fs.readdirSync(dir).some((f) => f.endsWith('.cpuprofile'))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
