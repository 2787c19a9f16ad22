#!/usr/bin/env node
/**
 * Translate time of one generator in Gantry and in ONNX Runtime (onnxruntime-node, CPU) after `export --format onnx`:
 * a unet_256 and a resnet_9blocks at ngf 64 (random weights, batch-norm statistics moved off 0 and 1), one image per
 * pass, in translate's default mode (batch norm on the image's own statistics, dropout on) on both sides. Gantry's
 * side is translate's generator function (imageTranslator), ONNX Runtime's a session run of the exported bytes, each
 * with the same number of threads. A figure, not a target. `pnpm bench` runs it as row onnx-translate.
 *
 *   node bench/onnx-translate.mjs [--only unet_256,resnet_9blocks] [--sizes 256,512] [--runs 3] [--threads 1]
 *        [--backend wasm] [--json FILE]
 *
 * Needs the packages' dist/ (`pnpm build`).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { cpuName } from './cpu.mjs';

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    sizes: { type: 'string', default: '256,512' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'wasm' },
    json: { type: 'string' },
    python: { type: 'string' }, // passed by pnpm bench to every full-size check; unused here
  },
});
const threads = Number(opt.threads);
process.env.GANTRY_THREADS = String(threads);

const core = await import('../packages/core/dist/index.js');
const tf = await import('@tensorflow/tfjs');
const ort = await import('onnxruntime-node');

const ROWS = {
  unet_256: () =>
    core.unetGenerator({
      size: 256,
      inChannels: 3,
      outChannels: 3,
      numDowns: 8,
      ngf: 64,
      norm: 'batch',
      dropout: true,
    }),
  resnet_9blocks: () =>
    core.resnetGenerator({ size: 256, inChannels: 3, outChannels: 3, ngf: 64, blocks: 9, norm: 'instance' }),
};
const names = opt.only ? opt.only.split(',') : Object.keys(ROWS);
const sizes = opt.sizes.split(',').map(Number);
const runs = Number(opt.runs);

const backend = await core.initBackend({ backend: opt.backend, log: () => {} });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rows = [];
for (const name of names) {
  const g = ROWS[name]();
  const t = await core.imageTranslator(g, false);
  const bytes = core.layersModelToOnnx(g, { dynamicSize: true, batchStatistics: true, inputNames: ['image'] });
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  for (const size of sizes) {
    const x = /** @type {import('@tensorflow/tfjs').Tensor4D} */ (
      tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 1)
    );
    const xn = tf.transpose(x, [0, 3, 1, 2]);
    const feed = { image: new ort.Tensor('float32', xn.dataSync(), xn.shape) };
    const gantry = [];
    const onnx = [];
    // One untimed pass each (first-call setup), then alternate so that load changes hit both sides alike.
    tf.dispose(await t.fn(x));
    await session.run(feed);
    for (let i = 0; i < runs; i++) {
      let t0 = performance.now();
      const y = await t.fn(x);
      await y.data();
      gantry.push(performance.now() - t0);
      y.dispose();
      t0 = performance.now();
      await session.run(feed);
      onnx.push(performance.now() - t0);
    }
    tf.dispose([x, xn]);
    const row = { generator: name, size, gantryMs: median(gantry), onnxMs: median(onnx) };
    row.ratio = row.gantryMs / row.onnxMs;
    rows.push(row);
    process.stderr.write(
      `${name} ${size}²: Gantry ${row.gantryMs.toFixed(0)} ms, ONNX Runtime ${row.onnxMs.toFixed(0)} ms\n`,
    );
  }
  await session.release();
  g.dispose();
}

const lines = [
  `ONNX Runtime ${ort.env.versions.node} (CPU) beside Gantry (${backend.name ?? opt.backend}), ${threads} thread${threads === 1 ? '' : 's'}, ${cpuName()}; median of ${runs} passes, one image, translate's default mode`,
  '',
  '| generator (ngf 64) | size | Gantry translate | ONNX Runtime | Gantry / ONNX Runtime |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.generator} | ${r.size}×${r.size} | ${r.gantryMs.toFixed(0)} ms | ${r.onnxMs.toFixed(0)} ms | ${r.ratio.toFixed(2)}× |`,
  ),
];
console.log(lines.join('\n'));
if (opt.json) fs.writeFileSync(opt.json, `${JSON.stringify({ threads, runs, rows }, null, 2)}\n`);
