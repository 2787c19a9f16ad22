#!/usr/bin/env node
/**
 * Training speed of the page's Train view in headless Chromium (wasm with Gantry's kernels, in a Web Worker)
 * against the Node CPU path (wasm + the native oneDNN kernels) on the same cGAN/DCGAN, MNIST digits and options:
 * steps per second over the steps after a warm-up, both through core's training loop.
 *
 *   node bench/browser-train.mjs [--steps 40] [--warmup 5] [--only cgan,cgan-page,dcgan]
 *
 * Needs `pnpm build` (the packages' dist/ and apps/web/dist) and /usr/bin/chromium.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuName } from './cpu.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const dist = path.join(root, 'apps', 'web', 'dist');

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const steps = Number(args.steps);
const warmup = Number(args.warmup);

/** The rows: Node's default cGAN, the page's default widths, DCGAN's default (MNIST, 28×28). */
const ROWS = [
  { id: 'cgan', variant: 'cgan', ngf: 96, ndf: 16, batch: 64 },
  { id: 'cgan-page', variant: 'cgan', ngf: 32, ndf: 16, batch: 64 },
  { id: 'dcgan', variant: 'dcgan', ngf: 32, ndf: 32, batch: 32 },
].filter((r) => !args.only || args.only.split(',').includes(r.id));

/** Steps per second from per-step times (ms), after the warm-up steps. */
const rate = (times) => (times.length - 1 - warmup) / ((times.at(-1) - times[warmup]) / 1000);

async function inChromium(row) {
  const { chromium } = await import(path.join(root, 'apps/web/node_modules/playwright-core/index.mjs'));
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.resolve(dist, url.slice(1) || 'index.html');
    if (!file.startsWith(dist) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return res.writeHead(404).end();
    const type = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' }[path.extname(file)];
    res.writeHead(200, { 'content-type': type ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage();
    const q = new URLSearchParams({
      variant: String(row.variant),
      ngf: String(row.ngf),
      ndf: String(row.ndf),
      batch: String(row.batch),
      steps: String(warmup + steps + 1),
      sampleEvery: '1000000',
      checkpointEvery: '1000000',
      backend: 'wasm',
    });
    await page.goto(
      `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}/train.html?${q}`,
    );
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#start');
    await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 1_800_000 });
    const error = await page.textContent('#error');
    if (error) throw new Error(`page: ${error}`);
    // @ts-expect-error: the Train view's page global (apps/web/src/train/main.ts)
    const history = await page.evaluate(() => window.gantryTrain.history);
    return { rate: rate(history.map((h) => h.t)), backend: await page.textContent('#backend') };
  } finally {
    await browser.close();
    server.close();
  }
}

async function inNode(row, threads) {
  const core = await import('../packages/core/dist/index.js');
  const nets = await import(`../packages/${row.variant}/dist/networks.js`);
  const { loadMnistSplit, mnistImages } = await import('../packages/mnist/dist/index.js');
  const info = await core.initBackend({ backend: 'wasm', log: () => {} });
  const used = threads === 'all' ? core.setNativeThreads(os.availableParallelism()) : core.setNativeThreads(threads);
  const config =
    row.variant === 'cgan'
      ? {
          latentDim: 100,
          imageSize: 28,
          numClasses: 10,
          ngf: row.ngf,
          ndf: row.ndf,
          conditioning: 'projection',
          embeddingDim: 50,
          auxWeight: 0.3,
          conditionalBn: true,
          finalConv: false,
          ema: 0.999,
          r1: 1,
          modeSeeking: 0.1,
          dLr: 2e-4,
        }
      : {
          latentDim: 100,
          imageSize: 28,
          ngf: row.ngf,
          ndf: row.ndf,
          dLayers: 3,
          dHidden: 512,
          ema: 0.9995,
          r1: 1,
          dLr: 2e-4,
        };
  core.seedWeights(42);
  const task = new core.LatentGanTask({
    variant: row.variant,
    generator: nets.buildGenerator(config),
    discriminator: nets.buildDiscriminator(config),
    latentDim: 100,
    numClasses: config.numClasses,
    loss: core.adversarialLoss('bce'),
    lr: 4e-4,
    discriminatorLr: 2e-4,
    beta1: 0.5,
    seed: 42,
    batchSize: row.batch,
    data: mnistImages(await loadMnistSplit('train'), 28),
    config,
    mustMatch: [],
    generatorEma: nets.buildGenerator(config),
    ema: config.ema,
    auxClassifierWeight: config.auxWeight,
    r1: 1,
    modeSeekingWeight: config.modeSeeking,
  });
  const times = [];
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-browser-'));
  try {
    await core.train(task, {
      runDir,
      steps: warmup + steps + 1,
      log: () => {},
      onStep: () => times.push(performance.now()),
    });
  } finally {
    task.dispose();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  return {
    rate: rate(times),
    threads: used,
    backend: `${info.name} (${info.detail.replace(/, \d+ threads?\)/, ')')})`,
  };
}

const rows = [];
for (const row of ROWS) {
  // Node in a child process per row would be cleaner; one process keeps this short (rows run one after another).
  const page = await inChromium(row);
  const node1 = await inNode(row, 1);
  const node = await inNode(row, 'all');
  rows.push({ ...row, page, node1, node });
  process.stderr.write(
    `${row.id}: page ${page.rate.toFixed(2)}, node 1 thread ${node1.rate.toFixed(2)}, node ${node.threads} threads ${node.rate.toFixed(2)} steps/s\n`,
  );
}
console.log(`CPU: ${cpuName()}, ${os.cpus().length} cores; ${steps} timed steps after ${warmup} warm-up steps\n`);
console.log(`Chromium: ${rows[0]?.page.backend}\nNode: ${rows[0]?.node.backend}\n`);
const n = rows[0]?.node.threads;
console.log(
  `| row | networks | batch | Chromium wasm, 1 thread | Node CPU path, 1 thread | Node CPU path, ${n} threads | page / Node 1 thread | page / Node ${n} threads |`,
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
const f = (x) => x.toFixed(2);
for (const r of rows) {
  console.log(
    `| ${r.id} | ${r.variant} ngf ${r.ngf}, ndf ${r.ndf} | ${r.batch} | ${f(r.page.rate)} | ${f(r.node1.rate)} | ${f(r.node.rate)} | ${f(r.page.rate / r.node1.rate)} | ${f(r.page.rate / r.node.rate)} |`,
  );
}
console.log('\nsteps/s; one process after another on this machine (other work on it makes the figures vary).');
