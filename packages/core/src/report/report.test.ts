import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../runs/image.js';
import { train } from '../runs/train-run.js';
import type { GanTask } from '../train/trainer.js';
import { findRuns, flattenFigures, headlineFigures, readRunData, recentLosses, renameLossKeys } from './data.js';
import { curve, figuresHtml, lossGroups, renderReport } from './html.js';
import { REPORT_FILE, reportWriter, writeReport } from './write.js';

let tmp: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-report-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A run directory as the apps leave it: run.json, losses.jsonl, samples, evaluation.json. */
async function fakeRun(dir: string, steps = 300, withEvaluation = true): Promise<string> {
  fs.mkdirSync(path.join(dir, 'samples'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'run.json'),
    JSON.stringify({
      variant: 'cgan',
      backend: 'wasm',
      created: '2026-01-02T03:04:05.000Z',
      options: { ngf: 8, steps, lr: 2e-4 },
      args: { seed: 42 },
    }),
  );
  const lines = Array.from({ length: steps }, (_, i) =>
    JSON.stringify({
      step: i + 1,
      epoch: (i + 1) / 100,
      D: 1.3 - i / steps,
      G: 0.7 + i / steps,
      D_real: 0.5,
      time: 1_000_000 + i * 100,
    }),
  );
  fs.writeFileSync(path.join(dir, 'losses.jsonl'), `${lines.join('\n')}\n{"step": 9`); // a line cut short by a kill
  for (const s of [100, 200, 300]) {
    const img = tf.fill([28, 28, 1], s / 300 - 0.5) as tf.Tensor3D;
    fs.writeFileSync(path.join(dir, 'samples', `step-${String(s).padStart(8, '0')}.png`), await encodePng(img));
    img.dispose();
  }
  fs.copyFileSync(path.join(dir, 'samples', 'step-00000300.png'), path.join(dir, 'samples', 'final.png'));
  if (withEvaluation) {
    fs.writeFileSync(
      path.join(dir, 'evaluation.json'),
      JSON.stringify({
        checkpoint: '/x/checkpoints/step-00000300',
        generated: {
          samples: 100,
          frechet: 12.5,
          meanAccuracy: 0.93,
          perClass: [{ label: 0, accuracy: 0.9, share: 0.1, diversity: 3 }],
        },
        real: { samples: 100, frechet: 1.25, perClass: [{ label: 0, share: 0.1, diversity: 3.2 }] },
        classifierAccuracy: 0.991,
      }),
    );
  }
  return dir;
}

describe('run data', () => {
  it("reads an older run's loss keys under today's names", () => {
    expect(renameLossKeys({ step: 3, G: 1, 'D(real)': 0.5, 'G ms': 0.1, 'D cls': 2 })).toEqual({
      step: 3,
      G: 1,
      D_real: 0.5,
      G_ms: 0.1,
      D_cls: 2,
    });
  });

  it('reads losses, samples (final last) and evaluation; tolerates a torn last line', async () => {
    const dir = await fakeRun(path.join(tmp, 'runs', 'cgan', 'a'));
    const run = readRunData(dir, path.join(tmp, 'runs'));
    expect(run.id).toBe('cgan/a');
    expect(run.variant).toBe('cgan');
    expect(run.lastStep).toBe(300);
    expect(run.totalSteps).toBe(300);
    expect(run.lossNames).toEqual(['D', 'G', 'D_real']);
    expect(run.samples.map((s) => s.file)).toEqual([
      'samples/step-00000100.png',
      'samples/step-00000200.png',
      'samples/step-00000300.png',
      'samples/final.png',
    ]);
    expect(run.seconds).toBeCloseTo(29.9);
    expect(recentLosses(run.losses, ['D'], 1).D).toBeCloseTo(1.3 - 299 / 300);
  });

  it('groups losses into D, G and other terms', () => {
    expect(lossGroups(['D', 'G', 'L1', 'D_A', 'G_A', 'cycle_A', 'idt_B'])).toEqual([
      { title: 'Discriminator loss', names: ['D', 'D_A'] },
      { title: 'Generator loss', names: ['G', 'G_A'] },
      { title: 'Other loss terms', names: ['L1', 'cycle_A', 'idt_B'] },
    ]);
  });

  it('averages long curves down to the point budget and smooths them', () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ step: i + 1, D: i % 2 }));
    const c = curve(entries, 'D', 500);
    expect(c.raw.length).toBe(500);
    expect(c.smooth.length).toBe(500);
    expect(c.raw.at(-1)![0]).toBe(10_000);
    for (const [, v] of c.raw) expect(v).toBeCloseTo(0.5, 5);
  });

  it('flattens figures and picks headline metrics of the generated images', () => {
    const e = {
      generated: { samples: 10, frechet: 3, meanAccuracy: 0.9, perClass: [{ label: 7, accuracy: 1 }] },
      real: { frechet: 1 },
      classifierAccuracy: 0.99,
    };
    expect(flattenFigures(e)['generated.perClass[7].accuracy']).toBe(1);
    expect(headlineFigures(e)).toEqual({
      'generated.frechet': 3,
      'generated.meanAccuracy': 0.9,
      classifierAccuracy: 0.99,
    });
    expect(headlineFigures({ scores: { model: { l1: 0.2, ssim: 0.5, count: 3 }, baseline: { l1: 0.3 } } })).toEqual({
      'scores.model.l1': 0.2,
      'scores.model.ssim': 0.5,
    });
  });

  it('lists runs under a root, oldest first', async () => {
    const root = path.join(tmp, 'list');
    await fakeRun(path.join(root, 'cgan', 'r1'), 5, false);
    await fakeRun(path.join(root, 'dcgan', 'r2'), 5, false);
    fs.mkdirSync(path.join(root, 'cgan', 'not-a-run'), { recursive: true });
    fs.mkdirSync(path.join(root, '.classifier', 'x'), { recursive: true });
    expect(findRuns(root).map((d) => path.relative(root, d))).toEqual([
      path.join('cgan', 'r1'),
      path.join('dcgan', 'r2'),
    ]);
  });
});

describe('report.html', () => {
  it('is one offline page: inlined Chart.js, chart data, data: URI samples, settings and figures', async () => {
    const dir = await fakeRun(path.join(tmp, 'runs', 'cgan', 'b'));
    fs.writeFileSync(path.join(dir, 'report.html.tmp-999999-abcdef'), 'left by a killed process');
    const file = writeReport(dir, { root: path.join(tmp, 'runs') });
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(file).toBe(path.join(dir, REPORT_FILE));
    const html = fs.readFileSync(file, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.includes(' * Chart.js v4'), ' * Chart.js v4').toBe(true); // the library itself, not a <script src>
    expect(/<(script|link|img)[^>]+(src|href)="(https?:)?\/\//.test(html), 'no remote src/href').toBe(false);
    expect(html.includes('sourceMappingURL'), 'no source map link').toBe(false);
    expect(html.match(/data:image\/png;base64,/g)!.length).toBeGreaterThanOrEqual(4);
    expect(html.includes('Discriminator loss'), 'Discriminator loss').toBe(true);
    expect(html.includes('Generator loss'), 'Generator loss').toBe(true);
    expect(html.includes('<th>backend</th><td>wasm</td>'), '<th>backend</th><td>wasm</td>').toBe(true);
    expect(
      html.includes('<th>frechet</th><td>12.5</td><td>1.25</td>'),
      '<th>frechet</th><td>12.5</td><td>1.25</td>',
    ).toBe(true); // generated vs real side by side
    expect(html.includes('finished'), 'finished').toBe(true);
    expect(html.includes('http-equiv="refresh"'), 'http-equiv="refresh"').toBe(false);
    const data = JSON.parse(/<script type="application\/json" id="gantry-data">(.*?)<\/script>/s.exec(html)![1]!);
    expect(data.charts.map((c: { curves: { name: string }[] }) => c.curves.map((x) => x.name))).toEqual([
      ['D', 'D_real'],
      ['G'],
    ]);
    expect(data.samples.at(-1).final).toBe(true);
  });

  it('refreshes itself while running, and says where a stopped run stopped', async () => {
    const dir = await fakeRun(path.join(tmp, 'runs', 'cgan', 'c'), 50, false);
    fs.rmSync(path.join(dir, 'samples', 'final.png'));
    const run = readRunData(dir);
    fs.writeFileSync(
      path.join(dir, 'run.json'),
      JSON.stringify({ variant: 'cgan', backend: 'cpu', created: 'x', options: { steps: 100 } }),
    );
    expect(
      renderReport(run, { status: 'running', refreshSeconds: 7 }).includes('<meta http-equiv="refresh" content="7">'),
      '<meta http-equiv="refresh" content="7">',
    ).toBe(true);
    expect(renderReport(readRunData(dir)).includes('running · refreshes'), 'running · refreshes').toBe(true); // just written: looks alive
    const stopped = renderReport(readRunData(dir), { now: new Date(Date.now() + 3_600_000) });
    expect(stopped.includes('stopped at step 50'), 'stopped at step 50').toBe(true);
    expect(stopped.includes('Not evaluated yet'), 'Not evaluated yet').toBe(true);
  });

  it('keeps the inlined images within the byte budget', async () => {
    const dir = await fakeRun(path.join(tmp, 'runs', 'cgan', 'd'), 300, false);
    const html = renderReport(readRunData(dir), { sampleBytes: 1 });
    expect(html.match(/<img alt="step/g)!.length).toBe(1);
    expect(html.includes('1 of 4 sample images shown'), '1 of 4 sample images shown').toBe(true);
  });

  it('renders per-class figure arrays as tables and escapes strings', () => {
    const html = figuresHtml({ checkpoint: '<x>', perClass: [{ label: 1, accuracy: 0.5 }] });
    expect(html.includes('&lt;x&gt;'), '&lt;x&gt;').toBe(true);
    expect(
      html.includes('<h4>perClass</h4><table class="grid"><thead><tr><th>label</th><th>accuracy</th></tr>'),
      '<h4>perClass</h4><table class="grid"><thead><tr><th>label</th><th>accuracy</th></tr>',
    ).toBe(true);
  });
});

describe('the training loop writes the report', () => {
  /** A task with one weight per net that trains in microseconds. */
  function tinyTask(): GanTask {
    const net = () => {
      const m = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
      return m;
    };
    const G = net();
    const D = net();
    const optG = tf.train.adam(0.01);
    const optD = tf.train.adam(0.01);
    const step = (m: tf.LayersModel, opt: tf.Optimizer) =>
      opt.minimize(() => tf.mean(tf.square(m.apply(tf.ones([2, 1])) as tf.Tensor)) as tf.Scalar, true)!;
    return {
      variant: 'tiny',
      config: {},
      mustMatch: [],
      nets: { G, D },
      optimizers: { G: optG, D: optD },
      stepsPerEpoch: 4,
      nextBatch: () => tf.zeros([1]),
      discriminatorStep: () => ({ D: step(D, optD) }),
      generatorStep: () => ({ G: step(G, optG) }),
      async writeSamples(file) {
        const img = tf.tidy(() => tf.zeros([8, 8, 1]) as tf.Tensor3D);
        fs.writeFileSync(file, await encodePng(img));
        img.dispose();
      },
    };
  }

  it('writes report.html with curves and sample grids during and at the end of a run', async () => {
    const runDir = path.join(tmp, 'train-run');
    const seen: string[] = [];
    await train(tinyTask(), {
      runDir,
      steps: 6,
      sampleEvery: 2,
      checkpointEvery: 0,
      onStep: (s) => {
        if (s === 3) seen.push(fs.readFileSync(path.join(runDir, REPORT_FILE), 'utf8'));
      },
    });
    expect(seen[0].includes('http-equiv="refresh"'), 'http-equiv="refresh"').toBe(true); // written at the first sample, while running
    const html = fs.readFileSync(path.join(runDir, REPORT_FILE), 'utf8');
    expect(html.includes('finished'), 'finished').toBe(true);
    expect(html.includes('http-equiv="refresh"'), 'http-equiv="refresh"').toBe(false);
    const data = JSON.parse(/id="gantry-data">(.*?)<\/script>/s.exec(html)![1]!);
    expect(data.charts[0].curves[0].raw.length).toBe(6);
    expect(data.samples.length).toBe(4); // steps 2, 4, 6 and final
  });

  it('never fails training when the report cannot be written; warns once', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    const logs: string[] = [];
    const w = reportWriter(path.join(file, 'run'), { log: (l) => logs.push(l), minIntervalMs: 0 });
    w.update();
    w.update();
    w.finish(true);
    expect(logs.length).toBe(1);
    expect(logs[0]).toMatch(/^warning: could not write .*report\.html/);
  });

  it('throttles rewrites during training', () => {
    const dir = path.join(tmp, 'throttle');
    fs.mkdirSync(dir);
    const w = reportWriter(dir, { minIntervalMs: 60_000 });
    w.update();
    const first = fs.statSync(path.join(dir, REPORT_FILE)).mtimeMs;
    fs.rmSync(path.join(dir, REPORT_FILE));
    w.update();
    expect(fs.existsSync(path.join(dir, REPORT_FILE))).toBe(false);
    w.finish(false);
    expect(fs.statSync(path.join(dir, REPORT_FILE)).mtimeMs).toBeGreaterThanOrEqual(first);
  });
});
