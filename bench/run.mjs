#!/usr/bin/env node
/**
 * `pnpm bench`: training-step benchmarks of every Gantry variant, each row in its own child process (so peak RSS
 * is per row), with the PyTorch reference of the same networks and step run alongside when `import torch` works.
 * Writes a Markdown table to stdout and JSON (+ the table) to bench/results/. See bench/README.md.
 *
 *   pnpm bench [--only dcgan,cgan] [--quick] [--no-torch] [--backend auto|webgpu|wasm|node|node-gpu|cpu]
 *              [--steps N] [--threads N|all] [--python PATH] [--out DIR] [--verbose]
 *   pnpm bench --soak [--only dcgan] [--steps 1000]        tensor-count and RSS drift over many steps
 *
 * Needs the packages' dist/ (`pnpm build`).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FULL_ROWS, PHOTO_ROWS, QUICK_ROWS, soakRow, stepMacs } from './configs.mjs';
import { cpuName } from './cpu.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const USAGE = `usage: pnpm bench [options]
  --only ID[,ID…]   rows to run: ${FULL_ROWS.map((r) => r.id).join(', ')} (a variant name such as pix2pix picks all its rows),
                    and the full-size checks ${PHOTO_ROWS.map((r) => r.id).join(', ')} (run after the step rows when
                    --only is not given; not with --quick)
  --quick           small sizes and 3 timed steps per row (smoke test)
  --no-torch        skip the PyTorch reference even when it is installed
  --backend NAME    Gantry's TF.js backend: auto (default), node-gpu, webgpu, node, wasm, cpu
  --steps N         fixed number of timed steps per row (default: by a time budget per row);
                    with --soak: steps of the soak run (default 1000)
  --soak            run one small config (--only picks it; default dcgan) for many steps and report the
                    tensor-count and RSS drift
  --threads N|all   threads for both sides: Gantry's native kernels (GANTRY_THREADS) and PyTorch (default 1;
                    all cores for tfjs-node, which picks its own); above 1, the timed steps alternate N threads
                    and 1 thread and the table gives each side's speed-up from 1 thread to N
  --python PATH     Python with torch (default /usr/bin/python3 if present, else python3)
  --out DIR         where results go (default bench/results)
  --verbose         pass the children's per-step output through`;

let opts;
try {
  opts = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-torch': { type: 'boolean', default: false },
      backend: { type: 'string', default: 'auto' },
      steps: { type: 'string' },
      soak: { type: 'boolean', default: false },
      threads: { type: 'string' },
      python: { type: 'string' },
      out: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  console.error(`bench: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
const fail = (msg) => {
  console.error(`bench: ${msg}`);
  process.exit(2);
};
const steps = opts.steps != null ? Number(opts.steps) : undefined;
if (steps != null && !(Number.isInteger(steps) && steps > 0))
  fail(`--steps ${opts.steps}: expected a positive integer`);
const outDir = path.resolve(opts.out ?? path.join(here, 'results'));
/** --threads as a number ('all': every core available to this process); undefined when not given. */
const requestedThreads = (() => {
  if (opts.threads == null) return undefined;
  if (opts.threads.trim() === 'all') return os.availableParallelism();
  const n = Number(opts.threads);
  if (!(Number.isInteger(n) && n > 0)) fail(`--threads ${opts.threads}: expected a positive integer or 'all'`);
  return n;
})();
const say = (line) => process.stderr.write(`${line}\n`);

for (const pkg of ['core', 'dcgan', 'cgan', 'pix2pix', 'cyclegan']) {
  if (!fs.existsSync(path.join(root, 'packages', pkg, 'dist', 'index.js')))
    fail(`packages/${pkg}/dist is missing: run \`pnpm build\` first`);
}

// ---------------------------------------------------------------------------------------------------------------
// Rows.
const table = opts.quick ? QUICK_ROWS : FULL_ROWS;
function selectRows(only) {
  if (!only) return { steps: table, photo: opts.quick || opts.soak ? [] : PHOTO_ROWS };
  const wanted = only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const picked = [];
  const photo = [];
  for (const w of wanted) {
    const p = PHOTO_ROWS.find((r) => r.id === w);
    if (p && !opts.quick) {
      if (!photo.includes(p)) photo.push(p);
      continue;
    }
    const hits = table.filter((r) => r.id === w || r.variant === w);
    if (hits.length === 0)
      fail(
        `--only ${w}: unknown row (expected ${[...table.map((r) => r.id), ...(opts.quick ? [] : PHOTO_ROWS.map((r) => r.id))].join(', ')})`,
      );
    for (const h of hits) if (!picked.includes(h)) picked.push(h);
  }
  return { steps: picked, photo };
}

// ---------------------------------------------------------------------------------------------------------------
// Children.
/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ timeoutS: number, jsonOut: string, tag: string, env?: NodeJS.ProcessEnv }} o
 */
function runChild(cmd, args, { timeoutS, jsonOut, tag, env }) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    const onData = (d) => {
      const text = d.toString();
      stderr = (stderr + text).slice(-20_000);
      if (opts.verbose) process.stderr.write(text.replace(/^(?=.)/gm, `    ${tag}${tag ? ' ' : ''}`));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - started) / 1000;
      if (code === 0 && fs.existsSync(jsonOut)) {
        try {
          resolve({ ok: true, seconds, result: JSON.parse(fs.readFileSync(jsonOut, 'utf8')) });
          return;
        } catch {}
      }
      const lines = stderr
        .trim()
        .split('\n')
        .filter((l) => l.trim() && !/^\s+(\[torch\] )?(warm-up )?step /.test(l));
      const errorLine = lines.findLast((l) => /^(error: |\w*Error\b|RuntimeError|SystemExit)/.test(l.trim()));
      const lastLines = errorLine ? errorLine.trim() : lines.slice(-2).join(' | ');
      const why = timedOut
        ? `timed out after ${timeoutS} s`
        : signal
          ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`
          : `exit code ${code}`;
      resolve({ ok: false, seconds, error: `${why}${lastLines ? `: ${lastLines}` : ''}` });
    });
  });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bench-'));
let childCount = 0;
const jsonPath = (name) => path.join(tmp, `${String(++childCount).padStart(2, '0')}-${name}.json`);

/**
 * @param {string[]} extra
 * @param {{ timeoutS: number, name: string, threadCount?: number }} o
 */
function gantryChild(extra, { timeoutS, name, threadCount }) {
  const jsonOut = jsonPath(`gantry-${name}`);
  const nodeFlags = extra.includes('--soak') ? ['--expose-gc'] : [];
  // The native kernels' thread count; the wasm backend itself is single-threaded in Node.
  const env = { GANTRY_THREADS: String(threadCount ?? requestedThreads ?? 1) };
  return runChild(
    process.execPath,
    [...nodeFlags, path.join(here, 'gantry-step.mjs'), '--backend', opts.backend, '--json-out', jsonOut, ...extra],
    { timeoutS, jsonOut, tag: '[gantry]', env },
  );
}

/**
 * @param {string} script
 * @param {string[]} extra
 * @param {{ timeoutS: number, name: string, threadCount?: number }} o
 */
function torchChild(script, extra, { timeoutS, name, threadCount }) {
  const jsonOut = jsonPath(`torch-${name}`);
  return runChild(
    python,
    [
      path.join(here, 'reference', script),
      '--threads',
      String(threadCount ?? threads),
      '--json-out',
      jsonOut,
      ...extra,
    ],
    { timeoutS, jsonOut, tag: '' },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics.
function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const stdev = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, s.length - 1));
  const median = quantile(s, 0.5);
  const p25 = quantile(s, 0.25);
  const p75 = quantile(s, 0.75);
  return { median, min: s[0], max: s.at(-1), p25, p75, mean, stdev, iqrPct: ((p75 - p25) / median) * 100 };
}

/** The per-implementation summary of one row. */
function summarise(row, r, macsPerStep, peakGflops) {
  const ms = stats(r.stepMs);
  const gflops = (2 * macsPerStep) / (ms.median * 1e6);
  const out = {
    impl: r.impl,
    timedSteps: r.stepMs.length,
    warmupSteps: r.warmupMs.length,
    msPerStep: ms,
    cpuMsPerStep: r.cpuMs?.length ? stats(r.cpuMs) : null,
    imagesPerSec: (row.batch * 1000) / ms.median,
    gflops,
    pctOfPeak: peakGflops ? (gflops / peakGflops) * 100 : null,
    gflopsCpu: r.cpuMs?.length ? (2 * macsPerStep) / (stats(r.cpuMs).median * 1e6) : null,
    pctOfPeakCpu: null,
    peakRssMiB: r.peakRssMiB,
    rssAfterWarmupMiB: r.rssAfterWarmupMiB,
    rssAfterMiB: r.rssAfterMiB,
    forwardMacsPerSample: r.forwardMacsPerSample,
    warmupMs: r.warmupMs,
    stepMs: r.stepMs,
    cpuMs: r.cpuMs,
    transfersPerStep: r.transfersPerStep,
  };
  if (out.gflopsCpu != null && peakGflops) out.pctOfPeakCpu = (out.gflopsCpu / peakGflops) * 100;
  if (r.tensorsBefore != null) {
    out.tensors = {
      before: r.tensorsBefore,
      afterWarmup: r.tensorsAfterWarmup,
      after: r.tensorsAfter,
      perTimedStep: (r.tensorsAfter - r.tensorsAfterWarmup) / r.stepMs.length,
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting.
const fmtMs = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
const fmtNum = (x, d = 1) =>
  x == null || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x < 1 ? x.toFixed(d + 1) : x.toFixed(d);
const fmtMsCell = (s) =>
  `${fmtMs(s.msPerStep.median)} (${fmtMs(s.msPerStep.min)}–${fmtMs(s.msPerStep.max)}, n=${s.timedSteps})`;

// With one thread "% peak" is by CPU time (robust to other load); with more, by wall-clock time.
const gflopsCell = (s) =>
  `${fmtNum(s.gflops)} / ${fmtNum(s.gflopsCpu)} (${fmtNum(threads === 1 && s.pctOfPeakCpu != null ? s.pctOfPeakCpu : s.pctOfPeak)}%)`;

function markdownTable(results) {
  const head = [
    'row',
    'batch',
    'Gantry ms/step: median (min–max, n)',
    'img/s',
    'GFLOP/s wall / CPU (% peak)',
    'peak RSS MiB',
    'tensors start → warm → end',
    'PyTorch ms/step',
    'PyTorch GFLOP/s wall / CPU (% peak)',
    'Gantry / PyTorch',
    'ratio by CPU time',
  ];
  if (scaling)
    head.push(`Gantry speed-up 1 → ${threads} threads`, `PyTorch speed-up 1 → ${threads} threads`, 'ratio at 1 thread');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ':--' : '--:')).join('|')}|`];
  for (const r of results) {
    const g = r.gantry;
    const t = r.torch;
    const cells = [r.label, String(r.batch)];
    if (g && !g.error) {
      const tensors = g.tensors
        ? `${g.tensors.before} → ${g.tensors.afterWarmup} → ${g.tensors.after}${g.tensors.after !== g.tensors.afterWarmup ? ` (${g.tensors.after > g.tensors.afterWarmup ? '+' : ''}${g.tensors.after - g.tensors.afterWarmup}${r.variant === 'cyclegan' ? ', image pools filling' : ''})` : ''}`
        : '–';
      cells.push(fmtMsCell(g), fmtNum(g.imagesPerSec, 2), gflopsCell(g), fmtNum(g.peakRssMiB, 0), tensors);
    } else {
      cells.push(`failed: ${g?.error ?? '?'}`, '–', '–', '–', '–');
    }
    if (t && !t.error) cells.push(fmtMsCell(t), gflopsCell(t));
    else cells.push(t?.error ? `failed: ${t.error}` : 'not run', '–');
    cells.push(
      r.ratio != null ? `**${r.ratio.toFixed(2)}×**` : r.ratioNote,
      r.ratioCpu != null ? `${r.ratioCpu.toFixed(2)}×` : '–',
    );
    if (scaling) {
      const s = r.oneThread ?? {};
      cells.push(
        s.speedupGantry != null
          ? `${s.speedupGantry.toFixed(2)}× (${fmtMs(s.gantryMs)} ms at 1)`
          : s.gantryError
            ? `failed: ${s.gantryError}`
            : '–',
        s.speedupTorch != null
          ? `${s.speedupTorch.toFixed(2)}× (${fmtMs(s.torchMs)} ms at 1)`
          : s.torchError
            ? `failed: ${s.torchError}`
            : '–',
        s.ratio != null ? `${s.ratio.toFixed(2)}×` : '–',
      );
    }
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, '/')).join(' | ')} |`);
  }
  return lines.join('\n');
}

function peakLines(peak) {
  const l = [];
  const g = peak.gantry;
  if (g)
    l.push(
      `Gantry backend ${g.backend.name}: matMul ${g.matmul.n}² ${fmtNum(pk(g.matmul))} GFLOP/s, conv2d 3×3 ${g.conv3x3.channels}→${g.conv3x3.channels} on 32×32 ${fmtNum(pk(g.conv3x3))} GFLOP/s`,
    );
  const t = peak.torch;
  if (t) {
    const blas = t.blas?.loaded?.length
      ? t.blas.loaded.map((p) => `${path.basename(path.dirname(p))}/${path.basename(p)}`).join(', ')
      : '?';
    l.push(
      `PyTorch ${t.version} (${t.threads} thread${t.threads === 1 ? '' : 's'}): conv2d 3×3 (oneDNN) ${fmtNum(pk(t['torch-conv3x3']))} GFLOP/s, torch.matmul ${t.n}² ${fmtNum(pk(t.torch))} GFLOP/s (BLAS: ${blas}), numpy ${fmtNum(pk(t.numpy))} GFLOP/s`,
    );
  }
  l.push(
    `machine peak used for "% peak": ${fmtNum(peak.machineGflops)} GFLOP/s (${peak.source}, ${threads} thread${threads === 1 ? '' : 's'})`,
  );
  return l;
}

// ---------------------------------------------------------------------------------------------------------------
// PyTorch availability and threads.
const python = opts.python ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
/** @type {{ available: boolean, reason?: string, version?: string, python?: string }} */
let torchInfo = { available: false, reason: '--no-torch' };
if (!opts['no-torch']) {
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  torchInfo =
    probe.status === 0
      ? { available: true, version: probe.stdout.trim(), python }
      : {
          available: false,
          reason: `\`${python} -c "import torch"\` failed (on Debian: apt-get install python3-torch)`,
          python,
        };
}

const loadStart = os.loadavg();
const startedAt = new Date();
fs.mkdirSync(outDir, { recursive: true });
const stamp = startedAt
  .toISOString()
  .replace(/[:.]/g, '-')
  .replace(/-\d{3}Z$/, 'Z');

// The backend (and its thread count) comes from the first Gantry child: the peak measurement.
say(
  `bench: measuring matmul peak (Gantry backend '${opts.backend}'${torchInfo.available && !opts.soak ? ', PyTorch' : ''}) …`,
);
// --soak needs only the backend's name from this child: a token size.
const peakSize = opts.soak ? 64 : opts.quick ? 256 : 1024;
const gPeak = await gantryChild(['--peak', '--size', String(peakSize)], { timeoutS: 300, name: 'peak' });
if (!gPeak.ok) fail(`the Gantry backend did not start: ${gPeak.error}`);
const backend = gPeak.result.backend;
const threads =
  requestedThreads ?? (backend.name === 'node' || backend.name === 'node-gpu' ? os.availableParallelism() : 1);
/** With more than one thread every row also runs at 1 thread, for each side's speed-up. */
const scaling = threads > 1 && !opts.soak;
let tPeak;
if (torchInfo.available && !opts.soak) {
  tPeak = await torchChild('peak.py', ['--peak', String(peakSize)], { timeoutS: 300, name: 'peak' });
  if (!tPeak.ok) say(`bench: PyTorch peak measurement failed: ${tPeak.error}`);
}
// With one thread the peak comes from the best CPU time of each probe (the same as wall-clock time on an idle
// machine, far steadier on a loaded one); with more threads CPU time adds up over threads, so wall-clock.
const pk = (probe) => (threads === 1 ? (probe?.gflopsCpu ?? probe?.gflops) : probe?.gflops);
const peakCandidates = [
  ['Gantry matMul', pk(gPeak.result.matmul)],
  ['Gantry conv2d 3×3', pk(gPeak.result.conv3x3)],
  ...(tPeak?.ok
    ? [
        ['PyTorch conv2d 3×3 (oneDNN)', pk(tPeak.result['torch-conv3x3'])],
        ['torch.matmul', pk(tPeak.result.torch)],
        ['numpy matmul', pk(tPeak.result.numpy)],
      ]
    : []),
].filter(([, v]) => Number.isFinite(v));
const [peakSource, machineGflops] = peakCandidates.reduce((a, b) => (b[1] > a[1] ? b : a));
const peak = {
  gantry: gPeak.result,
  torch: tPeak?.ok ? tPeak.result : null,
  machineGflops,
  source: `best: ${peakSource}, by ${threads === 1 ? 'CPU' : 'wall-clock'} time`,
};
say(
  `bench: backend ${backend.name} (${backend.detail}); PyTorch threads ${threads}; peak ${machineGflops.toFixed(1)} GFLOP/s (${peakSource})`,
);

const machine = () => ({
  cpus: os.cpus().length,
  cpuModel: cpuName(),
  totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
  loadavgStart: loadStart,
  loadavgEnd: os.loadavg(),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
});

// ---------------------------------------------------------------------------------------------------------------
if (opts.soak) {
  const id = opts.only?.split(',')[0]?.trim() || 'dcgan';
  const row = soakRow(id);
  if (!row) fail(`--only ${id}: unknown row for --soak`);
  const total = steps ?? 1000;
  // Warm-up until the state is steady: Adam's slots exist after one step, CycleGAN's image pools fill up, and the
  // wasm heap, malloc's arenas and oneDNN's kernels reach their working size (measured: +10 MiB by step 50, then flat).
  const warmup = Math.max(100, row.variant === 'cyclegan' ? Math.ceil(Number(row.net.poolSize) / row.batch) + 5 : 0);
  const soakRowCfg = { ...row, warmup };
  say(`bench: soak: ${row.label}, batch ${row.batch}, ${warmup} warm-up + ${total} steps …`);
  const r = await gantryChild(['--row', JSON.stringify(soakRowCfg), '--soak', '--steps', String(total)], {
    timeoutS: row.timeoutS,
    name: `soak-${id}`,
  });
  if (!r.ok) fail(`soak failed: ${r.error}`);
  const s = r.result;
  const tensorsOk = s.tensorDrift === 0;
  const rssOk = s.rssDriftPct <= 5;
  const lines = [
    `## Gantry soak: ${row.label}, batch ${row.batch}, ${total} steps (after ${warmup} warm-up steps), backend ${backend.name}`,
    '',
    '| step | tensors | RSS MiB | JS heap used MiB | ms/step (median of the interval) |',
    '|--:|--:|--:|--:|--:|',
    `| warm-up end | ${s.tensorsAfterWarmup} | ${s.rssAfterWarmupMiB.toFixed(0)} | – | – |`,
    ...s.trace.map(
      (p) => `| ${p.step} | ${p.tensors} | ${p.rssMiB.toFixed(0)} | ${p.heapMiB.toFixed(0)} | ${fmtMs(p.msPerStep)} |`,
    ),
    '',
    `tensor count: ${s.tensorsAfterWarmup} → ${s.tensorsAfter} (${s.tensorDrift >= 0 ? '+' : ''}${s.tensorDrift}) — target: identical — ${tensorsOk ? 'PASS' : 'FAIL'}`,
    `RSS (sampled after a full GC): ${s.rssAfterWarmupMiB.toFixed(0)} → ${s.rssAfterMiB.toFixed(0)} MiB (${s.rssDriftPct >= 0 ? '+' : ''}${s.rssDriftPct.toFixed(1)}%) — target: ≤ 5% growth — ${rssOk ? 'PASS' : 'FAIL'}; over the second half ${s.rssDriftSecondHalfPct >= 0 ? '+' : ''}${s.rssDriftSecondHalfPct.toFixed(1)}%; peak RSS ${s.peakRssMiB.toFixed(0)} MiB`,
    `median ${fmtMs(s.msPerStep)} ms/step over ${total} steps (${s.seconds.toFixed(0)} s); machine load average at start ${loadStart.map((x) => x.toFixed(2)).join(' ')}`,
  ];
  const json = {
    schema: 1,
    mode: 'soak',
    createdAt: startedAt.toISOString(),
    command: process.argv.slice(2),
    machine: machine(),
    backend,
    row: soakRowCfg,
    result: s,
    pass: { tensors: tensorsOk, rss: rssOk },
  };
  fs.writeFileSync(path.join(outDir, `soak-${stamp}.json`), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, 'soak-latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  console.log(lines.join('\n'));
  say(`bench: wrote ${path.relative(process.cwd(), path.join(outDir, `soak-${stamp}.json`))}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(tensorsOk && rssOk ? 0 : 1);
}

// ---------------------------------------------------------------------------------------------------------------
const { steps: rows, photo: photoRows } = selectRows(opts.only);
const results = [];
for (const row of rows) {
  // Above 1 thread each side alternates its timed steps between N threads and 1 (in one process, over the same
  // minutes: the speed-up does not depend on how the machine's speed drifted between two runs).
  const extra = [
    '--row',
    JSON.stringify(row),
    ...(steps != null ? ['--steps', String(steps)] : []),
    ...(scaling ? ['--alternate-threads'] : []),
  ];
  // Twice the time: every timed step at N threads has its partner at 1 thread.
  const timeoutS = scaling ? 2 * row.timeoutS : row.timeoutS;
  say(`bench: ${row.id}: ${row.label}, batch ${row.batch} — Gantry …`);
  const g = await gantryChild(extra, { timeoutS, name: row.id });
  let t;
  if (torchInfo.available) {
    say(`bench: ${row.id}: PyTorch …`);
    t = await torchChild(`${row.variant}.py`, extra, { timeoutS, name: row.id });
  }
  // A side that could not alternate (tfjs-node picks its own threads) runs the row again at 1 thread, right after.
  const oneThread = (c) =>
    c?.ok && c.result.stepMsOneThread
      ? { ok: true, result: { ...c.result, stepMs: c.result.stepMsOneThread, cpuMs: [], tensorsBefore: undefined } }
      : undefined;
  let g1 = oneThread(g);
  let t1 = oneThread(t);
  if (scaling && !g1) {
    say(`bench: ${row.id}: Gantry at 1 thread …`);
    g1 = await gantryChild(extra, { timeoutS: row.timeoutS, name: `${row.id}-1t`, threadCount: 1 });
  }
  if (scaling && torchInfo.available && !t1) {
    say(`bench: ${row.id}: PyTorch at 1 thread …`);
    t1 = await torchChild(`${row.variant}.py`, extra, { timeoutS: row.timeoutS, name: `${row.id}-1t`, threadCount: 1 });
  }
  const fwdG = g.ok ? g.result.forwardMacsPerSample : undefined;
  const fwdT = t?.ok ? t.result.forwardMacsPerSample : undefined;
  const fwd = fwdG ?? fwdT;
  const macsPerStep = fwd ? stepMacs(row, { G: fwd.G * row.batch, D: fwd.D * row.batch }) : null;
  const entry = {
    id: row.id,
    label: row.label,
    preset: row.preset,
    variant: row.variant,
    batch: row.batch,
    config: row.net,
    macsPerStep,
    gantry: g.ok ? summarise(row, g.result, macsPerStep, machineGflops) : { error: g.error },
    torch: t ? (t.ok ? summarise(row, t.result, macsPerStep, machineGflops) : { error: t.error }) : null,
    ratio: null,
    ratioCpu: null,
    ratioNote: torchInfo.available
      ? 'PyTorch failed'
      : `no PyTorch (${torchInfo.reason === '--no-torch' ? '--no-torch' : 'not installed'})`,
  };
  if (fwdG && fwdT && (fwdG.G !== fwdT.G || fwdG.D !== fwdT.D)) {
    entry.warning = `networks differ: forward multiply-adds per sample Gantry ${JSON.stringify(fwdG)}, PyTorch ${JSON.stringify(fwdT)}`;
    say(`bench: ${row.id}: warning: ${entry.warning}`);
  }
  if (g.ok && t?.ok) {
    entry.ratio = entry.gantry.msPerStep.median / entry.torch.msPerStep.median;
    if (entry.gantry.cpuMsPerStep && entry.torch.cpuMsPerStep)
      entry.ratioCpu = entry.gantry.cpuMsPerStep.median / entry.torch.cpuMsPerStep.median;
    entry.ratioNote = '';
  } else if (!g.ok) entry.ratioNote = 'Gantry failed';
  if (scaling) {
    const med = (c) => (c?.ok ? stats(c.result.stepMs).median : null);
    const [gN, g1ms, tN, t1ms] = [med(g), med(g1), med(t), med(t1)];
    entry.oneThread = {
      gantryMs: g1ms,
      torchMs: t1ms,
      gantryError: g1 && !g1.ok ? g1.error : undefined,
      torchError: t1 && !t1.ok ? t1.error : undefined,
      speedupGantry: gN && g1ms ? g1ms / gN : null,
      speedupTorch: tN && t1ms ? t1ms / tN : null,
      ratio: g1ms && t1ms ? g1ms / t1ms : null,
      gantry: g1?.ok ? summarise(row, g1.result, macsPerStep, null) : null,
      torch: t1?.ok ? summarise(row, t1.result, macsPerStep, null) : null,
    };
  }
  results.push(entry);
  const brief = (s) => (s && !s.error ? `${fmtMs(s.msPerStep.median)} ms/step` : `failed (${s?.error ?? 'not run'})`);
  say(
    `bench: ${row.id}: Gantry ${brief(entry.gantry)}${t ? `, PyTorch ${brief(entry.torch)}` : ''}${entry.ratio != null ? `, ratio ${entry.ratio.toFixed(2)}×` : ''}${entry.oneThread?.speedupGantry != null ? `; speed-up 1 → ${threads} threads: Gantry ${entry.oneThread.speedupGantry.toFixed(2)}×${entry.oneThread.speedupTorch != null ? `, PyTorch ${entry.oneThread.speedupTorch.toFixed(2)}×` : ''}` : ''}`,
  );
}

/** A full-size check as a child: its stdout (a markdown table) and the JSON it writes, or why it did not run. */
async function photoChild(row) {
  if (row.needsTorch && !torchInfo.available) return { id: row.id, skipped: `needs PyTorch (${torchInfo.reason})` };
  say(`bench: ${row.id}: ${row.script} …`);
  const jsonOut = path.join(tmp, `${row.id}.json`);
  const args = [path.join(here, row.script), '--json', jsonOut, '--python', python];
  if (row.id === 'translate-photo' || row.id === 'onnx-translate') args.push('--threads', String(threads));
  if (row.id === 'translate-photo' && !torchInfo.available) args.push('--no-torch');
  const started = Date.now();
  const child = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    timeout: row.timeoutS * 1000,
    env: { ...process.env, GANTRY_THREADS: String(threads) },
  });
  if (opts.verbose) process.stderr.write(child.stderr ?? '');
  const seconds = (Date.now() - started) / 1000;
  const result = fs.existsSync(jsonOut) ? JSON.parse(fs.readFileSync(jsonOut, 'utf8')) : null;
  const error =
    child.status === 0 || (child.status === 1 && result)
      ? undefined
      : `exit ${child.status ?? child.signal}: ${(child.stderr || '').trim().split('\n').slice(-2).join(' ')}`;
  say(
    `bench: ${row.id}: ${error ?? (result?.targetsMet === undefined ? 'done' : result.targetsMet ? 'targets met' : 'a target missed')} in ${seconds.toFixed(0)} s`,
  );
  return { id: row.id, seconds, table: (child.stdout ?? '').trim(), result, error };
}
const photoResults = [];
for (const row of photoRows) photoResults.push(await photoChild(row));
const photoMd = photoResults.flatMap((p) => [
  '',
  `### ${p.id}${p.seconds ? ` (${p.seconds.toFixed(0)} s)` : ''}`,
  '',
  p.skipped ? `not run: ${p.skipped}` : p.error ? `failed: ${p.error}` : p.table,
]);

const endedAt = new Date();
const json = {
  schema: 1,
  mode: opts.quick ? 'quick' : 'full',
  createdAt: startedAt.toISOString(),
  seconds: (endedAt.getTime() - startedAt.getTime()) / 1000,
  command: process.argv.slice(2),
  machine: machine(),
  backend,
  threads,
  torch: torchInfo,
  peak,
  macsConvention:
    'multiply-adds of conv, transposed-conv and dense layers; a step = DCGAN/cGAN/pix2pix 4·F_G + 8·F_D, CycleGAN 20·F_G + 16·F_D (F = one forward pass of the batch; backward = 2× forward; D differentiated only for its input in the G step = 2×); GFLOP/s = 2 · MACs / time',
  rows: results,
  fullSize: photoResults.map(({ table: _table, ...p }) => p),
};
const stepNotes = [
  `- a step = one D update + one G update (Adam) + loss read-back; batches made once, outside the timing; warm-up steps untimed; timed steps per row by a time budget (${rows.map((r) => `${r.id} ${r.minSteps}–${r.maxSteps}`).join(', ')}), so the paper-size rows get only a few`,
  `- tensors: live tf.memory() tensors before the first step → after warm-up → after the timed steps (should not change after warm-up${rows.some((r) => r.variant === 'cyclegan') ? '; CycleGAN grows by one per step until its image pools hold 50 images' : ''})`,
  '- Gantry / PyTorch: ratio of the median wall-clock ms per step, both measured in this run with the same thread count; "ratio by CPU time": the same with the processes\' CPU time per step, which other load on the machine disturbs less',
  ...(scaling
    ? [
        `- speed-up 1 → ${threads} threads: each side's median ms/step at 1 thread / at ${threads} threads, timed in one process whose steps alternate between the two thread counts (N, 1, 1, N, …); "ratio at 1 thread": Gantry / PyTorch at 1 thread`,
      ]
    : []),
  "- GFLOP/s: 2 × the step's multiply-adds (conv, transposed conv, dense; backward = 2× forward) / median wall-clock time (JSON gflopsCpu: / median CPU time); % peak against the machine peak above; the PyTorch references mirror Gantry's step and networks (forward multiply-adds checked equal)",
];
const md = [
  `## Gantry training-step benchmark (${json.mode}) — ${startedAt.toISOString()} — ${json.machine.cpuModel}, ${json.machine.cpus} CPUs, ${threads} thread${threads === 1 ? '' : 's'}`,
  '',
  rows.length ? markdownTable(results) : 'no training-step rows (--only names none)',
  '',
  ...peakLines(peak).map((l) => `- ${l}`),
  `- backend ${backend.name} (${backend.detail}); PyTorch ${torchInfo.available ? `${torchInfo.version}, ${threads} thread${threads === 1 ? '' : 's'}` : `not run: ${torchInfo.reason}`}`,
  `- machine: ${json.machine.cpus} CPUs (${json.machine.cpuModel}), load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} at start, ${json.machine.loadavgEnd.map((x) => x.toFixed(2)).join(' ')} at end; Node ${process.version}`,
  ...(rows.length ? stepNotes : []),
  `- reads from the backend to the CPU inside one training step (most in any step; the losses are read after it): ${results.map((r) => `${r.id} ${r.gantry?.transfersPerStep ?? '–'}`).join(', ')}`,
  ...results.filter((r) => r.warning).map((r) => `- WARNING ${r.id}: ${r.warning}`),
  ...photoMd,
].join('\n');
const file = path.join(outDir, `bench-${stamp}${opts.quick ? '-quick' : ''}.json`);
fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
fs.writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
fs.writeFileSync(path.join(outDir, 'latest.md'), `${md}\n`);
console.log(md);
say(
  `bench: wrote ${path.relative(process.cwd(), file) || file} (and latest.json, latest.md) in ${json.seconds.toFixed(0)} s`,
);
fs.rmSync(tmp, { recursive: true, force: true });
// A failed row, or a full-size check that missed its targets, makes the exit code 1.
const photoFailed = photoResults.some((p) => p.error || (p.result && !p.result.targetsMet));
process.exit(results.some((r) => r.gantry.error) || photoFailed ? 1 : 0);
