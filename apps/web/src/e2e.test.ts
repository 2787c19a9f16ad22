/**
 * End to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core): the built demo page
 * loads tiny exported generators (made here: a cGAN, a pix2pix U-Net and a CycleGAN ResNet with Gantry's custom
 * layers), draws digits, translates an uploaded image at its own resolution (not the models' export size); and a run's report.html renders offline. Canvases must not
 * be blank and the console must stay free of errors. Screenshots go to $GANTRY_SCREENSHOTS (or the temp dir).
 *
 * Skipped only when /usr/bin/chromium is absent (CI installs it: apt-get install -y chromium).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildGenerator as cganGenerator } from '@gantry/cgan';
import {
  encodePng,
  exportOnnxModels,
  layersModelToOnnx,
  resnetGenerator,
  saveModel,
  unetGenerator,
  writeReport,
} from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.warn(`web e2e: skipped, ${CHROMIUM} is not installed (apt-get install -y chromium)`);

const webDir = path.resolve(import.meta.dirname, '..');
const dist = path.join(webDir, 'dist');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-web-'));
const shots = process.env.GANTRY_SCREENSHOTS ? path.resolve(process.env.GANTRY_SCREENSHOTS) : tmp;

/** Random weights large enough that outputs vary visibly (fresh N(0, 0.02) weights give a flat grey). */
function randomise(model: tf.LayersModel, seed: number): void {
  const values = model.weights.map((w, i) =>
    /moving_variance|gamma/.test(w.name)
      ? w.read().clone()
      : /moving_mean|beta|bias/.test(w.name)
        ? tf.zerosLike(w.read())
        : tf.randomNormal(w.shape as number[], 0, 0.35, 'float32', seed + i),
  );
  model.setWeights(values);
  tf.dispose(values);
}

async function exportModel(model: tf.LayersModel, dir: string, meta?: object): Promise<void> {
  await saveModel(model, dir);
  if (meta) fs.writeFileSync(path.join(dir, 'metadata.json'), JSON.stringify(meta, null, 2));
}

/** The three exports the page loads, in the layout of the apps' `export` commands. */
async function makeModels(root: string): Promise<void> {
  await tf.setBackend('cpu');
  const cgan = cganGenerator({
    latentDim: 8,
    imageSize: 28,
    numClasses: 10,
    ngf: 4,
    ndf: 4,
    conditioning: 'projection',
    embeddingDim: 4,
    auxWeight: 0,
    conditionalBn: true,
  });
  randomise(cgan, 1);
  await exportModel(cgan, path.join(root, 'cgan'), {
    variant: 'cgan',
    kind: 'latent',
    imageSize: 28,
    channels: 1,
    latentDim: 8,
    labels: Array.from({ length: 10 }, (_, i) => String(i)),
    normalisation: 'tanh: pixel = (value + 1) * 127.5',
  });
  const unet = unetGenerator({
    size: 32,
    inChannels: 3,
    outChannels: 3,
    numDowns: 5,
    ngf: 4,
    norm: 'batch',
    dropout: true,
  });
  randomise(unet, 2);
  await exportModel(unet, path.join(root, 'pix2pix'), {
    variant: 'pix2pix',
    kind: 'image-to-image',
    imageSize: 32,
    channels: 3,
    direction: 'BtoA',
    normalisation: 'input: pixel / 127.5 - 1; output: pixel = (value + 1) * 127.5',
  });
  // The ONNX export beside it (?runtime=onnx), in eval mode: the page's ?eval=1 on TF.js computes the same.
  const meta = { variant: 'pix2pix', kind: 'image-to-image', channels: 3 };
  await exportOnnxModels(path.join(root, 'pix2pix', 'model.onnx'), { '': unet }, meta, { evalMode: true });
  for (const g of ['G_A', 'G_B']) {
    // Exported at 16×16: the page runs it at the picture's own size all the same.
    const resnet = resnetGenerator({ size: 16, inChannels: 3, outChannels: 3, ngf: 4, blocks: 1, norm: 'instance' });
    randomise(resnet, g === 'G_A' ? 3 : 4);
    await exportModel(resnet, path.join(root, 'cyclegan', g));
    const onnx = layersModelToOnnx(resnet, { dynamicSize: true, metadata: { multiple: '4', channels: '3' } });
    fs.writeFileSync(path.join(root, 'cyclegan', `model.${g}.onnx`), onnx);
    resnet.dispose();
  }
  fs.writeFileSync(
    path.join(root, 'cyclegan', 'metadata.json'),
    JSON.stringify({
      variant: 'cyclegan',
      kind: 'image-to-image',
      imageSize: 16,
      channels: 3,
      generators: { G_A: 'A → B', G_B: 'B → A' },
      domains: { A: 'day', B: 'night' },
    }),
  );
  fs.writeFileSync(path.join(root, 'index.json'), JSON.stringify({ models: ['cgan', 'pix2pix', 'cyclegan'] }));
  cgan.dispose();
  unet.dispose();
}

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
};

/** A plain static server: /models/* from the test's exports, the rest from the built page. */
function serve(models: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const [root, rel] = url.startsWith('/models/')
      ? [models, url.slice('/models/'.length)]
      : url.startsWith('/models-bad/')
        ? [`${models}-bad`, url.slice('/models-bad/'.length)]
        : [dist, url === '/' ? 'index.html' : url.slice(1)];
    const file = path.resolve(root, rel);
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Pixel statistics of a canvas: how many are drawn (alpha > 0) and the spread of their brightness. */
function canvasStats(page: Page, selector: string) {
  return page.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    let min = 765;
    let max = 0;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3]! === 0) continue;
      drawn++;
      const v = d[i]! + d[i + 1]! + d[i + 2]!;
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    return { drawn, range: max - min, sum, pixels: d.length / 4 };
  });
}

describe.skipIf(!hasChromium)(
  hasChromium ? 'in headless Chromium' : `in headless Chromium (skipped: ${CHROMIUM} is not installed)`,
  () => {
    let browser: Browser;
    let server: http.Server;
    let base: string;
    const errors: string[] = [];

    const newPage = async () => {
      const page = await browser.newPage({ viewport: { width: 1180, height: 760 } });
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      return page;
    };

    beforeAll(async () => {
      if (!fs.existsSync(path.join(dist, 'index.html'))) {
        const r = spawnSync(process.execPath, [path.join(webDir, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], {
          cwd: webDir,
          encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(`web build failed:\n${r.stderr}`);
      }
      const models = path.join(tmp, 'models');
      await makeModels(models);
      server = await serve(models);
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
    });

    afterAll(async () => {
      await browser?.close();
      server?.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    it('draws digits for a label, follows the noise slider, and translates an uploaded day image', async () => {
      const page = await newPage();
      await page.goto(`${base}?backend=cpu`);
      await page.waitForSelector('body[data-digits="ready"][data-translated="ready"]', { timeout: 30_000 });
      expect(await page.textContent('#backend')).toBe('backend: cpu');

      const digit = await canvasStats(page, '#digit');
      expect(digit.drawn).toBe(28 * 28);
      expect(digit.range).toBeGreaterThan(60);
      expect(await page.$$eval('#digit-row canvas', (cs) => cs.length)).toBe(10);

      // Another label and another point on the noise path give another digit.
      await page.evaluate(() => delete document.body.dataset.digits);
      await page.selectOption('#digit-label', '3');
      await page.$eval('#noise', (el) => {
        (el as HTMLInputElement).value = '60';
        el.dispatchEvent(new Event('input'));
      });
      await page.waitForSelector('body[data-digits="ready"]');
      await page.waitForFunction(() => !document.querySelector('#digits-status')?.textContent?.startsWith('loading'));
      expect((await canvasStats(page, '#digit')).sum).not.toBe(digit.sum);

      // Upload an image (a non-square gradient "scene"): both translators redraw.
      const upload = path.join(tmp, 'day.png');
      const scene = tf.tidy(() => {
        const y = tf.linspace(-1, 1, 48).reshape([48, 1, 1]);
        const x = tf.linspace(-1, 1, 64).reshape([1, 64, 1]);
        return tf.concat([tf.add(y.mul(0), x), y.mul(-1).add(x.mul(0)), tf.mul(x, y)], 2) as tf.Tensor3D;
      });
      fs.writeFileSync(upload, await encodePng(scene));
      scene.dispose();
      const before = await canvasStats(page, '#pix2pix-out');
      await page.evaluate(() => delete document.body.dataset.translated);
      await page.setInputFiles('#upload', upload);
      await page.waitForSelector('body[data-translated="ready"]');
      for (const id of ['#input', '#pix2pix-out', '#cyclegan-out']) {
        const s = await canvasStats(page, id);
        expect(s.drawn, id).toBe(s.pixels);
        expect(s.range, id).toBeGreaterThan(30);
        // Native resolution: the 64×48 upload, not the 32×32 (pix2pix) or 16×16 (CycleGAN) the models were exported at.
        expect(
          await page.$eval(id, (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]),
          id,
        ).toEqual([64, 48]);
      }
      expect(await page.textContent('#translate-status')).toContain("at the picture's own 64×48 pixels");
      expect((await canvasStats(page, '#pix2pix-out')).sum).not.toBe(before.sum);
      expect(await page.textContent('#cyclegan-caption')).toContain('day → night');
      expect(await page.textContent('#pix2pix-caption')).toContain('day → night');

      await page.screenshot({ path: path.join(shots, 'demo.png') });
      expect(errors).toEqual([]);

      // The pixel limit of every decoded image, from the size alone: a 10000×10000 SVG is refused by name.
      const bomb = path.join(tmp, 'bomb.svg');
      fs.writeFileSync(
        bomb,
        '<svg xmlns="http://www.w3.org/2000/svg" width="10000" height="10000"><rect width="10000" height="10000"/></svg>',
      );
      await page.setInputFiles('#upload', bomb);
      await page.waitForFunction(() => document.querySelector('#translate-status')?.textContent?.includes('error'));
      expect(await page.textContent('#translate-status')).toBe(
        'error: bomb.svg: 10000×10000 is 100.0 megapixels, over the limit of 50',
      );
      // The refusal is logged (console.error) on purpose: the only error this page may show.
      expect(errors.map((e) => e.includes('over the limit of 50'))).toEqual([true]);
      errors.length = 0;
      await page.close();
    });

    it('runs the translators in onnxruntime-web (?runtime=onnx) with the pixels TF.js gives', async () => {
      /** Each page's translated example scene (the page translates it on load), as RGBA bytes. */
      const outputs = async (query: string) => {
        const page = await newPage();
        await page.goto(`${base}?backend=cpu&eval=1${query}`);
        await page.waitForSelector('body[data-translated="ready"]', { timeout: 60_000 });
        const status = (await page.textContent('#translate-status')) ?? '';
        const pixels: Record<string, number[]> = {};
        for (const id of ['pix2pix-out', 'cyclegan-out'])
          pixels[id] = await page.$eval(`#${id}`, (c) => {
            const canvas = c as HTMLCanvasElement;
            return [...canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data];
          });
        if (query) await page.screenshot({ path: path.join(shots, 'demo-onnx.png') });
        await page.close();
        return { status, pixels };
      };
      const tfjs = await outputs('');
      const onnx = await outputs('&runtime=onnx');
      expect(tfjs.status).toContain('TF.js');
      expect(onnx.status).toContain('onnxruntime-web (wasm)');
      for (const id of ['pix2pix-out', 'cyclegan-out']) {
        const [a, b] = [tfjs.pixels[id]!, onnx.pixels[id]!];
        expect(b.length, id).toBe(a.length);
        expect(new Set(b).size, id).toBeGreaterThan(20); // not blank
        // Both within 1e-4 of each other before 8-bit rounding: a pixel can round the other way, by 1 at most.
        expect(
          a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0),
          id,
        ).toBeLessThanOrEqual(1);
      }
      expect(errors).toEqual([]);
    });

    it("refuses a tampered export with Node's model-file checks, in one line", async () => {
      // The cGAN export with one weight set to NaN, served as another models folder.
      const bad = path.join(tmp, 'models-bad');
      fs.cpSync(path.join(tmp, 'models', 'cgan'), path.join(bad, 'cgan'), { recursive: true });
      const weights = path.join(bad, 'cgan', 'weights.bin');
      const bytes = new Uint8Array(fs.readFileSync(weights));
      new DataView(bytes.buffer).setFloat32(0, Number.NaN, true);
      fs.writeFileSync(weights, bytes);
      fs.writeFileSync(path.join(bad, 'index.json'), JSON.stringify({ models: ['cgan'] }));
      // Its own page: the console error this load logs is expected here.
      const page = await browser.newPage();
      await page.goto(`${base}?backend=cpu&models=models-bad/`);
      await page.waitForFunction(() => /error:/.test(document.querySelector('#digits-status')?.textContent ?? ''));
      const text = (await page.textContent('#digits-status'))!;
      expect(text).toMatch(/models-bad\/cgan\/weights\.bin: weight .* contains NaN \(refusing NaN\/Inf weights\)/);
      expect(text.includes('\n')).toBe(false);
      await page.close();
    });

    it('renders a run report offline: charts drawn, samples shown, no console errors', async () => {
      const run = path.join(tmp, 'runs', 'cgan', 'run');
      fs.mkdirSync(path.join(run, 'samples'), { recursive: true });
      fs.writeFileSync(
        path.join(run, 'run.json'),
        JSON.stringify({
          variant: 'cgan',
          backend: 'wasm',
          created: new Date().toISOString(),
          options: { steps: 200 },
        }),
      );
      const lines = Array.from({ length: 200 }, (_, i) =>
        JSON.stringify({ step: i + 1, epoch: i / 100, D: 1 + Math.sin(i / 9) / 3, G: 1.5 - i / 400, time: i * 50 }),
      );
      fs.writeFileSync(path.join(run, 'losses.jsonl'), `${lines.join('\n')}\n`);
      for (const s of [100, 200]) {
        const img = tf.tidy(() => tf.randomUniform([28, 28, 1], -1, 1, 'float32', s) as tf.Tensor3D);
        fs.writeFileSync(path.join(run, 'samples', `step-${String(s).padStart(8, '0')}.png`), await encodePng(img));
        img.dispose();
      }
      fs.writeFileSync(
        path.join(run, 'evaluation.json'),
        JSON.stringify({ generated: { frechet: 10, meanAccuracy: 0.8 }, real: { frechet: 1 } }),
      );
      const file = writeReport(run, { root: path.join(tmp, 'runs') });

      const page = await newPage();
      // Offline for real: any request that is not the file itself fails.
      await page.route('**/*', (route) =>
        route.request().url().startsWith('file:') ? route.continue() : route.abort(),
      );
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector('html[data-rendered="true"]');
      const charts = await page.$$eval('canvas', (cs) => cs.map((c) => c.id));
      expect(charts).toEqual(['chart-0', 'chart-1']);
      for (const id of charts) expect((await canvasStats(page, `#${id}`)).drawn, id).toBeGreaterThan(1000);
      expect(await page.$eval('#sample-big', (img) => (img as HTMLImageElement).naturalWidth)).toBe(28);
      expect(await page.textContent('#sample-caption')).toContain('step 200');
      await page.screenshot({ path: path.join(shots, 'report-test.png'), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    });
  },
);
