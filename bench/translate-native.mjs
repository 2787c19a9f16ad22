#!/usr/bin/env node
/**
 * Native-resolution translate at photo size, by hand (not part of `pnpm bench`): a W×H photo (default 2560×1600)
 * through `translate`'s own code path (decode, reflect-pad to the stride multiple, the generator — tiled when one pass
 * would exceed the memory budget —, crop, structure figure, encode) with a unet_256 and a resnet_9blocks generator at
 * ngf 64 (random weights), each in its own child process so that its peak RSS is its own; then the same forward pass
 * (same padded size, batch norm on the batch's statistics and dropout on, as `translate`'s default) in PyTorch when
 * `import torch` works. Needs the packages' dist/ (`pnpm build`).
 *
 *   node bench/translate-native.mjs [--only unet_256,resnet_9blocks] [--width 2560] [--height 1600]
 *        [--threads 1] [--max-memory MB] [--tile auto|0|N] [--backend wasm] [--no-torch] [--torch-only] [--python PATH]
 *        [--json FILE]
 *
 * Targets (issue #23): peak RSS ≤ 3 GB and time ≤ 1.5× PyTorch's, for both generators at 2560×1600. The time
 * target is checked on Gantry's whole translate, file to file, against PyTorch's forward pass alone (wall clock).
 * `pnpm bench` runs this (row translate-photo) and reads the verdict from --json.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuName } from './cpu.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

const ROWS = {
  unet_256: { kind: 'unet', numDowns: 8, ngf: 64, norm: 'batch', dropout: true },
  resnet_9blocks: { kind: 'resnet', blocks: 9, ngf: 64, norm: 'instance', dropout: false },
};

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string' },
    width: { type: 'string', default: '2560' },
    height: { type: 'string', default: '1600' },
    threads: { type: 'string', default: '1' },
    'max-memory': { type: 'string' },
    tile: { type: 'string', default: 'auto' },
    'no-torch': { type: 'boolean', default: false },
    python: { type: 'string', default: fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3' },
    backend: { type: 'string', default: 'wasm' },
    'torch-only': { type: 'boolean', default: false },
    json: { type: 'string' },
    child: { type: 'string' },
  },
});

/** Peak resident set of this process in MiB (VmHWM). */
function peakRssMiB() {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** A photo-like scene (sky gradient, hills, texture), W×H RGB bytes. */
function scene(w, h) {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const hill = h * (0.55 + 0.08 * Math.sin(x / 173) + 0.03 * Math.sin(x / 41));
      const sky = y < hill;
      const t = ((x * 7 + y * 13) % 29) / 29;
      const i = (y * w + x) * 3;
      data[i] = sky ? 110 + (60 * y) / h : 50 + 30 * t;
      data[i + 1] = sky ? 160 + (50 * y) / h : 110 + 40 * t;
      data[i + 2] = sky ? 230 : 40 + 20 * t;
    }
  }
  return data;
}

async function child(row) {
  const core = await import('../packages/core/dist/index.js');
  const tf = await import('@tensorflow/tfjs');
  const sharp = (await import('sharp')).default;
  const backend = await core.initBackend({ backend: row.backend, log: () => {} });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-native-'));
  try {
    const input = path.join(tmp, 'photo.png');
    await sharp(scene(row.width, row.height), { raw: { width: row.width, height: row.height, channels: 3 } })
      .png()
      .toFile(input);
    const g =
      row.kind === 'unet'
        ? core.unetGenerator({
            size: 256,
            inChannels: 3,
            outChannels: 3,
            numDowns: row.numDowns,
            ngf: row.ngf,
            norm: row.norm,
            dropout: row.dropout,
          })
        : core.resnetGenerator({
            size: 256,
            inChannels: 3,
            outChannels: 3,
            ngf: row.ngf,
            blocks: row.blocks,
            norm: row.norm,
          });
    const t = await core.imageTranslator(g, false);
    // Warm-up at 256×256 (kernels' first-call setup), untimed.
    tf.dispose(await t.fn(tf.zeros([1, 256, 256, 3])));
    let forwardMs = 0;
    let forwardCpu = 0;
    const timed = async (x) => {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const y = await t.fn(x);
      await y.data();
      const c = process.cpuUsage(c0);
      forwardCpu += (c.user + c.system) / 1e6;
      forwardMs += performance.now() - t0;
      return y;
    };
    const t0 = performance.now();
    const summary = await core.translatePaths(timed, {
      input,
      output: path.join(tmp, 'out.png'),
      modelSize: 256,
      multiple: t.multiple,
      tile: row.tile === 'auto' ? 'auto' : Number(row.tile),
      maxMemory: row.maxMemory ? row.maxMemory * 2 ** 20 : undefined,
      bytesPerPixel: () => core.measureBytesPerPixel(t.fn, t.multiple, 3),
      log: () => {},
    });
    const totalMs = performance.now() - t0;
    const r = summary.reports[0];
    return {
      backend: backend.detail,
      totalS: totalMs / 1000,
      forwardS: forwardMs / 1000,
      forwardCpuS: forwardCpu,
      tiles: r.run.tiles,
      tile: r.run.tile,
      peakRssMiB: peakRssMiB(),
      multiple: t.multiple,
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const TORCH = `
import json, os, resource, sys, time
row = json.loads(sys.argv[1])
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[v] = str(row["threads"])
sys.path.insert(0, sys.argv[2])
import torch
torch.set_num_threads(row["threads"])
from networks import resnet_generator, unet
c = dict(ngf=row["ngf"], norm=row["norm"], channels=3, dropout=row["dropout"], numDowns=row.get("numDowns"), blocks=row.get("blocks"))
net = unet(c) if row["kind"] == "unet" else resnet_generator(c)
net.train()  # batch norm on the batch's statistics, dropout on: translate's default
m = row["multiple"]
h = -(-row["height"] // m) * m
w = -(-row["width"] // m) * m
with torch.no_grad():
    net(torch.zeros(1, 3, 256, 256))
    x = torch.rand(1, 3, h, w) * 2 - 1
    t0 = time.perf_counter()
    c0 = time.process_time()
    y = net(x)
    float(y[0, 0, 0, 0])
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
print(json.dumps({"forwardS": dt, "forwardCpuS": cpu, "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "size": [h, w], "torch": torch.__version__}))
`;

if (opt.child) {
  const result = await child(JSON.parse(opt.child));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const names = opt.only ? opt.only.split(',') : Object.keys(ROWS);
const torchOk = !opt['no-torch'] && spawnSync(opt.python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
console.log(
  `native-resolution translate, ${opt.width}×${opt.height}, ${opt.threads} thread(s); ${cpuName()}, ${os.cpus().length} cores`,
);
console.log(
  '| generator | tiles | Gantry forward s (CPU s) | Gantry translate s, file to file | Gantry peak RSS MiB | PyTorch forward s (CPU s) | PyTorch peak RSS MiB | ratio wall (CPU) |',
);
console.log('|---|---|---|---|---|---|---|---|');
const results = [];
const PEAK_RSS_TARGET_MIB = 3e9 / 2 ** 20;
for (const name of names) {
  const base = ROWS[name];
  if (!base) throw new Error(`unknown generator ${name} (expected ${Object.keys(ROWS).join(', ')})`);
  const row = {
    ...base,
    backend: opt.backend,
    width: Number(opt.width),
    height: Number(opt.height),
    tile: opt.tile,
    maxMemory: opt['max-memory'] ? Number(opt['max-memory']) : undefined,
  };
  const env = { ...process.env, GANTRY_THREADS: opt.threads };
  let gr = {
    forwardS: Number.NaN,
    forwardCpuS: Number.NaN,
    totalS: Number.NaN,
    peakRssMiB: Number.NaN,
    tiles: 0,
    multiple: row.kind === 'unet' ? 2 ** row.numDowns : 4,
    backend: 'not run',
  };
  if (!opt['torch-only']) {
    const g = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(row)], {
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (g.status !== 0) {
      const error = (g.stderr || g.stdout).trim().split('\n').slice(-3).join(' ');
      console.log(`| ${name} | failed: ${error} |`);
      results.push({ name, error });
      continue;
    }
    gr = JSON.parse(g.stdout.trim().split('\n').at(-1));
  }
  console.error(`${name} Gantry: ${JSON.stringify(gr)}`);
  let tr;
  if (torchOk) {
    const p = spawnSync(
      opt.python,
      [
        '-c',
        TORCH,
        JSON.stringify({ ...row, threads: Number(opt.threads), multiple: gr.multiple }),
        path.join(here, 'reference'),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    tr =
      p.status === 0
        ? JSON.parse(p.stdout.trim().split('\n').at(-1))
        : { error: `exit ${p.status ?? p.signal} ${(p.stderr || '').trim().split('\n').at(-1) ?? ''}` };
    console.error(`${name} PyTorch: ${JSON.stringify(tr)}`);
  }
  const tiles = gr.tiles > 1 ? `${gr.tiles} × ${gr.tile} px` : gr.tiles === 1 ? 'whole image' : 'not run';
  const torchCols = !tr
    ? ['n/a', 'n/a', 'n/a']
    : tr.error
      ? [`failed: ${tr.error}`, '', '']
      : [
          `${tr.forwardS.toFixed(1)} (${tr.forwardCpuS.toFixed(1)})`,
          tr.peakRssMiB.toFixed(0),
          `${(gr.forwardS / tr.forwardS).toFixed(2)}× (${(gr.forwardCpuS / tr.forwardCpuS).toFixed(2)}×)`,
        ];
  console.log(
    `| ${name} | ${tiles} | ${gr.forwardS.toFixed(1)} (${gr.forwardCpuS.toFixed(1)}) | ${gr.totalS.toFixed(1)} | ${gr.peakRssMiB.toFixed(0)} | ${torchCols.join(' | ')} |`,
  );
  console.error(`${name}: ${gr.backend}${tr && !tr.error ? `; torch ${tr.torch} at ${tr.size.join('×')}` : ''}`);
  const timeRatio = tr && !tr.error ? gr.totalS / tr.forwardS : null;
  results.push({
    name,
    gantry: gr,
    torch: tr ?? null,
    timeRatio,
    peakRssOk: gr.peakRssMiB <= PEAK_RSS_TARGET_MIB,
    timeOk: timeRatio == null ? null : timeRatio <= 1.5,
  });
}
const met = results.every((r) => !r.error && r.peakRssOk && r.timeOk !== false);
console.log(
  `\ntargets: peak RSS ≤ 3 GB (${PEAK_RSS_TARGET_MIB.toFixed(0)} MiB) and translate time (file to file) ≤ 1.5× PyTorch's forward pass: ${met ? 'met' : 'MISSED'}${results.some((r) => r.timeOk == null) ? ' (time not compared: no PyTorch)' : ''}; ${results.map((r) => (r.error ? `${r.name} failed` : `${r.name} ${r.gantry.peakRssMiB.toFixed(0)} MiB${r.timeRatio != null ? `, ${r.timeRatio.toFixed(2)}×` : ''}`)).join('; ')}`,
);
if (opt.json) fs.writeFileSync(opt.json, `${JSON.stringify({ rows: results, targetsMet: met })}\n`);
process.exit(met ? 0 : 1);
