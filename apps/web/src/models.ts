/**
 * Loading exported Gantry generators (what `export --out DIR` writes: model.json + weights.bin + metadata.json,
 * CycleGAN: G_A/ and G_B/) and running them with TF.js in the browser.
 */

// Registers Gantry's custom layers: InstanceNormalization and ReflectionPadding2D (pix2pix/CycleGAN generators),
// ClassConditionalAffine (the cGAN generator's conditional batch norm).
import { checkedWeights, modelFromArtifacts, parseModelJson, relativeWeightPath } from '@gantry/core/browser';
import { type FloatImage, forwardPadded, type ImageTranslator, imageTranslator } from '@gantry/layers';
import * as tf from '@tensorflow/tfjs';

export interface LatentMeta {
  variant: string;
  kind: 'latent';
  imageSize: number;
  channels: number;
  latentDim: number;
  labels: string[] | null;
}

export interface ImageMeta {
  variant: string;
  kind: 'image-to-image';
  imageSize: number;
  channels: number;
  direction?: string;
  generators?: Record<string, string>;
  domains?: { A: string; B: string };
}

export type Meta = LatentMeta | ImageMeta;

export interface Loaded<M extends Meta = Meta> {
  name: string;
  meta: M;
  model: tf.LayersModel;
  /** What the model does, for captions ("day → night"). */
  describe: string;
  /** Image-to-image models: the generator at any input size (a multiple of its stride multiple). */
  translator?: ImageTranslator;
  /** What runs the translator: TF.js, or onnxruntime-web with its backend. */
  runtime?: string;
}

/**
 * Batch norm on the image's own statistics with dropout on (the pix2pix paper's and the reference implementation's
 * default test mode, as `translate` runs by default); `?eval=1` uses the running statistics instead.
 */
const evalMode = typeof location !== 'undefined' && new URLSearchParams(location.search).get('eval') === '1';

/**
 * `?runtime=onnx`: the translators run in ONNX Runtime Web (WebGPU where the browser has it, else WebAssembly) on
 * the ONNX files `export --format onnx` writes next to the TF.js export (<model>/model.onnx; CycleGAN:
 * model.G_A.onnx and model.G_B.onnx). The digits stay on TF.js.
 */
export const runtime =
  typeof location !== 'undefined' && new URLSearchParams(location.search).get('runtime') === 'onnx' ? 'onnx' : 'tfjs';

/** The ONNX file at `url` as a translator (NHWC tensors in and out, like TF.js's), and the runtime's backend. */
async function onnxTranslator(url: string): Promise<{ translator: ImageTranslator; backend: string }> {
  const ort = await import('onnxruntime-web');
  const { default: onnxProto } = await import('onnx-proto');
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status} (export it with --format onnx)`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const props = Object.fromEntries(
    onnxProto.onnx.ModelProto.decode(bytes).metadataProps.map((p) => [p.key, p.value] as const),
  );
  const gpu =
    typeof navigator !== 'undefined' &&
    'gpu' in navigator &&
    (await (navigator as { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter().catch(() => null));
  const backend = gpu ? 'webgpu' : 'wasm';
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [backend] });
  const input = session.inputNames[0]!;
  const inChannels = Number(props.channels ?? 3);
  const fn = async (x: tf.Tensor4D): Promise<tf.Tensor4D> => {
    const [n, h, w, c] = x.shape;
    const nchw = tf.tidy(() => tf.transpose(x, [0, 3, 1, 2]));
    const feed = new ort.Tensor('float32', (await nchw.data()) as Float32Array, [n, c, h, w]);
    nchw.dispose();
    const out = (await session.run({ [input]: feed }))[session.outputNames[0]!]!;
    const data = (await out.getData()) as Float32Array;
    const [, oc, oh, ow] = out.dims as number[];
    out.dispose();
    return tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, oc!, oh!, ow!]), [0, 2, 3, 1]) as tf.Tensor4D);
  };
  return { translator: { fn, multiple: Number(props.multiple ?? 1), inChannels }, backend };
}

/** The translator of `model` in the page's runtime (`url`: its ONNX file, next to the TF.js export). */
async function translatorFor(
  model: tf.LayersModel,
  url: string,
): Promise<{ translator: ImageTranslator; runtime: string }> {
  if (runtime !== 'onnx') return { translator: await imageTranslator(model, evalMode), runtime: 'TF.js' };
  const o = await onnxTranslator(url);
  return { translator: o.translator, runtime: `onnxruntime-web (${o.backend})` };
}

async function fetchJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

/** The models the built page offers (models/index.json, written by the build from public/models/). */
export async function modelIndex(base: string): Promise<string[]> {
  try {
    const idx = await fetchJson<{ models?: string[] }>(`${base}index.json`);
    return Array.isArray(idx.models) ? idx.models : [];
  } catch {
    return [];
  }
}

export async function loadMeta(base: string, name: string): Promise<Meta> {
  return fetchJson<Meta>(`${base}${name}/metadata.json`);
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/**
 * Loads the TF.js layers model at `url` (a model.json) with Node's checks of model files (runs/checkpoint-data.ts):
 * weight paths inside the model's folder, names, shapes, dtypes, sizes, and no NaN/Inf weights.
 */
export async function loadCheckedModel(url: string): Promise<tf.LayersModel> {
  const json = parseModelJson(await fetchBytes(url), url);
  const dir = url.slice(0, url.lastIndexOf('/') + 1);
  const parts = await Promise.all(
    json.weightsManifest.flatMap((g) =>
      g.paths.map(async (p) => {
        const file = `${dir}${relativeWeightPath(p, url)}`;
        return { file, bytes: await fetchBytes(file) };
      }),
    ),
  );
  const { specs, data } = checkedWeights(json, parts);
  return modelFromArtifacts(json, specs, data, url);
}

/**
 * Loads model `name`. A CycleGAN export holds both generators: the one whose source domain is `from` ('day'),
 * else G_A.
 */
export async function loadModel(base: string, name: string, from = 'day'): Promise<Loaded> {
  const meta = await loadMeta(base, name);
  if (meta.kind === 'latent') {
    const model = await loadCheckedModel(`${base}${name}/model.json`);
    return { name, meta, model, describe: meta.labels ? 'class-conditional' : 'unconditional' };
  }
  if (meta.generators) {
    const d = meta.domains ?? { A: 'A', B: 'B' };
    const g = d.B === from ? 'G_B' : 'G_A';
    const model = await loadCheckedModel(`${base}${name}/${g}/model.json`);
    const [src, dst] = g === 'G_A' ? [d.A, d.B] : [d.B, d.A];
    return {
      name,
      meta,
      model,
      describe: `${src} → ${dst}`,
      ...(await translatorFor(model, `${base}${name}/model.${g}.onnx`)),
    };
  }
  const model = await loadCheckedModel(`${base}${name}/model.json`);
  // The bundled day/night pairs are A = night, B = day: BtoA is day → night.
  const describe = meta.direction === 'BtoA' ? 'day → night' : meta.direction === 'AtoB' ? 'A → B' : 'translation';
  return { name, meta, model, describe, ...(await translatorFor(model, `${base}${name}/model.onnx`)) };
}

/** Small deterministic PRNG (mulberry32) and Box–Muller normals: the same seed, the same digit. */
export function normals(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Spherical interpolation between two noise vectors (stays on the shell where Gaussian noise lives). */
export function slerp(z0: Float32Array, z1: Float32Array, t: number): Float32Array {
  let dot = 0;
  let n0 = 0;
  let n1 = 0;
  for (let i = 0; i < z0.length; i++) {
    dot += z0[i]! * z1[i]!;
    n0 += z0[i]! ** 2;
    n1 += z1[i]! ** 2;
  }
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(n0 * n1 || 1))));
  const out = new Float32Array(z0.length);
  if (omega < 1e-4) {
    for (let i = 0; i < z0.length; i++) out[i] = (1 - t) * z0[i]! + t * z1[i]!;
    return out;
  }
  const s = Math.sin(omega);
  const a = Math.sin((1 - t) * omega) / s;
  const b = Math.sin(t * omega) / s;
  for (let i = 0; i < z0.length; i++) out[i] = a * z0[i]! + b * z1[i]!;
  return out;
}

/** Generator output in [-1, 1] to displayable [0, 1]. */
const toUnit = (x: tf.Tensor) => tf.clipByValue(tf.div(tf.add(x, 1), 2), 0, 1);

/** Draws digits: one noise vector per row of `z`, with `labels` for a conditional model. Returns [N, H, W, C] in [0, 1]. */
export function generate(g: Loaded<LatentMeta>, z: Float32Array[], labels?: number[]): tf.Tensor4D {
  return tf.tidy(() => {
    const n = z.length;
    const flat = new Float32Array(n * g.meta.latentDim);
    for (const [i, v] of z.entries()) flat.set(v, i * g.meta.latentDim);
    const zt = tf.tensor2d(flat, [n, g.meta.latentDim]);
    const inputs = g.meta.labels
      ? [zt, tf.tensor2d(Int32Array.from(labels ?? new Array(n).fill(0)), [n, 1], 'int32')]
      : zt;
    return toUnit(g.model.predict(inputs) as tf.Tensor) as tf.Tensor4D;
  });
}

/**
 * Runs an image-to-image generator on a picture at the picture's own size (native resolution: reflect-padded to the
 * generator's stride multiple and cropped back, whatever size the model was exported at): [-1, 1] in, [0, 1] out.
 */
export async function translate(
  g: Loaded<ImageMeta>,
  source: HTMLCanvasElement | HTMLImageElement | ImageBitmap,
): Promise<tf.Tensor3D> {
  const t = g.translator!;
  const x = tf.tidy(() => {
    let img = tf.browser
      .fromPixels(source as HTMLCanvasElement, 3)
      .toFloat()
      .div(127.5)
      .sub(1) as tf.Tensor3D;
    if (t.inChannels === 1) img = tf.mean(img, -1, true) as tf.Tensor3D;
    return img;
  });
  const [height, width, channels] = x.shape;
  const img: FloatImage = { data: (await x.data()) as Float32Array, height, width, channels };
  x.dispose();
  const out = await forwardPadded(t.fn, img, t.multiple);
  return tf.tidy(() => {
    let y = toUnit(tf.tensor3d(out.data, [out.height, out.width, out.channels])) as tf.Tensor3D;
    if (y.shape[2] === 1) y = tf.tile(y, [1, 1, 3]);
    return y;
  });
}
