/**
 * The training worker: Gantry's own training loop (trainLoop) and latent GAN step (LatentGanTask) from the
 * browser-safe core, with hooks that post losses, sample grids and checkpoints to the page instead of writing a
 * run directory. Training here keeps the page responsive.
 */

import * as cgan from '@gantry/cgan/networks';
import {
  adversarialLoss,
  type CheckpointFiles,
  type CheckpointTarget,
  checkpointFiles,
  type GanTask,
  type LabelledImages,
  LatentGanTask,
  modelFromArtifacts,
  modelFromFiles,
  type RunHooks,
  registerGradientFixes,
  registerWasmKernels,
  restoreFromFiles,
  seedWeights,
  setModelWeights,
  trainLoop,
} from '@gantry/core/browser';
import * as dcgan from '@gantry/dcgan/networks';
import { type Pix2pixConfig, buildDiscriminator as pix2pixDiscriminator } from '@gantry/pix2pix/networks';
import { Pix2pixTask } from '@gantry/pix2pix/task';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// Registers 'webgpu' where the worker has navigator.gpu (else nothing).
import '@tensorflow/tfjs-backend-webgpu';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import type { BackendRequest, FromWorker, ImageSet, PairSet, ToWorker, TrainSettings } from './protocol.js';

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

/** The config keys a checkpoint must share with the networks it is restored into (Node's cgan/dcgan lists). */
export const MUST_MATCH: Record<string, string[]> = {
  cgan: [
    'latentDim',
    'numClasses',
    'ngf',
    'ndf',
    'conditioning',
    'embeddingDim',
    'auxWeight',
    'conditionalBn',
    'finalConv',
    'ema',
    'imageSize',
    'channels',
    'classNames',
  ],
  dcgan: ['latentDim', 'imageSize', 'ngf', 'ndf', 'dLayers', 'dHidden', 'ema', 'channels', 'classNames'],
};

/** The browser's WebGPU adapter, named, and whether it is a software one; `name` says why when there is none. */
async function webgpuAdapter(): Promise<{ adapter: boolean; software: boolean; name: string }> {
  type Adapter = {
    info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
    isFallbackAdapter?: boolean;
  };
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<Adapter | null> } }).gpu;
  if (!gpu) return { adapter: false, software: false, name: 'this browser has no WebGPU (navigator.gpu)' };
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) return { adapter: false, software: false, name: 'the browser offers no WebGPU adapter' };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || /swiftshader|llvmpipe/i.test(name);
  return { adapter: true, software, name };
}

/**
 * Starts the backend asked for; 'auto' takes WebGPU where this build has it and the browser offers an adapter,
 * else wasm (with Gantry's gradient kernels). Returns its name and why it was picked.
 */
async function startBackend(request: BackendRequest): Promise<{ name: string; why: string }> {
  registerGradientFixes();
  const tryWasm = async () => {
    setWasmPaths({
      'tfjs-backend-wasm.wasm': wasmPlain,
      'tfjs-backend-wasm-simd.wasm': wasmSimd,
      'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
    });
    registerWasmKernels(); // before setBackend('wasm'), as in Node
    return tf.setBackend('wasm').catch(() => false);
  };
  // WebGPU where the browser offers an adapter: asked for, any adapter; 'auto', a hardware one only (a software
  // adapter such as SwiftShader is slower than wasm), as Node's automatic choice.
  let noWebgpu = '';
  if (request === 'webgpu' || request === 'auto') {
    const found = await webgpuAdapter();
    if (found.adapter && (request === 'webgpu' || !found.software)) {
      if (await tf.setBackend('webgpu').catch(() => false))
        return {
          name: 'webgpu',
          why: `${request === 'webgpu' ? 'asked for' : 'a hardware GPU adapter'}: ${found.name}`,
        };
      noWebgpu = `WebGPU: the backend did not start on ${found.name}`;
    } else noWebgpu = `WebGPU: ${found.adapter ? `only a software adapter (${found.name})` : found.name}`;
    if (request === 'webgpu') throw new Error(`backend webgpu: ${noWebgpu.slice(8)}`);
  }
  if (request === 'auto' || request === 'wasm') {
    if (await tryWasm()) {
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      return {
        name: 'wasm',
        why: `${request === 'auto' ? `${noWebgpu}; ` : 'asked for; '}WebAssembly${simd ? ' SIMD' : ''} with Gantry's gradient kernels`,
      };
    }
    if (request === 'wasm') throw new Error('backend wasm: the WebAssembly module did not load');
  }
  if (request === 'webgl' || request === 'auto') {
    if (await tf.setBackend('webgl').catch(() => false))
      return { name: 'webgl', why: request === 'auto' ? 'wasm did not start; WebGL did' : 'asked for' };
    if (request === 'webgl') throw new Error('backend webgl: no WebGL in this worker (OffscreenCanvas)');
  }
  if (!(await tf.setBackend('cpu'))) throw new Error('no TF.js backend could be started');
  return { name: 'cpu', why: request === 'cpu' ? 'asked for (pure JavaScript, slow)' : 'nothing faster started' };
}

/** Images and labels in memory as the latent GAN step reads them: [-1, 1] floats, as Node's `bytesToTensor`. */
function labelledImages(d: ImageSet): LabelledImages {
  const px = d.size * d.size * d.channels;
  return {
    count: d.count,
    batch(indices) {
      const b = indices.length;
      const f = new Float32Array(b * px);
      const labels = new Int32Array(b);
      for (let k = 0; k < b; k++) {
        const i = indices[k]!;
        const src = d.images.subarray(i * px, (i + 1) * px);
        for (let j = 0; j < px; j++) f[k * px + j] = src[j]! / 127.5 - 1;
        labels[k] = d.labels[i]!;
      }
      return {
        x: tf.tensor4d(f, [b, d.size, d.size, d.channels], 'float32'),
        y: tf.tensor1d(labels, 'int32'),
      };
    },
  };
}

/** The task of a run: the networks of Node's variant, built from the same config and seed. */
export function createTask(s: TrainSettings, data: ImageSet): LatentGanTask {
  // The config is a Node checkpoint's (or the page's defaults, which have the same keys): the variant's own type.
  const c = s.config as unknown as cgan.CganConfig & dcgan.DcganConfig;
  const nets: { buildGenerator(c: object): tf.LayersModel; buildDiscriminator(c: object): tf.LayersModel } =
    s.variant === 'cgan' ? (cgan as never) : (dcgan as never);
  seedWeights(s.seed);
  const generator = nets.buildGenerator(c);
  const discriminator = nets.buildDiscriminator(c);
  const ema = Number(s.config.ema ?? 0);
  return new LatentGanTask({
    variant: s.variant,
    generator,
    discriminator,
    latentDim: Number(s.config.latentDim),
    numClasses: s.config.numClasses as number | undefined,
    loss: adversarialLoss(s.loss),
    lr: s.lr,
    discriminatorLr: s.config.dLr as number | undefined,
    beta1: s.beta1,
    seed: s.seed,
    batchSize: s.batchSize,
    data: labelledImages(data),
    config: { ...s.config, loss: s.loss, batchSize: s.batchSize },
    mustMatch: MUST_MATCH[s.variant]!,
    generatorEma: ema > 0 ? nets.buildGenerator(c) : undefined,
    ema,
    auxClassifierWeight: s.config.auxWeight as number | undefined,
    r1: s.config.r1 as number | undefined,
    modeSeekingWeight: s.config.modeSeeking as number | undefined,
  });
}

/** Bytes of images `indices` of `bytes` ([n, size, size, c]) as a [-1, 1] tensor, flipped left-right where `flip`. */
function pairTensor(bytes: Uint8Array, indices: ArrayLike<number>, p: PairSet, flip: boolean[]): tf.Tensor4D {
  const px = p.size * p.size * p.channels;
  const f = new Float32Array(indices.length * px);
  for (let k = 0; k < indices.length; k++) {
    const src = bytes.subarray(indices[k]! * px, (indices[k]! + 1) * px);
    for (let y = 0; y < p.size; y++)
      for (let x = 0; x < p.size; x++) {
        const sx = flip[k] ? p.size - 1 - x : x;
        for (let c = 0; c < p.channels; c++)
          f[k * px + (y * p.size + x) * p.channels + c] = src[(y * p.size + sx) * p.channels + c]! / 127.5 - 1;
      }
  }
  return tf.tensor4d(f, [indices.length, p.size, p.size, p.channels], 'float32');
}

/**
 * pix2pix fine-tuning: the exported generator (checked as Node checks model files) against a new conditional
 * PatchGAN, with the default preset's losses (BCE GAN + 100·L1), Adam 2e-4 / β1 0.5 and batch 1; random flips of
 * the pairs, as Node's default augmentation.
 */
async function createPix2pixTask(s: TrainSettings, g: { generator: [string, Uint8Array][]; pairs: PairSet }) {
  const files = new Map(g.generator);
  const { json, specs, data } = modelFromFiles(files, '', 'generator export');
  const generator = await modelFromArtifacts(json, specs, data, 'generator export');
  const shape = generator.inputs[0]!.shape;
  const p = g.pairs;
  // A fully convolutional export takes any size (null); a fixed one must be the pairs' size.
  const fits = (d: number | null | undefined, want: number) => d == null || d === want;
  if (!fits(shape[1], p.size) || !fits(shape[2], p.size) || shape[3] !== p.channels) {
    generator.dispose();
    const dims = shape.slice(1).map((d) => d ?? 'any');
    throw new Error(
      `generator export: takes ${dims.join('×')} images, the pairs are ${p.size}×${p.size}×${p.channels}`,
    );
  }
  const config = {
    netG: `unet_${p.size}`,
    ngf: 0,
    ndf: Number(s.config.ndf ?? 32),
    dLayers: 3,
    norm: 'batch',
    dropout: true,
    cropSize: p.size,
    loadSize: p.size,
    direction: 'AtoB',
    channels: p.channels,
    lambdaL1: 100,
    lambdaGan: 1,
  } as Pix2pixConfig;
  seedWeights(s.seed);
  const discriminator = pix2pixDiscriminator(config);
  const pairs = {
    length: p.count,
    async batch(indices: ArrayLike<number>, rng: () => number) {
      const flip = Array.from({ length: indices.length }, () => rng() < 0.5);
      return { a: pairTensor(p.a, indices, p, flip), b: pairTensor(p.b, indices, p, flip) };
    },
  };
  const noFlip = { ...pairs, batch: async (i: ArrayLike<number>) => pairs.batch(i, () => 1) };
  return new Pix2pixTask({
    nets: { generator, discriminator },
    config,
    checkpointConfig: { ...config, ...s.config },
    mustMatch: ['cropSize', 'channels', 'ndf', 'dLayers'],
    loss: adversarialLoss(s.loss),
    lr: s.lr,
    beta1: s.beta1,
    seed: s.seed,
    batchSize: s.batchSize,
    train: pairs,
    samples: noFlip,
    sampleCount: Math.min(4, p.count),
  });
}

/** A sample grid as RGBA pixels: images [N, H, W, C] in [-1, 1], `cols` per row. */
async function gridPixels(images: tf.Tensor4D, cols: number) {
  const [n, h, w, c] = images.shape;
  const rows = Math.ceil(n / cols);
  const grid = tf.tidy(() => {
    const padded = tf.pad(
      images,
      [
        [0, rows * cols - n],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      -1,
    );
    const t = tf.transpose(tf.reshape(padded, [rows, cols, h, w, c]), [0, 2, 1, 3, 4]);
    const img = tf.reshape(t, [rows * h, cols * w, c]);
    const rgb = c === 1 ? tf.tile(img, [1, 1, 3]) : img;
    const a = tf.ones([rows * h, cols * w, 1]);
    return tf.cast(tf.clipByValue(tf.mul(tf.add(tf.concat([rgb, a], 2), 1), 127.5), 0, 255), 'int32');
  });
  const data = await grid.data();
  grid.dispose();
  return { width: cols * w, height: rows * h, rgba: Uint8ClampedArray.from(data) };
}

let paused: { promise: Promise<void>; release: () => void } | undefined;
let interrupt: ((signal: string) => void) | undefined;
let stopRequested = false;

async function run(m: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const backend = await startBackend(m.settings.backend);
  post({ type: 'backend', ...backend });
  const task: GanTask & { dispose(): void } = m.pix2pix
    ? await createPix2pixTask(m.settings, m.pix2pix)
    : createTask(m.settings, m.data);
  if (m.init && task instanceof LatentGanTask) {
    // The export's generator into G (and its average): the layer structure and every shape are checked first.
    const { json, specs, data } = modelFromFiles(new Map(m.init.generator), '', m.init.label);
    for (const net of [task.nets.generator, task.nets.generator_ema])
      if (net) setModelWeights(net, json, specs, data, m.init.label);
  }
  const resumeFiles: CheckpointFiles | undefined = m.resume ? new Map(m.resume.files) : undefined;
  const started = performance.now();
  let firstStep: number | undefined;
  const hooks: RunHooks = {
    checkpointsWhere: 'this page',
    latestCheckpoint: () => (resumeFiles ? (m.resume?.label ?? 'checkpoint') : undefined),
    saveCheckpoint: async (c) => {
      const files = await checkpointFiles(c);
      // A copy moves to the page (IndexedDB, downloads); this one stays for a rollback after a NaN.
      const list: [string, Uint8Array][] = [...files].map(([k, b]) => [k, b.slice()]);
      post(
        { type: 'checkpoint', step: c.state.step, files: list },
        list.map(([, b]) => b.buffer as ArrayBuffer),
      );
      lastSaved = files;
      return `step ${c.state.step}`;
    },
    restoreCheckpoint: async (id, target: CheckpointTarget) => {
      const files = id === m.resume?.label ? resumeFiles : lastSaved;
      if (!files) throw new Error(`${id}: not in this page`);
      return restoreFromFiles(files, id, target);
    },
    writeSamples: async (t: GanTask, _name, step) => {
      const grid = await t.sampleImages?.(step);
      if (!grid) return;
      try {
        const px = await gridPixels(grid.images, grid.cols);
        post({ type: 'samples', step, ...px }, [px.rgba.buffer]);
      } finally {
        grid.images.dispose();
      }
    },
    start: (step) => {
      firstStep = step;
      post({ type: 'started', step, stepsPerEpoch: task.stepsPerEpoch, resumed: step > 0 });
    },
    progress: (step, _epoch, losses) => {
      const seconds = (performance.now() - started) / 1000;
      post({ type: 'step', step, losses, stepsPerSecond: (step - (firstStep ?? 0)) / Math.max(seconds, 1e-3) });
    },
    onInterrupt: (handler) => {
      interrupt = handler;
      if (stopRequested) handler('stop');
      return () => {
        interrupt = undefined;
      };
    },
  };
  let lastSaved: CheckpointFiles | undefined;
  try {
    const result = await trainLoop(task, hooks, {
      steps: m.settings.steps,
      sampleEvery: m.settings.sampleEvery,
      checkpointEvery: m.settings.checkpointEvery,
      resume: resumeFiles ? true : undefined,
      nanPolicy: 'rollback',
      log: (line) => console.info(line),
      beforeStep: () => paused?.promise,
    });
    post({ type: 'done', step: result.step, interrupted: result.interrupted });
  } finally {
    task.dispose();
    for (const net of Object.values(task.nets)) net.dispose();
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === 'start') {
    run(m).catch((err: Error) => post({ type: 'error', message: err.message.split('\n')[0]! }));
  } else if (m.type === 'pause') {
    if (!paused) {
      let release = () => {};
      const promise = new Promise<void>((r) => {
        release = r;
      });
      paused = { promise, release };
    }
  } else if (m.type === 'resume') {
    paused?.release();
    paused = undefined;
  } else if (m.type === 'stop') {
    stopRequested = true;
    paused?.release();
    paused = undefined;
    interrupt?.('stop');
  }
};
