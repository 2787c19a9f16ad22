#!/usr/bin/env node
/**
 * One benchmark row in its own process (so peak RSS is this row's): builds a variant's task with Gantry's own
 * networks and training step (from the packages' dist/), runs warm-up and timed steps and writes a JSON result.
 *
 *   node bench/gantry-step.mjs --row '<json>' --backend auto --json-out FILE [--steps N]
 *   node bench/gantry-step.mjs --row '<json>' --alternate-threads …   timed steps alternate N threads and 1 thread
 *   node bench/gantry-step.mjs --row '<json>' --soak --steps 1000 --json-out FILE
 *   node bench/gantry-step.mjs --peak --size 1024 --json-out FILE      matMul GFLOP/s on the backend
 *
 * Batches are random tensors made once, outside the timed region; a timed step is what the trainer does per
 * step: core's trainStep (the task's D update, then its G update) and the read-back of the losses.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';

const { values: args } = parseArgs({
  options: {
    row: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    'json-out': { type: 'string' },
    steps: { type: 'string' },
    soak: { type: 'boolean', default: false },
    peak: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    size: { type: 'string', default: '1024' },
    'alternate-threads': { type: 'boolean', default: false },
  },
});

const core = await import('../packages/core/dist/index.js');
const log = (line) => process.stderr.write(`${line}\n`);

// Uncaught errors as one line, which the parent shows in the table.
const die = (e) => {
  process.stderr.write(
    `error: ${String(e?.message ?? e).split('\n')[0]}\n${e?.stack && !(e instanceof core.GantryError) ? `${e.stack}\n` : ''}`,
  );
  process.exit(1);
};
process.on('uncaughtException', die);
process.on('unhandledRejection', die);

let backend;
try {
  backend = await core.initBackend({ backend: args.backend, log: () => {} });
} catch (e) {
  die(e);
}
/** Reads from the backend to the CPU (tensor.data(), dataSync(), …): a training step should make none. */
const transfers = { count: 0 };
const transfersInStep = [];
{
  /** @type {any} the backend's read methods are wrapped and its (untyped) tensorMap looked at */
  const b = tf.backend();
  for (const method of ['read', 'readSync']) {
    const original = b[method].bind(b);
    b[method] = (dataId, ...rest) => {
      // WebGPU keeps a CPU copy of small tensors made from CPU values and reads those without a transfer.
      if (b.tensorMap?.get?.(dataId)?.values == null) transfers.count++;
      return original(dataId, ...rest);
    };
  }
}
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;
const now = () => performance.now();

function writeResult(result) {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (args['json-out']) fs.writeFileSync(args['json-out'], text);
  else process.stdout.write(text);
}

if (args.peak) {
  const n = Number(args.size);
  writeResult({ backend, matmul: await measurePeak(n), conv3x3: await measureConvPeak(n) });
  process.exit(0);
}

/**
 * Best-of-N wall-clock and CPU milliseconds of `fn` (at least 3 runs, up to 20 within ~3 s). With one thread
 * the best CPU time is the robust figure on a loaded machine (it leaves out time spent waiting for a core).
 */
async function bestOf(fn) {
  const once = async () => {
    const c0 = process.cpuUsage();
    const t0 = now();
    const c = fn();
    await c.data();
    const ms = now() - t0;
    const cpu = process.cpuUsage(c0);
    c.dispose();
    return [ms, (cpu.user + cpu.system) / 1000];
  };
  await once();
  const times = [];
  const started = now();
  while (times.length < 3 || (times.length < 20 && now() - started < 3000)) times.push(await once());
  return {
    bestMs: Math.min(...times.map((t) => t[0])),
    bestCpuMs: Math.min(...times.map((t) => t[1])),
    samples: times.length,
  };
}

/** GFLOP/s of an n×n·n×n matMul (2n³ flops) on the current backend. */
async function measurePeak(n) {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const r = await bestOf(() => tf.matMul(a, b));
  tf.dispose([a, b]);
  return { n, ...r, gflops: (2 * n ** 3) / (r.bestMs * 1e6), gflopsCpu: (2 * n ** 3) / (r.bestCpuMs * 1e6) };
}

/** GFLOP/s of a 3×3 'same' conv2d, ch→ch channels on 32×32 (the same probe as the PyTorch side). */
async function measureConvPeak(n) {
  const ch = Math.max(64, n >> 2);
  /** @type {tf.Tensor4D} */
  const x = tf.randomNormal([1, 32, 32, ch]);
  /** @type {tf.Tensor4D} */
  const w = tf.randomNormal([3, 3, ch, ch]);
  const r = await bestOf(() => tf.conv2d(x, w, 1, 'same'));
  tf.dispose([x, w]);
  const flops = 2 * 9 * ch * ch * 32 * 32;
  return { channels: ch, side: 32, ...r, gflops: flops / (r.bestMs * 1e6), gflopsCpu: flops / (r.bestCpuMs * 1e6) };
}

const row = JSON.parse(args.row);
const net = row.net;
const B = row.batch;
core.seedWeights?.(1);

// ---------------------------------------------------------------------------------------------------------------
// Multiply-adds of one forward pass per sample, from the built layers (conv, transposed conv, dense).
async function forwardMacsPerSample(built, imageSize) {
  // The image-to-image networks take any size (their inputs are [null, null, null, C]): count them on a copy of
  // their topology with the row's size filled in, whose layers then carry concrete shapes.
  const topology = built.toJSON(null, false);
  let open = false;
  for (const layer of topology.config.layers) {
    const shape = layer.class_name === 'InputLayer' ? layer.config.batch_input_shape : null;
    if (shape?.length === 4 && (shape[1] === null || shape[2] === null)) {
      layer.config.batch_input_shape = [null, imageSize, imageSize, shape[3]];
      open = true;
    }
  }
  const model = open ? await tf.models.modelFromJSON({ modelTopology: topology }) : built;
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls !== 'Conv2D' && cls !== 'Conv2DTranspose' && cls !== 'Dense') continue;
    const kernel = layer.trainableWeights.find((w) => w.name.includes('kernel')) ?? layer.trainableWeights[0];
    const k = kernel.shape;
    // Each layer is applied once per model: its first inbound node has the shapes.
    const node = layer.inboundNodes[0];
    const inShape = Array.isArray(node.inputShapes[0]) ? node.inputShapes[0] : node.inputShapes;
    const outShape = Array.isArray(node.outputShapes[0]) ? node.outputShapes[0] : node.outputShapes;
    if (cls === 'Conv2D') macs += outShape[1] * outShape[2] * k[0] * k[1] * k[2] * k[3];
    else if (cls === 'Conv2DTranspose') macs += inShape[1] * inShape[2] * k[0] * k[1] * k[2] * k[3];
    else macs += k[0] * k[1] * inShape.slice(1, -1).reduce((a, b) => a * (b ?? 1), 1);
  }
  if (model !== built) model.dispose();
  return macs;
}

// ---------------------------------------------------------------------------------------------------------------
// Tasks: each variant's definition makes its task (createTask, as `train` does), fed random batches.
async function buildTask() {
  const mod = await import(`../packages/${row.variant}/dist/index.js`);
  /** @type {import('../packages/core/dist/index.js').AnyVariant} */
  const def = mod[row.variant];
  const never = () => {
    throw new Error('bench: batches are made by the bench');
  };
  const s = net.cropSize ?? net.imageSize;
  const channels = net.channels ?? 1;
  const random = () => tf.randomUniform([B, s, s, channels], -1, 1);
  // The data each kind of variant's createTask takes; only its size matters, the bench makes the batches.
  const data =
    row.variant === 'pix2pix'
      ? { length: 100, unit: 'pairs', train: { length: 100, batch: never } }
      : row.variant === 'cyclegan'
        ? {
            length: 100,
            unit: 'images',
            train: { length: 100, batch: never },
            samples: { a: tf.zeros([1, s, s, channels]), b: tf.zeros([1, s, s, channels]) },
          }
        : { length: B * 100, unit: 'digits', images: { count: B * 100, batch: never } };
  const task = def.createTask({
    config: net,
    data,
    lr: net.lr,
    beta1: net.beta1,
    loss: core.adversarialLoss(net.loss),
    seed: 1,
    batchSize: B,
    checkpointConfig: net,
    mustMatch: [],
    log: () => {},
  });
  const impl = `@gantry/${row.variant} definition (${task.constructor.name})`;
  if (row.variant === 'pix2pix' || row.variant === 'cyclegan') {
    const batch = { a: random(), b: random() };
    const [G, D] = row.variant === 'pix2pix' ? ['generator', 'discriminator'] : ['G_A', 'D_A'];
    return { task, batch, nets: { G: task.nets[G], D: task.nets[D] }, impl };
  }
  const k = net.numClasses ?? 1;
  const labels = () =>
    tf.tensor1d(
      Array.from({ length: B }, (_, i) => i % k),
      'int32',
    );
  const batch = { x: random(), y: labels(), z: tf.randomNormal([B, net.latentDim]), yFake: labels() };
  return { task, batch, nets: { G: task.nets.generator, D: task.nets.discriminator }, impl };
}

// ---------------------------------------------------------------------------------------------------------------
const { task, batch, nets, impl } = await buildTask();
const imageSize = net.cropSize ?? net.imageSize;
const fwdPerSample = {
  G: await forwardMacsPerSample(nets.G, imageSize),
  D: await forwardMacsPerSample(nets.D, imageSize),
};

/** One full training step as the trainer runs it: D update, G update, losses read back. */
async function step(i) {
  const reads = transfers.count;
  const scalars = core.trainStep(task, batch, i);
  transfersInStep.push(transfers.count - reads);
  const names = Object.keys(scalars);
  const stacked = tf.tidy(() => tf.stack(names.map((n) => scalars[n])));
  tf.dispose(Object.values(scalars));
  const values = await stacked.data(); // async: the WebGPU backend in Node has no synchronous read
  stacked.dispose();
  for (const v of values) if (!Number.isFinite(v)) throw new Error(`step ${i}: a loss is ${v}`);
  return values;
}

const tensorsBefore = tf.memory().numTensors;
const rssBefore = rssMiB();
let i = 0;
const warmupMs = [];
for (; i < row.warmup; i++) {
  const t0 = now();
  await step(i);
  warmupMs.push(now() - t0);
  log(`  warm-up step ${i + 1}/${row.warmup}: ${warmupMs.at(-1).toFixed(0)} ms`);
}
// --alternate-threads: the timed steps alternate between the native kernels' N threads and 1 thread (N, 1, 1, N,
// …), so both speeds are measured over the same minutes; on a machine whose speed drifts, two runs one after the
// other can differ by more than the speed-up being measured. Only where the thread count can change at run time.
const threadsN = backend.name === 'wasm' ? core.nativeThreadCount() : 1;
const alternate = args['alternate-threads'] && threadsN > 1;
const timesOne = [];
if (alternate) {
  core.setNativeThreads(1);
  for (let w = 0; w < row.warmup; w++) await step(i++); // oneDNN makes its primitives again for one thread
  core.setNativeThreads(threadsN);
}
// In --soak the parent starts this process with --expose-gc: RSS and heap are sampled right after a full GC,
// so the drift shows retained memory, not where the collector happened to be.
const settle = () => globalThis.gc?.();
settle();
const tensorsAfterWarmup = tf.memory().numTensors;
const rssAfterWarmup = rssMiB();

if (args.profile) {
  // Per-kernel time of a few steps (tf.profile times each kernel synchronously on wasm/cpu).
  const steps = Number(args.steps ?? 3);
  const byKernel = new Map();
  let total = 0;
  for (let s = 0; s < steps; s++, i++) {
    const t0 = now();
    const info = await tf.profile(async () => {
      await step(i);
    });
    total += now() - t0;
    for (const k of info.kernels) {
      const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += Number(k.kernelTimeMs) || 0;
      e.calls++;
      byKernel.set(k.name, e);
    }
  }
  const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
  const kernelMs = rows.reduce((a, [, e]) => a + e.ms, 0);
  log(
    `profile: ${steps} steps, ${(total / steps).toFixed(0)} ms/step with profiling, kernels ${(kernelMs / steps).toFixed(0)} ms/step`,
  );
  for (const [name, e] of rows.slice(0, 25))
    log(
      `  ${name.padEnd(24)} ${(e.ms / steps).toFixed(1).padStart(8)} ms/step  ${(e.calls / steps).toFixed(0).padStart(5)} calls/step  ${((100 * e.ms) / kernelMs).toFixed(1)}%`,
    );
  if (core.nativeStats?.calls)
    log(
      `  native: ${core.nativeStats.calls} calls, ${core.nativeStats.fallbacks} fell back; oneDNN implementations: ${[...core.nativeStats.impls].map(([k, v]) => `${k} ×${v}`).join(', ')}`,
    );
  writeResult({
    mode: 'profile',
    row,
    backend,
    msPerStep: total / steps,
    kernels: Object.fromEntries(rows.map(([n, e]) => [n, { msPerStep: e.ms / steps, callsPerStep: e.calls / steps }])),
  });
  process.exit(0);
}

if (args.soak) {
  const total = Number(args.steps ?? 1000);
  const every = Math.max(1, Math.floor(total / 20));
  const trace = [];
  const ms = [];
  const started = now();
  for (let s = 1; s <= total; s++, i++) {
    const t0 = now();
    await step(i);
    ms.push(now() - t0);
    if (s % every === 0 || s === total) {
      settle();
      const point = {
        step: s,
        tensors: tf.memory().numTensors,
        rssMiB: rssMiB(),
        heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
        msPerStep: median(ms.slice(-every)),
      };
      trace.push(point);
      log(
        `  soak ${s}/${total}: tensors ${point.tensors}, RSS ${point.rssMiB.toFixed(0)} MiB, ${point.msPerStep.toFixed(0)} ms/step`,
      );
    }
  }
  const end = trace.at(-1);
  writeResult({
    mode: 'soak',
    row,
    impl,
    backend,
    steps: total,
    seconds: (now() - started) / 1000,
    msPerStep: median(ms),
    tensorsBefore,
    tensorsAfterWarmup,
    tensorsAfter: end.tensors,
    tensorDrift: end.tensors - tensorsAfterWarmup,
    rssAfterWarmupMiB: rssAfterWarmup,
    rssAfterMiB: end.rssMiB,
    rssDriftPct: ((end.rssMiB - rssAfterWarmup) / rssAfterWarmup) * 100,
    // Growth over the second half of the run: a leak keeps growing there, a warming-up allocator does not.
    rssDriftSecondHalfPct:
      ((end.rssMiB - trace[Math.floor((trace.length - 1) / 2)].rssMiB) /
        trace[Math.floor((trace.length - 1) / 2)].rssMiB) *
      100,
    gcBeforeSamples: typeof globalThis.gc === 'function',
    peakRssMiB: peakRssMiB(),
    trace,
  });
  process.exit(0);
}

/** One timed step at 1 thread (--alternate-threads). */
async function timeOne() {
  core.setNativeThreads(1);
  const t0 = now();
  await step(i++);
  timesOne.push(now() - t0);
  core.setNativeThreads(threadsN);
}
const fixed = args.steps != null ? Number(args.steps) : undefined;
const times = [];
// CPU time of the process per step (all its threads): on a loaded machine it is far less disturbed than the
// wall-clock time, which includes waiting for a core.
const cpuTimes = [];
const started = now();
while (
  fixed != null
    ? times.length < fixed
    : times.length < row.minSteps || (times.length < row.maxSteps && now() - started < row.budgetS * 1000)
) {
  // In ABBA order (N, 1, 1, N, …): a drift in the machine's speed hits both thread counts alike.
  const oneFirst = alternate && times.length % 2 === 1;
  if (oneFirst) await timeOne();
  const c0 = process.cpuUsage();
  const t0 = now();
  await step(i++);
  times.push(now() - t0);
  const c = process.cpuUsage(c0);
  cpuTimes.push((c.user + c.system) / 1000);
  if (alternate && !oneFirst) await timeOne();
  log(
    `  step ${times.length}: ${times.at(-1).toFixed(0)} ms (CPU ${cpuTimes.at(-1).toFixed(0)} ms)${alternate ? `, at 1 thread ${timesOne.at(-1).toFixed(0)} ms` : ''}`,
  );
}
const tensorsAfter = tf.memory().numTensors;
task.dispose?.();

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

writeResult({
  mode: 'bench',
  row,
  impl,
  backend,
  forwardMacsPerSample: fwdPerSample,
  warmupMs,
  stepMs: times,
  cpuMs: cpuTimes,
  ...(alternate ? { threads: threadsN, stepMsOneThread: timesOne } : {}),
  tensorsBefore,
  tensorsAfterWarmup,
  tensorsAfter,
  transfersPerStep: Math.max(0, ...transfersInStep),
  adapter: core.webgpuAdapter?.() ?? null,
  rssBeforeMiB: rssBefore,
  rssAfterWarmupMiB: rssAfterWarmup,
  rssAfterMiB: rssMiB(),
  peakRssMiB: peakRssMiB(),
  wasmOrBackendBytes: tf.memory().numBytes,
});
