/**
 * The Train view in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): a tiny cGAN trains
 * on MNIST served with the page, in a Web Worker on wasm with Gantry's kernels (finite losses, changing samples);
 * a reload offers to continue from the checkpoint in IndexedDB; the downloaded checkpoint is read by the Node app
 * (`cgan generate --checkpoint`); a checkpoint made by Node's trainer resumes in the page with the next step's
 * losses equal to Node's; bad uploads get a one-line message and leave the saved run alone.
 *
 * The same cGAN trains a few steps on WebGPU in a Chromium with WebGPU on (SwiftShader's adapter on a machine without
 * a GPU); 'auto' passes a software adapter by for wasm, saying why.
 *
 * Skipped only when /usr/bin/chromium is absent (CI installs it: apt-get install -y chromium); the WebGPU case is
 * skipped, with the reason printed, where Chromium offers no WebGPU adapter.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDiscriminator, buildGenerator } from '@gantry/cgan';
import {
  adversarialLoss,
  encodePng,
  initBackend,
  LatentGanTask,
  loadModel,
  readCheckpointState,
  saveModel,
  seedWeights,
  train,
  unetGenerator,
} from '@gantry/core';
import { loadMnistSplit, mnistImages } from '@gantry/mnist';
import * as tf from '@tensorflow/tfjs';
import { unzipSync, zipSync } from 'fflate';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.warn(`web train e2e: skipped, ${CHROMIUM} is not installed (apt-get install -y chromium)`);
/** Chromium with WebGPU on: on a machine without a GPU its adapter is SwiftShader (slow: a few tiny steps only). */
const WEBGPU_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--no-first-run',
  '--disable-background-networking',
];

const webDir = path.resolve(import.meta.dirname, '..');
const repo = path.resolve(webDir, '../..');
const dist = path.join(webDir, 'dist');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-train-web-'));

/** The page's tiny cGAN: Node's default options but for the widths and batch (URL parameters of the page). */
const TINY = { ngf: 8, ndf: 8, batch: 16, limit: 2000 };
/** The page's tiny cGAN networks, as Node's config (the page's defaults at TINY's widths). */
const TINY_CGAN = {
  latentDim: 100,
  imageSize: 28 as const,
  numClasses: 10,
  ngf: TINY.ngf,
  ndf: TINY.ndf,
  conditioning: 'projection' as const,
  embeddingDim: 50,
  auxWeight: 0.3,
  conditionalBn: true,
  finalConv: false,
};
const query = (o: Record<string, string | number>) =>
  `train.html?${new URLSearchParams(Object.entries({ ...o }).map(([k, v]) => [k, String(v)]))}`;

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

function serve(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.resolve(dist, url === '/' ? 'index.html' : url.slice(1));
    if (!file.startsWith(dist) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(repo, 'apps', 'cgan', 'dist', 'cli.js'), ...args],
      { env: { ...process.env, GANTRY_RUNS: path.join(tmp, 'runs') }, timeout: 120_000 },
      (error, out, err) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, out, err }),
    );
  });
}

/** A zip of checkpoint folder `dir` (as the page downloads them). */
function zipDir(dir: string): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  const walk = (d: string, prefix: string) => {
    for (const n of fs.readdirSync(d)) {
      const f = path.join(d, n);
      if (fs.statSync(f).isDirectory()) walk(f, `${prefix}${n}/`);
      else entries[`${path.basename(dir)}/${prefix}${n}`] = fs.readFileSync(f);
    }
  };
  walk(dir, '');
  return zipSync(entries);
}

/** `n` PNGs of coloured discs of varied sizes (48×40, so the page crops and resizes them). */
async function writeImages(dir: string, n: number, width = 48, height = 40): Promise<void> {
  await initBackend({ backend: 'cpu', log: () => {} });
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const img = tf.tidy(() => {
      const y = tf.linspace(-1, 1, height).reshape([height, 1]);
      const x = tf.linspace(-1.2, 1.2, width).reshape([1, width]);
      const disc = tf.less(tf.add(tf.square(x), tf.square(y)), 0.2 + (i % 5) / 10);
      const c = tf.tensor1d([(i % 3) - 1, ((i >> 1) % 3) - 1, 0.5]);
      return tf.where(
        tf.expandDims(disc, 2).tile([1, 1, 3]),
        tf.mul(tf.ones([height, width, 3]), c),
        tf.fill([height, width, 3], -1),
      ) as tf.Tensor3D;
    });
    fs.writeFileSync(path.join(dir, `img-${i}.png`), await encodePng(img));
    img.dispose();
  }
}

type Record_ = { history: { step: number; losses: Record<string, number> }[]; samples: number[] };
const record = (page: Page) => page.evaluate(() => (window as unknown as { gantryTrain: Record_ }).gantryTrain);

describe.skipIf(!hasChromium)(
  hasChromium ? 'the Train view in headless Chromium' : `the Train view (skipped: ${CHROMIUM} is not installed)`,
  () => {
    let browser: Browser;
    let server: http.Server;
    let base: string;
    const errors: string[] = [];

    const newPage = async () => {
      const page = await browser.newPage({ acceptDownloads: true });
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      return page;
    };

    beforeAll(async () => {
      if (!fs.existsSync(path.join(dist, 'train.html')))
        throw new Error(`${dist}: build the page first (pnpm --filter web build)`);
      server = await serve();
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
    });

    afterAll(async () => {
      await browser?.close();
      server?.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    it('trains a cGAN on wasm: finite losses, changing samples; a reload continues; Node reads its checkpoint', async () => {
      const page = await newPage();
      const steps = 300;
      await page.goto(base + query({ ...TINY, steps, sampleEvery: 100, checkpointEvery: 100, backend: 'wasm' }));
      await page.waitForSelector('body[data-ready="true"]');
      await page.click('#start');
      await page.waitForSelector('body[data-state="done"]', { timeout: 150_000 });
      expect(await page.getAttribute('body', 'data-backend')).toBe('wasm');
      expect(await page.textContent('#backend')).toContain("Gantry's gradient kernels");
      const r = await record(page);
      expect(r.history.map((h) => h.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
      for (const h of r.history) for (const v of Object.values(h.losses)) expect(Number.isFinite(v)).toBe(true);
      expect(Object.keys(r.history[0]!.losses)).toEqual(expect.arrayContaining(['D', 'G']));
      // Samples at steps 100, 200, 300 and the final grid, each different from the one before.
      expect(r.samples.length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < 3; i++) expect(r.samples[i]).not.toBe(r.samples[i - 1]);
      expect(await page.textContent('#rate')).toMatch(/\d+\.\d\d steps\/s/);
      await page.waitForSelector(`body[data-saved-step="${steps}"]`);

      // A reload offers the run saved in IndexedDB.
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      expect(await page.textContent('#start')).toBe(`Continue from step ${steps}`);

      // The downloaded checkpoint is a Node checkpoint folder: the Node app generates from it.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const zip = new Uint8Array(fs.readFileSync((await download.path())!));
      const unzipped = path.join(tmp, 'download');
      for (const [name, bytes] of Object.entries(unzipSync(zip))) {
        fs.mkdirSync(path.dirname(path.join(unzipped, name)), { recursive: true });
        fs.writeFileSync(path.join(unzipped, name), bytes);
      }
      const runDir = path.join(unzipped, 'cgan-page-run');
      const dir = path.join(runDir, 'checkpoints', `step-00000${steps}`);
      expect(readCheckpointState(dir)).toMatchObject({ variant: 'cgan', step: steps, config: { ngf: 8, ndf: 8 } });
      const out = path.join(tmp, 'generated');
      const g = await run(['generate', '--checkpoint', dir, '--out', out, '--count', '2', '--backend', 'cpu']);
      expect(g.err).not.toMatch(/error/i);
      expect(g.code).toBe(0);
      expect(fs.readdirSync(out).filter((f) => f.endsWith('.png')).length).toBeGreaterThanOrEqual(20);
      // …and continues training it: run.json carries the page's options as the app's flags.
      const t = await run(['train', '--resume', runDir, '--steps', String(steps + 2), '--backend', 'wasm']);
      expect(t.err).not.toMatch(/error/i);
      expect(t.code).toBe(0);
      expect(readCheckpointState(path.join(runDir, 'checkpoints', `step-00000${steps + 2}`)).step).toBe(steps + 2);
      expect(errors).toEqual([]);
      await page.close();
    });

    it("trains on WebGPU when asked; 'auto' leaves a software adapter for wasm, saying why", async () => {
      const gpuBrowser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_FLAGS, headless: true });
      try {
        const page = await gpuBrowser.newPage();
        page.on('pageerror', (e) => errors.push(e.message));
        const steps = 12;
        const o = { ...TINY, batch: 8, steps, sampleEvery: 4, checkpointEvery: steps };
        await page.goto(base + query({ ...o, backend: 'webgpu' }));
        await page.waitForSelector('body[data-ready="true"]');
        // (A secure context, as the page on loopback is: about:blank has no navigator.gpu.)
        const hasAdapter = await page.evaluate(async () => {
          const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
          return Boolean(gpu && (await gpu.requestAdapter()));
        });
        if (!hasAdapter) {
          console.warn('WebGPU training: skipped, this Chromium offers no WebGPU adapter (--enable-unsafe-webgpu)');
          return;
        }
        await page.click('#start');
        await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 240_000 });
        expect(await page.textContent('#error')).toBe('');
        expect(await page.getAttribute('body', 'data-backend')).toBe('webgpu');
        expect(await page.textContent('#backend')).toMatch(/asked for: .+/);
        const r = await record(page);
        expect(r.history.map((h) => h.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
        for (const h of r.history) for (const v of Object.values(h.losses)) expect(Number.isFinite(v)).toBe(true);
        expect(r.samples.length).toBeGreaterThanOrEqual(3);
        for (let i = 1; i < 3; i++) expect(r.samples[i]).not.toBe(r.samples[i - 1]);

        // 'auto' on the same browser: a software adapter is slower than wasm, so wasm runs and the page says why.
        await page.evaluate(async () => {
          for (const d of await indexedDB.databases()) indexedDB.deleteDatabase(d.name!);
        });
        await page.goto(base + query({ ...o, steps: 1, backend: 'auto' }));
        await page.waitForSelector('body[data-ready="true"]');
        await page.click('#start');
        await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 120_000 });
        const soft = /swiftshader|llvmpipe|fallback/i.test((await page.textContent('#backend')) ?? '');
        if (soft) {
          expect(await page.getAttribute('body', 'data-backend')).toBe('wasm');
          expect(await page.textContent('#backend')).toMatch(/only a software adapter/);
        } else expect(await page.getAttribute('body', 'data-backend')).toBe('webgpu');
        await page.close();
      } finally {
        await gpuBrowser.close();
      }
    });

    it("resumes a Node checkpoint with Node's next-step losses", async () => {
      // Node: the page's cGAN (same config, seed and data), 21 steps, a checkpoint at step 20.
      await initBackend({ backend: 'wasm', log: () => {} });
      const config = { ...TINY_CGAN, ema: 0.999, r1: 1, modeSeeking: 0.1, dLr: 2e-4 };
      const data = mnistImages(await loadMnistSplit('train', undefined, TINY.limit), 28);
      seedWeights(42);
      const task = new LatentGanTask({
        variant: 'cgan',
        generator: buildGenerator(config),
        discriminator: buildDiscriminator(config),
        latentDim: 100,
        numClasses: 10,
        loss: adversarialLoss('bce'),
        lr: 4e-4,
        discriminatorLr: 2e-4,
        beta1: 0.5,
        seed: 42,
        batchSize: TINY.batch,
        data,
        config: { ...config, loss: 'bce', batchSize: TINY.batch },
        mustMatch: ['latentDim', 'numClasses', 'ngf', 'ndf', 'ema', 'imageSize'],
        generatorEma: buildGenerator(config),
        ema: 0.999,
        auxClassifierWeight: 0.3,
        r1: 1,
        modeSeekingWeight: 0.1,
      });
      const runDir = path.join(tmp, 'node-run');
      const node: Record<number, Record<string, number>> = {};
      await train(task, { runDir, steps: 21, checkpointEvery: 20, log: () => {}, onStep: (s, l) => (node[s] = l) });
      task.dispose();
      const upload = path.join(tmp, 'node-step-20.zip');
      fs.writeFileSync(upload, zipDir(path.join(runDir, 'checkpoints', 'step-00000020')));

      const page = await newPage();
      await page.goto(base + query({ ...TINY, steps: 21, sampleEvery: 1000, backend: 'wasm' }));
      await page.waitForSelector('body[data-ready="true"]');
      await page.setInputFiles('#import', upload);
      await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
      const r = await record(page);
      expect(r.history.map((h) => h.step)).toEqual([21]);
      const pageLosses = r.history[0]!.losses;
      expect(Object.keys(pageLosses).sort()).toEqual(Object.keys(node[21]!).sort());
      // The same step on the same weights, data and noise; wasm's float rounding differs from oneDNN's a little.
      for (const [k, v] of Object.entries(node[21]!)) expect(pageLosses[k], k).toBeCloseTo(v, 3);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('refuses bad uploads with one visible line and keeps the saved run', async () => {
      const page = await newPage();
      await page.goto(base + query({ ...TINY, steps: 21, sampleEvery: 1000, backend: 'wasm' }));
      await page.waitForSelector('body[data-ready="true"]');
      // A run to keep: Node's checkpoint continued one step here, saved in IndexedDB at step 21.
      await page.setInputFiles('#import', path.join(tmp, 'node-step-20.zip'));
      await page.waitForSelector('body[data-state="done"][data-saved-step="21"]', { timeout: 60_000 });
      const saved = '21';
      const good = unzipSync(new Uint8Array(fs.readFileSync(path.join(tmp, 'node-step-20.zip'))));
      const variant = (edit: (f: Record<string, Uint8Array>) => void, name: string) => {
        const copy = Object.fromEntries(Object.entries(good).map(([k, v]) => [k, v.slice()]));
        edit(copy);
        const file = path.join(tmp, name);
        fs.writeFileSync(file, zipSync(copy));
        return file;
      };
      const state = (f: Record<string, Uint8Array>) => {
        const k = Object.keys(f).find((n) => n.endsWith('state.json'))!;
        return { k, s: JSON.parse(new TextDecoder().decode(f[k])) };
      };
      const cases: [string, string, RegExp][] = [
        [path.join(tmp, 'notes.zip'), 'not a zip', /notes\.zip: not a readable zip file/],
        [
          variant((f) => {
            const { k, s } = state(f);
            f[k] = new TextEncoder().encode(JSON.stringify({ ...s, variant: 'pix2pix' }));
          }, 'other-variant.zip'),
          'another variant',
          /a pix2pix checkpoint; the page trains cgan and dcgan/,
        ],
        [
          variant((f) => {
            const k = Object.keys(f).find((n) => n.endsWith('generator/weights.bin'))!;
            new Float32Array(f[k]!.buffer, 0, 1)[0] = Number.NaN;
          }, 'tampered.zip'),
          'a NaN weight',
          /generator\/weights\.bin: weight .* contains NaN/,
        ],
        [
          variant((f) => {
            for (const k of Object.keys(f)) if (k.endsWith('state.json')) delete f[k];
          }, 'no-state.zip'),
          'no state.json',
          /not a Gantry checkpoint: no state\.json/,
        ],
      ];
      fs.writeFileSync(cases[0]![0], 'just text');
      for (const [file, what, message] of cases) {
        await page.evaluate(() => {
          document.getElementById('error')!.textContent = '';
        });
        await page.setInputFiles('#import', file);
        await page.waitForFunction(() => document.getElementById('error')!.textContent !== '');
        const text = (await page.textContent('#error'))!;
        expect(text, what).toMatch(message);
        expect(text.includes('\n'), what).toBe(false);
        expect(await page.getAttribute('body', 'data-state'), what).toBe('done');
        expect(await page.getAttribute('body', 'data-saved-step'), what).toBe(saved);
      }

      // A folder of images: a file that is not an image, then too few images.
      await page.selectOption('#data', 'folder');
      const folder = path.join(tmp, 'folder');
      fs.mkdirSync(folder, { recursive: true });
      await page.setInputFiles('#folder', folder);
      await page.waitForFunction(() => /the folder is empty/.test(document.getElementById('error')!.textContent ?? ''));
      fs.writeFileSync(path.join(folder, 'readme.txt'), 'hello');
      await page.setInputFiles('#folder', folder);
      await page.waitForFunction(() =>
        /readme\.txt: not an image/.test(document.getElementById('error')!.textContent ?? ''),
      );
      fs.rmSync(path.join(folder, 'readme.txt'));
      await writeImages(folder, 3);
      await page.setInputFiles('#folder', folder);
      await page.waitForFunction(() =>
        /3 images: too few to train on/.test(document.getElementById('error')!.textContent ?? ''),
      );
      expect(await page.getAttribute('body', 'data-saved-step')).toBe(saved);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('trains a DCGAN on a picked folder of images, decoded and resized in the page; pauses and resumes', async () => {
      const folder = path.join(tmp, 'shapes');
      await writeImages(folder, 24);
      const page = await newPage();
      await page.goto(
        base + query({ variant: 'dcgan', ngf: 8, ndf: 8, batch: 8, steps: 30, sampleEvery: 10, backend: 'wasm' }),
      );
      await page.waitForSelector('body[data-ready="true"]');
      await page.selectOption('#data', 'folder');
      await page.setInputFiles('#folder', folder);
      await page.waitForFunction(() =>
        /24 images, 32×32: ready/.test(document.getElementById('status')!.textContent ?? ''),
      );
      await page.click('#start');
      // Pause holds the worker's loop: the step count stands still until Resume.
      await page.waitForFunction(() => Number(document.body.dataset.step ?? 0) >= 3);
      await page.click('#pause');
      expect(await page.getAttribute('body', 'data-state')).toBe('paused');
      await page.waitForTimeout(1000); // the step under way when Pause came finishes
      const held = await page.getAttribute('body', 'data-step');
      await page.waitForTimeout(1500);
      expect(await page.getAttribute('body', 'data-step')).toBe(held);
      expect(Number(held)).toBeLessThan(30);
      await page.click('#pause');
      await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
      const r = await record(page);
      expect(r.history.length).toBe(30);
      for (const h of r.history) for (const v of Object.values(h.losses)) expect(Number.isFinite(v)).toBe(true);
      // 32×32 RGB samples, 8 per row.
      expect(await page.$eval('#samples', (c) => (c as HTMLCanvasElement).width)).toBe(8 * 32);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('trains a cGAN on a folder with one sub-folder per class', async () => {
      const folder = path.join(tmp, 'classes');
      await writeImages(path.join(folder, 'discs'), 12);
      await writeImages(path.join(folder, 'more-discs'), 12);
      const page = await newPage();
      await page.goto(
        base + query({ variant: 'cgan', ngf: 8, ndf: 8, batch: 8, steps: 10, sampleEvery: 5, backend: 'wasm' }),
      );
      await page.waitForSelector('body[data-ready="true"]');
      await page.selectOption('#data', 'folder');
      await page.setInputFiles('#folder', folder);
      await page.waitForFunction(() =>
        /24 images in 2 classes, 32×32: ready/.test(document.getElementById('status')!.textContent ?? ''),
      );
      await page.click('#start');
      await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
      const r = await record(page);
      expect(r.history.length).toBe(10);
      for (const h of r.history) for (const v of Object.values(h.losses)) expect(Number.isFinite(v)).toBe(true);
      // One row per class, one column per noise vector: 2×2 samples of 32×32.
      expect(
        await page.$eval('#samples', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]),
      ).toEqual([64, 64]);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('fine-tunes an exported pix2pix generator on picked A|B pairs and downloads the new export', async () => {
      await initBackend({ backend: 'cpu', log: () => {} });
      const exportDir = path.join(tmp, 'p2p-export');
      const g = unetGenerator({
        size: 32,
        inChannels: 3,
        outChannels: 3,
        numDowns: 5,
        ngf: 4,
        norm: 'batch',
        dropout: true,
      });
      await saveModel(g, exportDir);
      const before = g.getWeights().map((w) => Array.from(w.dataSync()));
      g.dispose();
      const meta = { variant: 'pix2pix', kind: 'image-to-image', imageSize: 32, channels: 3, direction: 'BtoA' };
      fs.writeFileSync(path.join(exportDir, 'metadata.json'), JSON.stringify(meta));
      // Six A|B pairs (64×32: A left, B right) and one square image that is not a pair.
      const pairs = path.join(tmp, 'pairs');
      await writeImages(pairs, 6, 64, 32);
      const square = path.join(tmp, 'square');
      await writeImages(square, 4, 32, 32);

      const page = await newPage();
      await page.goto(base + query({ steps: 6, sampleEvery: 3, backend: 'wasm' }));
      await page.waitForSelector('body[data-ready="true"]');
      await page.selectOption('#variant', 'pix2pix');
      await page.fill('#ndf', '8');
      await page.setInputFiles('#generator', exportDir);
      await page.waitForFunction(() =>
        /now pick the A\|B pairs/.test(document.getElementById('status')!.textContent ?? ''),
      );
      await page.setInputFiles('#pairs', square);
      await page.waitForFunction(() =>
        /expected A\|B side by side/.test(document.getElementById('error')!.textContent ?? ''),
      );
      await page.setInputFiles('#pairs', pairs);
      await page.waitForFunction(() =>
        /6 pairs, 32×32, B → A: ready/.test(document.getElementById('status')!.textContent ?? ''),
      );
      await page.click('#start');
      await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 60_000 });
      expect(await page.textContent('#error')).toBe('');
      const r = await record(page);
      expect(r.history.length).toBe(6);
      expect(Object.keys(r.history[0]!.losses)).toEqual(expect.arrayContaining(['D', 'G', 'L1']));
      for (const h of r.history) for (const v of Object.values(h.losses)) expect(Number.isFinite(v)).toBe(true);
      // Rows of input | output | target for four pairs.
      expect(
        await page.$eval('#samples', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]),
      ).toEqual([96, 128]);

      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const out = path.join(tmp, 'finetuned');
      for (const [name, bytes] of Object.entries(
        unzipSync(new Uint8Array(fs.readFileSync((await download.path())!))),
      )) {
        fs.mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
        fs.writeFileSync(path.join(out, name), bytes);
      }
      const tuned = await loadModel(path.join(out, 'pix2pix-finetuned'));
      const after = tuned.getWeights().map((w) => Array.from(w.dataSync()));
      tuned.dispose();
      expect(after.length).toBe(before.length);
      expect(after).not.toEqual(before);
      expect(errors).toEqual([]);
      await page.close();
    });

    it("continues from a Node export: the page's first step equals Node's from the same generator", async () => {
      await initBackend({ backend: 'wasm', log: () => {} });
      const config = { ...TINY_CGAN };
      // An export of a generator with other weights than the page's seed gives.
      seedWeights(7);
      const exported = buildGenerator(config);
      const exportDir = path.join(tmp, 'cgan-export');
      await saveModel(exported, exportDir);
      fs.writeFileSync(
        path.join(exportDir, 'metadata.json'),
        JSON.stringify({ variant: 'cgan', kind: 'latent', imageSize: 28, channels: 1, latentDim: 100, labels: null }),
      );
      // Node: the page's networks (seed 42), G and its average set from the export, one step.
      seedWeights(42);
      const [g, d, ema] = [buildGenerator(config), buildDiscriminator(config), buildGenerator(config)];
      g.setWeights(exported.getWeights());
      exported.dispose();
      const task = new LatentGanTask({
        variant: 'cgan',
        generator: g,
        discriminator: d,
        latentDim: 100,
        numClasses: 10,
        loss: adversarialLoss('bce'),
        lr: 4e-4,
        discriminatorLr: 2e-4,
        beta1: 0.5,
        seed: 42,
        batchSize: TINY.batch,
        data: mnistImages(await loadMnistSplit('train', undefined, TINY.limit), 28),
        config: {},
        mustMatch: [],
        generatorEma: ema,
        ema: 0.999,
        auxClassifierWeight: 0.3,
        r1: 1,
        modeSeekingWeight: 0.1,
      });
      const node: Record<string, number>[] = [];
      await train(task, {
        runDir: path.join(tmp, 'node-from-export'),
        steps: 1,
        log: () => {},
        onStep: (_, l) => node.push(l),
      });
      task.dispose();
      const upload = path.join(tmp, 'cgan-export.zip');
      fs.writeFileSync(upload, zipDir(exportDir));

      const page = await newPage();
      await page.goto(base + query({ ...TINY, ngf: 32, steps: 1, sampleEvery: 1000, backend: 'wasm' }));
      await page.waitForSelector('body[data-ready="true"]');
      await page.setInputFiles('#import', upload);
      await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 60_000 });
      expect(await page.textContent('#error')).toBe('');
      // G's width came from the export (8), not the form (32).
      expect(await page.inputValue('#ngf')).toBe('8');
      const r = await record(page);
      expect(r.history.map((h) => h.step)).toEqual([1]);
      for (const [k, v] of Object.entries(node[0]!)) expect(r.history[0]!.losses[k], k).toBeCloseTo(v, 3);
      expect(errors).toEqual([]);
      await page.close();
    });
  },
);
