#!/usr/bin/env node
/**
 * Full-size check of the PyTorch import (run by hand; needs `pnpm build` and PyTorch):
 * bench/torch-fixtures.py --full writes ngf-64 unet_256 and resnet_9blocks state dicts (both file formats, both
 * norms) with PyTorch's outputs for a 256×256 input; this script imports each with Gantry and prints the import
 * time, Gantry's forward time and the max abs error against PyTorch (eval- and train-mode norm).
 *
 *   node bench/torch-import.mjs [--python /usr/bin/python3] [--keep DIR] [--json FILE]
 *   (--keep: keep the fixtures there; reused when present. --json: the rows and the verdict, for `pnpm bench`.)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    python: { type: 'string', default: '/usr/bin/python3' },
    keep: { type: 'string' },
    json: { type: 'string' },
  },
});
const core = await import(path.join(here, '..', 'packages/core/dist/index.js'));
const tf = await import('@tensorflow/tfjs');

if (spawnSync(opts.python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
  console.error(`${opts.python}: no PyTorch (import torch failed); nothing to compare against`);
  process.exit(2);
}
const dir = opts.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-torch-full-'));
if (opts.keep && fs.existsSync(path.join(dir, 'manifest.json'))) console.error(`reusing the fixtures in ${dir}`);
else {
  const t0 = performance.now();
  const gen = spawnSync(opts.python, [path.join(here, 'torch-fixtures.py'), dir, '--full'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (gen.status !== 0) process.exit(1);
  console.error(`PyTorch fixtures (build, save, forward passes): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const info = await core.initBackend({});
console.error(`backend: ${info.description ?? info.name ?? JSON.stringify(info)}`);

const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const floats = (b64) => {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
function input([, c, h, w], phase) {
  const out = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++)
        out[(i * w + j) * c + k] =
          Math.sin(0.37 * i + 0.23 * j + 1.7 * k + phase) * Math.cos((0.11 * i * j) / (h + w) + k);
  return tf.tensor4d(out, [1, h, w, c]);
}

const rows = [];
for (const c of manifest.cases) {
  for (const [format, file] of Object.entries(c.files)) {
    for (const [mode, want] of Object.entries(c.outputs)) {
      const bytes = fs.readFileSync(path.join(dir, file));
      const t1 = performance.now();
      const sd = core.readStateDict(bytes);
      const readMs = performance.now() - t1;
      const { arch, model } = core.networkFromStateDict(sd, mode === 'train' ? { dropout: false } : {});
      const importMs = performance.now() - t1;
      const x = input(c.input, c.phase);
      const t2 = performance.now();
      const y = model.apply(x, { training: mode === 'train' });
      const got = await y.data();
      const forwardMs = performance.now() - t2;
      const w = floats(want.data);
      let max = 0;
      for (let i = 0; i < w.length; i++) max = Math.max(max, Math.abs(got[i] - w[i]));
      tf.dispose([x, y]);
      model.dispose();
      const row = {
        case: c.name,
        format,
        mode,
        file_MB: +(bytes.length / 1e6).toFixed(1),
        read_s: +(readMs / 1000).toFixed(2),
        import_s: +(importMs / 1000).toFixed(2),
        forward_s: +(forwardMs / 1000).toFixed(2),
        max_abs_err: max,
      };
      rows.push(row);
      console.log(
        `${c.name.padEnd(24)} ${format.padEnd(6)} ${mode.padEnd(5)} ${core.describeArch(arch)}: ${row.file_MB} MB, import ${row.import_s} s (reading ${row.read_s} s), forward ${row.forward_s} s, max |Δ| ${max.toExponential(2)}`,
      );
    }
  }
}
const worst = Math.max(...rows.map((r) => r.max_abs_err));
console.log(`worst max abs error ${worst.toExponential(2)} (target 1e-4): ${worst < 1e-4 ? 'ok' : 'FAILED'}`);
if (opts.json)
  fs.writeFileSync(opts.json, `${JSON.stringify({ rows, worstMaxAbsErr: worst, targetsMet: worst < 1e-4 })}\n`);
if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
process.exit(worst < 1e-4 ? 0 : 1);
