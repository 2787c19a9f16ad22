/**
 * The Train view: settings, data (MNIST served with the page, or a dropped folder), the training worker, a live
 * loss chart, sample grids, steps/s and ETA, pause/resume, checkpoints (IndexedDB, download, import).
 * State for tests: body[data-state], body[data-step], window.gantryTrain (losses per step, sample checksums).
 */

import { modelFromFiles } from '@gantry/core/browser';
import { discriminatorDefaults } from '@gantry/dcgan/networks';
import Chart from 'chart.js/auto';
import { zipSync } from 'fflate';
import { droppedFiles, loadFolder, loadMnist, loadPairs, type PathedFile } from './data.js';
import type {
  BackendRequest,
  FileList,
  FromWorker,
  ImageSet,
  PairSet,
  TrainSettings,
  VariantName,
} from './protocol.js';
import {
  checkImport,
  checkpointFromUpload,
  checkpointZip,
  clearRun,
  exportFromUpload,
  exportWidth,
  loadRun,
  type SavedRun,
  saveRun,
} from './store.js';

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const num = (id: string) => Number(input(id).value);

/** For tests and the curious: every step's losses and a checksum of every sample grid. */
const record = {
  history: [] as { step: number; losses: Record<string, number>; t: number }[],
  samples: [] as number[],
};
(window as unknown as { gantryTrain: typeof record }).gantryTrain = record;

// URL parameters prefill the form (tests use tiny networks): ?variant=&steps=&batch=&ngf=&ndf=&sampleEvery=.
for (const [param, id] of [
  ['variant', 'variant'],
  ['steps', 'steps'],
  ['batch', 'batch'],
  ['ngf', 'ngf'],
  ['ndf', 'ndf'],
  ['sampleEvery', 'sample-every'],
] as const) {
  const v = params.get(param);
  if (v !== null) input(id).value = v;
}
const limit = params.has('limit') ? Number(params.get('limit')) : undefined;
const backend = (params.get('backend') ?? 'auto') as BackendRequest;
const checkpointEvery = Number(params.get('checkpointEvery') ?? 200);

function state(s: 'idle' | 'loading' | 'training' | 'paused' | 'done' | 'error'): void {
  document.body.dataset.state = s;
  $<HTMLButtonElement>('start').disabled = s === 'loading' || s === 'training' || s === 'paused';
  $<HTMLButtonElement>('pause').disabled = s !== 'training' && s !== 'paused';
  $<HTMLButtonElement>('pause').textContent = s === 'paused' ? 'Resume' : 'Pause';
  $<HTMLButtonElement>('stop').disabled = s !== 'training' && s !== 'paused';
}
const status = (text: string) => {
  $('status').textContent = text;
};
/** Bad input or a failed run: one visible line; nothing trained is touched. */
const fail = (err: unknown) => {
  $('error').textContent = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
};

// ---- Settings ----

/** The Node variant's default options (its default preset), the widths from the form. */
function settingsFor(variant: VariantName, data: ImageSet): TrainSettings {
  const folder = data.describe.startsWith('MNIST') ? {} : { channels: data.channels, images: 'dropped folder' };
  // Node's optimizer settings for both variants (Adam 4e-4, β1 0.5, seed 42, BCE).
  const common = {
    backend,
    steps: num('steps'),
    sampleEvery: num('sample-every'),
    checkpointEvery,
    batchSize: num('batch'),
    lr: 4e-4,
    beta1: 0.5,
    seed: 42,
    loss: 'bce' as const,
  };
  if (variant === 'cgan') {
    const classes = data.classNames?.length ?? 10;
    return {
      ...common,
      variant,
      config: {
        latentDim: 100,
        imageSize: data.size,
        numClasses: classes,
        ngf: num('ngf'),
        ndf: num('ndf'),
        conditioning: 'projection',
        embeddingDim: 50,
        auxWeight: 0.3,
        conditionalBn: true,
        finalConv: false,
        ...folder,
        ...(folder.images ? { classNames: data.classNames } : {}),
        ema: 0.999,
        r1: 1,
        modeSeeking: 0.1,
        dLr: 2e-4,
      },
    };
  }
  return {
    ...common,
    variant,
    config: {
      latentDim: 100,
      imageSize: data.size,
      ngf: num('ngf'),
      ndf: num('ndf'),
      ...discriminatorDefaults(data.size),
      ...folder,
      ema: 0.9995,
      r1: 1,
      modeSeeking: 0,
      dLr: 2e-4,
    },
  };
}

/** Settings of a checkpoint's run: its variant and config; the optimiser's options are Node's defaults. */
function settingsOfCheckpoint(variant: string, config: Record<string, unknown>): TrainSettings {
  const { loss, batchSize, ...rest } = config;
  return {
    variant: variant as VariantName,
    backend,
    steps: Math.max(num('steps'), 1),
    sampleEvery: num('sample-every'),
    checkpointEvery,
    batchSize: typeof batchSize === 'number' ? batchSize : num('batch'),
    lr: 4e-4,
    beta1: 0.5,
    seed: 42,
    loss: typeof loss === 'string' ? loss : 'bce',
    config: rest,
  };
}

// ---- Data ----

let folderData: ImageSet | undefined;
let mnist: Promise<ImageSet> | undefined;

async function trainingData(settings?: TrainSettings): Promise<ImageSet> {
  const wantsFolder = settings ? settings.config.images !== undefined : $<HTMLSelectElement>('data').value === 'folder';
  if (!wantsFolder) {
    mnist ??= loadMnist(limit);
    return mnist;
  }
  if (!folderData) throw new Error('no folder of images yet: pick or drop one');
  return folderData;
}

async function useFolder(files: PathedFile[]): Promise<void> {
  const variant = $<HTMLSelectElement>('variant').value;
  status(`reading ${files.length} files…`);
  const data = await loadFolder(files, { size: 32, channels: 3, classes: variant === 'cgan' });
  folderData = data;
  $<HTMLSelectElement>('data').value = 'folder';
  $('folder-wrap').hidden = false;
  status(`${data.describe}: ready to train`);
}

// ---- Chart, samples, progress ----

const chart = new Chart($<HTMLCanvasElement>('losses'), {
  type: 'line',
  data: { labels: [], datasets: [] },
  options: {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    scales: { x: { type: 'linear', title: { display: true, text: 'step' } } },
    elements: { point: { radius: 0 } },
  },
});
let chartDirty = 0;
function plot(step: number, losses: Record<string, number>): void {
  for (const [name, value] of Object.entries(losses)) {
    let ds = chart.data.datasets.find((d) => d.label === name);
    if (!ds) {
      ds = { label: name, data: [], borderWidth: 1, hidden: !['D', 'G'].includes(name) };
      chart.data.datasets.push(ds);
    }
    (ds.data as { x: number; y: number }[]).push({ x: step, y: value });
  }
  const now = performance.now();
  if (now - chartDirty > 250) {
    chartDirty = now;
    chart.update('none');
  }
}

function drawSamples(m: Extract<FromWorker, { type: 'samples' }>): void {
  const canvas = $<HTMLCanvasElement>('samples');
  canvas.width = m.width;
  canvas.height = m.height;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(m.rgba), m.width, m.height), 0, 0);
  $('samples-caption').textContent = `samples at step ${m.step}`;
  let sum = 0;
  for (let i = 0; i < m.rgba.length; i += 4) sum += m.rgba[i]!;
  record.samples.push(sum);
  document.body.dataset.samplesStep = String(m.step);
}

// ---- The run ----

let worker: Worker | undefined;
let current: { settings: TrainSettings; data: ImageSet } | undefined;
let latest: { step: number; files: FileList } | undefined;
let done: Promise<void> | undefined;

async function start(
  settings: TrainSettings,
  data: ImageSet,
  resume?: { files: FileList; label: string },
  pix2pix?: { generator: FileList; pairs: PairSet },
  init?: { generator: FileList; label: string },
) {
  $('error').textContent = '';
  worker?.terminate();
  worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  current = { settings, data };
  record.history.length = 0;
  chart.data.datasets = [];
  chart.update('none');
  state('training');
  status(`training ${settings.variant} on ${data.describe}`);
  let resolveDone = () => {};
  done = new Promise((r) => {
    resolveDone = r;
  });
  worker.onmessage = (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    switch (m.type) {
      case 'backend':
        $('backend').textContent = `backend: ${m.name} (${m.why})`;
        document.body.dataset.backend = m.name;
        break;
      case 'started':
        status(`${m.resumed ? `resumed at step ${m.step}: ` : ''}training ${settings.variant} on ${data.describe}`);
        break;
      case 'step': {
        record.history.push({ step: m.step, losses: m.losses, t: performance.now() });
        plot(m.step, m.losses);
        document.body.dataset.step = String(m.step);
        $('progress').textContent = `step ${m.step}/${settings.steps}`;
        $('rate').textContent = `${m.stepsPerSecond.toFixed(2)} steps/s`;
        const eta = (settings.steps - m.step) / Math.max(m.stepsPerSecond, 1e-6);
        $('eta').textContent = `ETA ${eta < 90 ? `${Math.round(eta)} s` : `${Math.round(eta / 60)} min`}`;
        break;
      }
      case 'samples':
        drawSamples(m);
        break;
      case 'checkpoint':
        latest = { step: m.step, files: m.files };
        $<HTMLButtonElement>('download').disabled = false;
        // A fine-tuning run needs its export and pairs again to continue: it is downloaded, not kept.
        if (settings.variant === 'pix2pix') break;
        saveRun({ settings, step: m.step, files: m.files, savedAt: new Date().toISOString(), data: data.describe })
          .then(() => {
            document.body.dataset.savedStep = String(m.step);
          })
          .catch((err) => fail(`checkpoint not kept in this browser: ${(err as Error).message}`));
        break;
      case 'done':
        chart.update('none');
        state('done');
        status(`${m.interrupted ? 'stopped' : 'finished'} at step ${m.step}; checkpoint kept in this browser`);
        resolveDone();
        break;
      case 'error':
        fail(m.message);
        state('error');
        resolveDone();
        break;
    }
  };
  worker.postMessage({ type: 'start', settings, data, resume, pix2pix, init });
}

/** Stops the run (it checkpoints first) and waits for it. */
async function stopRun(): Promise<void> {
  if (!worker || !done || !['training', 'paused'].includes(document.body.dataset.state ?? '')) return;
  worker.postMessage({ type: 'stop' });
  await done;
}

let saved: SavedRun | undefined;

$('start').onclick = async () => {
  try {
    if ($<HTMLSelectElement>('variant').value === 'pix2pix') return await startPix2pix();
    if (saved) {
      const run = saved;
      state('loading');
      const data = await trainingData(run.settings);
      const settings = { ...run.settings, steps: Math.max(num('steps'), run.step + 1), backend };
      return start(settings, data, { files: run.files, label: `saved step ${run.step}` });
    }
    state('loading');
    status('loading data…');
    const data = await trainingData();
    await start(settingsFor($<HTMLSelectElement>('variant').value as VariantName, data), data);
  } catch (err) {
    fail(err);
    state('idle');
  }
};
$('new-run').onclick = async () => {
  await clearRun().catch(() => undefined);
  saved = undefined;
  $('new-run').hidden = true;
  $('start').textContent = 'Start';
  status('');
};
$('pause').onclick = () => {
  const paused = document.body.dataset.state === 'paused';
  worker?.postMessage({ type: paused ? 'resume' : 'pause' });
  state(paused ? 'training' : 'paused');
};
$('stop').onclick = () => {
  stopRun().catch(fail);
};
$('download').onclick = () => {
  if (!latest || !current) return;
  if (current.settings.variant === 'pix2pix') return downloadExport(latest.files);
  // A run on MNIST's first N digits says so, so that Node's resume reads the same digits.
  const mnistLimit = current.settings.config.images === undefined && limit !== undefined ? { limit } : {};
  const zip = checkpointZip(latest.step, latest.files, current.settings, mnistLimit);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([zip as BlobPart], { type: 'application/zip' }));
  a.download = `${current.settings.variant}-step-${String(latest.step).padStart(8, '0')}.zip`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
};
$<HTMLSelectElement>('data').onchange = () => {
  $('folder-wrap').hidden = $<HTMLSelectElement>('data').value !== 'folder';
};
$<HTMLSelectElement>('variant').onchange = () => {
  const variant = $<HTMLSelectElement>('variant').value;
  for (const el of document.querySelectorAll<HTMLElement>('.pix2pix')) el.hidden = variant !== 'pix2pix';
  if (variant === 'pix2pix') {
    input('batch').value = '1';
    input('ndf').value = '32';
    return;
  }
  const cgan = variant === 'cgan';
  input('batch').value = cgan ? '64' : '32';
  input('ngf').value = '32';
  input('ndf').value = cgan ? '16' : '32';
};

const readFiles = (files: PathedFile[]) =>
  Promise.all(files.map(async (f) => ({ path: f.path, bytes: new Uint8Array(await f.file.arrayBuffer()) })));
const pathed = (list: globalThis.FileList | null): PathedFile[] =>
  [...(list ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file }));

/** Continues training from an uploaded checkpoint (zip or folder), after the same checks Node makes. */
async function importCheckpoint(files: PathedFile[]): Promise<void> {
  const label = files.length === 1 ? files[0]!.path : (files[0]?.path.split('/')[0] ?? 'upload');
  const uploaded = await readFiles(files);
  const exported = exportFromUpload(uploaded);
  if (exported) return continueExport(exported, label);
  const ckpt = checkpointFromUpload(uploaded);
  const st = checkImport(ckpt, label, ['cgan', 'dcgan']);
  const settings = settingsOfCheckpoint(st.variant, st.config);
  settings.steps = Math.max(settings.steps, st.step + 1);
  const data = await trainingData(settings);
  await stopRun();
  status(`imported ${label}: ${st.variant} at step ${st.step}`);
  await start(settings, data, { files: [...ckpt], label });
}

/**
 * Starts a run whose generator is a Node export's (cGAN or DCGAN, checked with Node's model-file code; D starts
 * fresh): the networks are built with the export's latent size and G width, and its weights must fit them.
 */
async function continueExport(
  exported: { files: Map<string, Uint8Array>; meta: Record<string, unknown> },
  label: string,
): Promise<void> {
  const { meta, files } = exported;
  const variant = String(meta.variant);
  if (meta.kind !== 'latent' || !['cgan', 'dcgan'].includes(variant))
    throw new Error(`${label}: a ${meta.variant ?? 'unknown'} export; the page continues cgan and dcgan exports`);
  modelFromFiles(files, '', label);
  const size = Number(meta.imageSize);
  // MNIST for a 28×28 export, else the folder of images picked.
  const data = await trainingData({ config: size === 28 ? {} : { images: 'folder' } } as TrainSettings);
  if (data.size !== size) throw new Error(`${label}: ${size}×${size} images, the data is ${data.size}×${data.size}`);
  const settings = settingsFor(variant as VariantName, data);
  settings.config.latentDim = Number(meta.latentDim);
  settings.config.ngf = exportWidth(files.get('model.json')!, size, label);
  await stopRun();
  $<HTMLSelectElement>('variant').value = variant;
  input('ngf').value = String(settings.config.ngf);
  await start(settings, data, undefined, undefined, { generator: [...files], label });
  status(`training ${variant} from the export ${label} (G width ${settings.config.ngf}; D starts fresh)`);
}

for (const id of ['import', 'import-folder']) {
  input(id).onchange = () => {
    const files = pathed(input(id).files);
    input(id).value = '';
    importCheckpoint(files).catch(fail);
  };
}
input('folder').onchange = () => {
  const files = pathed(input('folder').files);
  useFolder(files).catch(fail);
};

// ---- pix2pix fine-tuning: an exported generator and A|B pairs ----

interface ExportMeta {
  kind?: string;
  imageSize?: number;
  channels?: number;
  direction?: 'AtoB' | 'BtoA';
  [k: string]: unknown;
}
const p2p: { generator?: { files: FileList; meta: ExportMeta; label: string }; pairs?: PairSet } = {};

/** The files of a picked folder relative to it (its own name stripped). */
function relative(files: { path: string; bytes: Uint8Array }[]): Map<string, Uint8Array> {
  return new Map(files.map((f) => [f.path.split('/').slice(1).join('/') || f.path, f.bytes]));
}

/** Checks a picked generator export with Node's model-file checks and reads its metadata. */
async function useGenerator(files: PathedFile[]): Promise<void> {
  const label = files[0]?.path.split('/')[0] ?? 'export';
  const map = relative(await readFiles(files));
  if (!map.has('model.json'))
    throw new Error(`${label}: no model.json (pick the folder \`pix2pix export --out\` wrote)`);
  let meta: ExportMeta;
  try {
    meta = JSON.parse(new TextDecoder().decode(map.get('metadata.json')));
  } catch {
    throw new Error(`${label}: no readable metadata.json (pick the folder \`pix2pix export --out\` wrote)`);
  }
  if (meta.kind !== 'image-to-image' || typeof meta.imageSize !== 'number' || ![1, 3].includes(Number(meta.channels)))
    throw new Error(`${label}/metadata.json: not an image-to-image export (kind, imageSize, channels)`);
  modelFromFiles(map, '', label);
  p2p.generator = { files: [...map], meta, label };
  p2p.pairs = undefined;
  status(
    `generator ${label}: ${meta.imageSize}×${meta.imageSize}, ${meta.direction ?? 'AtoB'}; now pick the A|B pairs`,
  );
}

async function usePairs(files: PathedFile[]): Promise<void> {
  const g = p2p.generator;
  if (!g) throw new Error('pick the generator export first (its size sets the pairs’ size)');
  p2p.pairs = await loadPairs(files, {
    size: g.meta.imageSize!,
    channels: g.meta.channels as 1 | 3,
    direction: g.meta.direction === 'BtoA' ? 'BtoA' : 'AtoB',
  });
  status(`${p2p.pairs.describe}: ready to fine-tune ${g.label}`);
}

async function startPix2pix(): Promise<void> {
  const { generator, pairs } = p2p;
  if (!generator || !pairs) throw new Error('pix2pix: pick a generator export and a folder of A|B pairs first');
  await stopRun();
  const settings: TrainSettings = {
    variant: 'pix2pix',
    backend,
    steps: num('steps'),
    sampleEvery: num('sample-every'),
    checkpointEvery,
    batchSize: num('batch'),
    lr: 2e-4,
    beta1: 0.5,
    seed: 42,
    loss: 'bce',
    config: { ndf: num('ndf') },
  };
  const data = { describe: pairs.describe } as ImageSet;
  await start(settings, data, undefined, { generator: generator.files, pairs });
}

/** The fine-tuned generator as an export folder (what the demo page and `translate` load), zipped. */
function downloadExport(files: FileList): void {
  const g = p2p.generator;
  const map = new Map(files);
  const root = 'pix2pix-finetuned';
  const zip = zipSync({
    [`${root}/model.json`]: map.get('generator/model.json')!,
    [`${root}/weights.bin`]: map.get('generator/weights.bin')!,
    [`${root}/metadata.json`]: new TextEncoder().encode(JSON.stringify({ ...g?.meta, fineTunedSteps: latest?.step })),
  });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([zip as BlobPart], { type: 'application/zip' }));
  a.download = `${root}.zip`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

input('generator').onchange = () => {
  $('error').textContent = '';
  useGenerator(pathed(input('generator').files)).catch(fail);
};
input('pairs').onchange = () => {
  $('error').textContent = '';
  usePairs(pathed(input('pairs').files)).catch(fail);
};

// Drops: a checkpoint (a zip, or a folder with state.json) or a folder of training images.
const drop = document.body;
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  $('drop').classList.add('over');
});
drop.addEventListener('dragleave', () => $('drop').classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  $('drop').classList.remove('over');
  $('error').textContent = '';
  const items = e.dataTransfer?.items;
  if (!items) return;
  droppedFiles(items)
    .then((files) =>
      files.some((f) => f.path.endsWith('state.json') || /\.zip$/i.test(f.path))
        ? importCheckpoint(files)
        : useFolder(files),
    )
    .catch(fail);
});

// A reload continues where the run stopped: the newest checkpoint is in IndexedDB.
state('idle');
loadRun()
  .then((run) => {
    if (!run) return;
    saved = run;
    latest = { step: run.step, files: run.files };
    current = { settings: run.settings, data: { describe: run.data } as ImageSet };
    $<HTMLButtonElement>('download').disabled = false;
    $('start').textContent = `Continue from step ${run.step}`;
    $('new-run').hidden = false;
    status(`a ${run.settings.variant} run on ${run.data} is saved at step ${run.step} (${run.savedAt})`);
    document.body.dataset.savedStep = String(run.step);
  })
  .catch((err) => fail(`IndexedDB unavailable: ${(err as Error).message}`))
  .finally(() => {
    document.body.dataset.ready = 'true';
  });
