/**
 * Smoke test of `pnpm bench`: the quick DCGAN row without PyTorch runs in a child process and writes a JSON
 * result with every field the performance issue asks for. Uses the packages' dist/ (`pnpm test` builds first).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { cpuName } from '../bench/cpu.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

it('pnpm bench --quick --only dcgan --no-torch writes the table and the JSON', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-test-'));
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        path.join(root, 'bench', 'run.mjs'),
        '--quick',
        '--only',
        'dcgan',
        '--no-torch',
        '--backend',
        'wasm',
        '--out',
        out,
      ],
      { cwd: root, timeout: 55_000 },
    );
    expect(stdout).toContain('| DCGAN 28×28');
    expect(stdout).toContain('no PyTorch (--no-torch)');

    const files = fs.readdirSync(out);
    expect(files).toContain('latest.json');
    expect(files).toContain('latest.md');
    expect(files.some((f) => /^bench-.*-quick\.json$/.test(f))).toBe(true);

    const json = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
    expect(json.mode).toBe('quick');
    expect(json.backend.name).toBe('wasm');
    expect(json.torch.available).toBe(false);
    expect(json.peak.machineGflops).toBeGreaterThan(0);
    expect(json.peak.gantry.matmul.gflops).toBeGreaterThan(0);
    expect(json.machine.cpus).toBeGreaterThan(0);
    expect(json.rows).toHaveLength(1);

    const row = json.rows[0];
    expect(row.id).toBe('dcgan');
    expect(row.macsPerStep).toBeGreaterThan(0);
    expect(row.torch).toBeNull();
    expect(row.ratio).toBeNull();
    expect(row.ratioNote).toMatch(/no PyTorch/);

    const g = row.gantry;
    expect(g.error).toBeUndefined();
    expect(g.timedSteps).toBe(3);
    expect(g.stepMs).toHaveLength(3);
    for (const k of ['median', 'min', 'max', 'p25', 'p75', 'mean', 'stdev'])
      expect(Number.isFinite(g.msPerStep[k])).toBe(true);
    expect(g.msPerStep.median).toBeGreaterThan(0);
    expect(g.imagesPerSec).toBeCloseTo((row.batch * 1000) / g.msPerStep.median, 6);
    expect(g.gflops).toBeGreaterThan(0);
    expect(g.pctOfPeak).toBeGreaterThan(0);
    expect(g.peakRssMiB).toBeGreaterThan(50);
    expect(g.forwardMacsPerSample.G).toBeGreaterThan(0);
    expect(g.forwardMacsPerSample.D).toBeGreaterThan(0);
    // Tensor counts before and after; a DCGAN step must not leak tensors once Adam's slots exist.
    expect(g.tensors.before).toBeGreaterThan(0);
    expect(g.tensors.afterWarmup).toBeGreaterThanOrEqual(g.tensors.before);
    expect(g.tensors.after).toBe(g.tensors.afterWarmup);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 60_000);

it('pnpm bench --threads 2 also runs each row at 1 thread and prints the speed-up and the CPU model', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-test-'));
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        path.join(root, 'bench', 'run.mjs'),
        '--quick',
        '--only',
        'dcgan',
        '--no-torch',
        '--backend',
        'wasm',
        '--threads',
        '2',
        '--out',
        out,
      ],
      { cwd: root, timeout: 85_000 },
    );
    // The model name, and on Linux its family, model and vector extension (bench/cpu.mjs).
    expect(cpuName().startsWith(os.cpus()[0]?.model?.trim() || 'unknown CPU')).toBe(true);
    expect(stdout).toContain(`${cpuName()}, ${os.cpus().length} CPUs, 2 threads`);
    expect(stdout).toContain('| Gantry speed-up 1 → 2 threads | PyTorch speed-up 1 → 2 threads | ratio at 1 thread |');
    const json = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
    expect(json.threads).toBe(2);
    expect(json.backend.detail).toMatch(/native, 2 threads|no native kernels/);
    const one = json.rows[0].oneThread;
    expect(one.gantry.stepMs).toHaveLength(3);
    expect(one.speedupGantry).toBeCloseTo(one.gantryMs / json.rows[0].gantry.msPerStep.median, 6);
    expect(one.speedupTorch).toBeNull();
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 90_000);

it('pnpm bench --threads with a bad value exits 2 with a one-line error', async () => {
  const run = promisify(execFile)(process.execPath, [path.join(root, 'bench', 'run.mjs'), '--threads', 'many'], {
    cwd: root,
  });
  await expect(run).rejects.toMatchObject({
    code: 2,
    stderr: "bench: --threads many: expected a positive integer or 'all'\n",
  });
});
