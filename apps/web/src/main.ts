/** The demo page: wires the controls to the models in models.ts. State for tests: body[data-digits|data-translated]. */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
// Registers 'webgpu' where the browser has navigator.gpu (else nothing).
import '@tensorflow/tfjs-backend-webgpu';
import {
  generate,
  type ImageMeta,
  type LatentMeta,
  type Loaded,
  loadMeta,
  loadModel,
  modelIndex,
  normals,
  slerp,
  translate,
} from './models.js';

const params = new URLSearchParams(location.search);
/** Where exported models live: `models/` next to the page, or `?models=URL/`. */
const base = (() => {
  const b = params.get('models') ?? 'models/';
  return b.endsWith('/') ? b : `${b}/`;
})();

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function status(id: string, text: string, warn = false): void {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('warn', warn);
}

async function draw(t: tf.Tensor3D, canvas: HTMLCanvasElement): Promise<void> {
  canvas.width = t.shape[1];
  canvas.height = t.shape[0];
  await tf.browser.toPixels(t, canvas);
}

/** The order the page tries: the GPU through WebGPU, then through WebGL, then WebAssembly on the CPU. */
const BACKEND_ORDER = ['webgpu', 'webgl', 'wasm'] as const;
const BACKEND_WORDS: Record<string, string> = {
  webgpu: 'WebGPU, on the GPU',
  webgl: 'WebGL, on the GPU',
  wasm: 'WebAssembly, on the CPU',
  cpu: 'plain JavaScript, on the CPU',
};

async function initBackend(): Promise<void> {
  // The wasm binaries are served with the page (Vite copies them): nothing is fetched from elsewhere.
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmPlain,
    'tfjs-backend-wasm-simd.wasm': wasmSimd,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
  });
  const wanted = params.get('backend');
  if (wanted) {
    if (!(await tf.setBackend(wanted))) throw new Error(`backend ${wanted} is not available here`);
  } else {
    let started = false;
    for (const name of BACKEND_ORDER) {
      if (tf.findBackendFactory(name) == null) continue;
      try {
        if (await tf.setBackend(name)) {
          started = true;
          break;
        }
      } catch {}
    }
    if (!started) await tf.ready();
  }
  tf.enableProdMode();
  const name = tf.getBackend();
  $('backend').textContent = `backend: ${name}`;
  $('backend').title = BACKEND_WORDS[name] ?? name;
}

// ---- Digits ----

interface DigitState {
  g?: Loaded<LatentMeta>;
  seed: number;
  busy: boolean;
  again: boolean;
}
const digits: DigitState = { seed: 1, busy: false, again: false };

async function renderDigits(): Promise<void> {
  const g = digits.g;
  if (!g) return;
  // Coalesce slider events: one render at a time, the latest settings win.
  if (digits.busy) {
    digits.again = true;
    return;
  }
  digits.busy = true;
  try {
    const t = Number($<HTMLInputElement>('noise').value) / 100;
    const z = slerp(normals(g.meta.latentDim, digits.seed * 2), normals(g.meta.latentDim, digits.seed * 2 + 1), t);
    const label = Number($<HTMLSelectElement>('digit-label').value || 0);
    const classes = g.meta.labels ? g.meta.labels.length : 10;
    const rowZ = g.meta.labels
      ? Array.from({ length: classes }, () => z)
      : Array.from({ length: 10 }, (_, i) => normals(g.meta.latentDim, 1000 + digits.seed * 10 + i));
    const rowLabels = g.meta.labels ? Array.from({ length: classes }, (_, i) => i) : undefined;
    const images = generate(g, [z, ...rowZ], g.meta.labels ? [label, ...rowLabels!] : undefined);
    const parts = tf.unstack(images) as tf.Tensor3D[];
    images.dispose();
    await draw(parts[0]!, $('digit'));
    const row = $('digit-row');
    if (row.childElementCount !== parts.length - 1) {
      row.replaceChildren(
        ...parts.slice(1).map((_, i) => {
          const c = document.createElement('canvas');
          c.className = 'pixel';
          c.title = g.meta.labels ? `class ${g.meta.labels[i]}` : `sample ${i + 1}`;
          if (g.meta.labels) {
            c.addEventListener('click', () => {
              $<HTMLSelectElement>('digit-label').value = String(i);
              void renderDigits();
            });
          }
          return c;
        }),
      );
    }
    await Promise.all(parts.slice(1).map((p, i) => draw(p, row.children[i] as HTMLCanvasElement)));
    tf.dispose(parts);
    document.body.dataset.digits = 'ready';
  } finally {
    digits.busy = false;
    if (digits.again) {
      digits.again = false;
      void renderDigits();
    }
  }
}

async function selectDigitModel(name: string): Promise<void> {
  status('digits-status', `loading ${name}…`);
  const g = (await loadModel(base, name)) as Loaded<LatentMeta>;
  digits.g?.model.dispose();
  digits.g = g;
  const labels = g.meta.labels;
  $('label-wrap').hidden = !labels;
  $<HTMLSelectElement>('digit-label').replaceChildren(...(labels ?? []).map((l, i) => new Option(l, String(i))));
  if (labels && labels.length > 7) $<HTMLSelectElement>('digit-label').value = '7';
  await renderDigits();
  status(
    'digits-status',
    `${g.meta.variant}: ${g.describe}, ${g.meta.imageSize}×${g.meta.imageSize}, noise of ${g.meta.latentDim} dimensions. The slider walks from one noise vector to another.`,
  );
}

async function initDigits(names: string[]): Promise<void> {
  const select = $<HTMLSelectElement>('digit-model');
  if (!names.length) {
    $('digits-card').classList.add('empty');
    status(
      'digits-status',
      'No digit model exported: pnpm --filter cgan export --out apps/web/public/models/cgan, then rebuild.',
      true,
    );
    return;
  }
  // Conditional models first: they can draw the digit you ask for.
  const order = ['cgan', 'dcgan', 'gan'];
  names.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  select.addEventListener('change', () => void selectDigitModel(select.value).catch(fail('digits-status')));
  $('digit-label').addEventListener('change', () => void renderDigits());
  $('noise').addEventListener('input', () => void renderDigits());
  $('new-noise').addEventListener('click', () => {
    digits.seed++;
    void renderDigits();
  });
  await selectDigitModel(names[0]!);
}

// ---- Day → night ----

const translators: Loaded<ImageMeta>[] = [];

/** A procedural day scene (sky, sun, hills, houses), like the bundled training data, for trying without a file. */
function exampleScene(size = 256): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const x = c.getContext('2d')!;
  const sky = x.createLinearGradient(0, 0, 0, size * 0.6);
  sky.addColorStop(0, '#5fa8e8');
  sky.addColorStop(1, '#cde6f7');
  x.fillStyle = sky;
  x.fillRect(0, 0, size, size);
  x.fillStyle = '#ffd84a';
  x.beginPath();
  x.arc(size * 0.78, size * 0.2, size * 0.08, 0, Math.PI * 2);
  x.fill();
  x.fillStyle = '#6bb36b';
  x.beginPath();
  x.ellipse(size * 0.3, size * 0.68, size * 0.5, size * 0.14, 0, 0, Math.PI * 2);
  x.fill();
  x.fillStyle = '#4e9a4e';
  x.fillRect(0, size * 0.68, size, size * 0.32);
  const houses: [number, number, number, string][] = [
    [0.12, 0.18, 0.16, '#c85a3a'],
    [0.42, 0.22, 0.2, '#e0c080'],
    [0.72, 0.16, 0.14, '#9a6ad0'],
  ];
  for (const [hx, w, h, col] of houses) {
    const [X, W, H, Y] = [hx * size, w * size, h * size, size * 0.72];
    x.fillStyle = col;
    x.fillRect(X, Y - H, W, H);
    x.fillStyle = '#5a3a2a';
    x.beginPath();
    x.moveTo(X - 4, Y - H);
    x.lineTo(X + W / 2, Y - H - H * 0.6);
    x.lineTo(X + W + 4, Y - H);
    x.fill();
    x.fillStyle = '#f5f1dc';
    x.fillRect(X + W * 0.2, Y - H * 0.7, W * 0.22, H * 0.25);
    x.fillRect(X + W * 0.58, Y - H * 0.7, W * 0.22, H * 0.25);
  }
  return c;
}

/** The longest side a picture is translated at in the page (larger ones are scaled down to bound memory). */
const MAX_SIDE = 512;
/** The pixel limit of every image Gantry decodes (MAX_IMAGE_MEGAPIXELS, packages/core/src/runs/image.ts). */
const MAX_MEGAPIXELS = 50;

/**
 * An uploaded picture, refused over MAX_MEGAPIXELS from its size alone: an <img> knows its size once loaded, and
 * the browser decodes its pixels only when they are drawn (createImageBitmap of a 400-megapixel file would not).
 */
async function readUpload(file: File): Promise<ImageBitmap> {
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('not an image this browser can read'));
    });
    const megapixels = (img.naturalWidth * img.naturalHeight) / 1e6;
    if (megapixels > MAX_MEGAPIXELS)
      throw new Error(
        `${img.naturalWidth}×${img.naturalHeight} is ${megapixels.toFixed(1)} megapixels, over the limit of ${MAX_MEGAPIXELS}`,
      );
    return await createImageBitmap(img);
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function runTranslation(source: HTMLCanvasElement | ImageBitmap): Promise<void> {
  const input = $<HTMLCanvasElement>('input');
  // The whole picture, aspect kept: the generators run at its own resolution (up to MAX_SIDE).
  const scale = Math.min(1, MAX_SIDE / Math.max(source.width, source.height));
  input.width = Math.max(1, Math.round(source.width * scale));
  input.height = Math.max(1, Math.round(source.height * scale));
  input.getContext('2d')!.drawImage(source, 0, 0, input.width, input.height);
  if (!translators.length) return;
  status('translate-status', 'translating…');
  const t0 = performance.now();
  for (const g of translators) {
    const out = await translate(g, input);
    await draw(out, $(`${g.name}-out`));
    out.dispose();
  }
  status(
    'translate-status',
    `${translators.map((g) => `${g.name}: ${g.describe}`).join(' · ')} · ${translators[0]!.runtime} · at the picture's own ${input.width}×${input.height} pixels · ${(performance.now() - t0).toFixed(0)} ms`,
  );
  document.body.dataset.translated = 'ready';
}

async function initTranslation(names: string[]): Promise<void> {
  for (const name of ['pix2pix', 'cyclegan']) {
    const caption = $(`${name}-caption`);
    if (!names.includes(name)) {
      caption.textContent = `${name}: not exported`;
      continue;
    }
    const g = (await loadModel(base, name)) as Loaded<ImageMeta>;
    translators.push(g);
    caption.textContent = `${name === 'pix2pix' ? 'pix2pix' : 'CycleGAN'} (${g.describe})`;
  }
  if (!translators.length) {
    $('translate-card').classList.add('empty');
    status(
      'translate-status',
      'No translation model exported: pnpm --filter pix2pix export --out apps/web/public/models/pix2pix (and cyclegan), then rebuild.',
      true,
    );
  }
  $('example').addEventListener('click', () => void runTranslation(exampleScene()).catch(fail('translate-status')));
  $<HTMLInputElement>('upload').addEventListener('change', async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      await runTranslation(await readUpload(file));
    } catch (err) {
      fail('translate-status')(new Error(`${file.name}: ${(err as Error).message}`));
    }
  });
  await runTranslation(exampleScene());
}

function fail(where: string) {
  return (err: unknown) => {
    status(where, `error: ${(err as Error).message}`, true);
    console.error(err);
  };
}

async function main(): Promise<void> {
  await initBackend();
  const names = await modelIndex(base);
  const kinds = await Promise.all(names.map(async (n) => [n, (await loadMeta(base, n)).kind] as const));
  await Promise.all([
    initDigits(kinds.filter(([, k]) => k === 'latent').map(([n]) => n)).catch(fail('digits-status')),
    initTranslation(kinds.filter(([, k]) => k === 'image-to-image').map(([n]) => n)).catch(fail('translate-status')),
  ]);
  document.body.dataset.loaded = 'true';
}

void main().catch((err) => {
  status('digits-status', `error: ${(err as Error).message}`, true);
  console.error(err);
});
