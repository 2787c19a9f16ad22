import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { convBlock, deconvBlock, denseBlock, MinibatchStddev } from '../nn/networks.js';
import { latestCheckpoint, listCheckpoints, loadModel, readCheckpointState } from '../runs/checkpoint.js';
import { readLossLog } from '../runs/progress.js';
import { train } from '../runs/train-run.js';
import { type LabelledImages, LatentGanTask } from './latent-gan.js';
import { adversarialLoss, r1Penalty } from './losses.js';
import { seedWeights } from './rng.js';

type Sym = tf.SymbolicTensor;

/**
 * A tiny DCGAN (8×8 images) so the loop's behaviour is tested in seconds; `stddevGroup` > 0 gives D a minibatch
 * standard-deviation feature in groups of that size.
 */
function tinyTask(
  seed: number,
  weightSeed = seed,
  data = blobs(256),
  ema = false,
  r1Gamma = 0,
  modeSeekingWeight = 0,
  stddevGroup = 0,
) {
  seedWeights(weightSeed);
  const generator = (): tf.LayersModel => {
    const z = tf.input({ shape: [8] });
    let g = denseBlock(z, 2 * 2 * 8, 'relu', 'batch');
    g = tf.layers.reshape({ targetShape: [2, 2, 8] }).apply(g) as Sym;
    g = deconvBlock(g, { filters: 8, norm: 'batch', act: 'relu' });
    return tf.model({ inputs: z, outputs: deconvBlock(g, { filters: 1, bias: true, act: 'tanh' }) });
  };
  const g = generator();
  const x = tf.input({ shape: [8, 8, 1] });
  let d = convBlock(x, { filters: 8, act: 'leaky' });
  d = convBlock(d, { filters: 16, norm: 'batch', act: 'leaky' });
  let features = tf.layers.flatten().apply(d) as Sym;
  if (stddevGroup) features = new MinibatchStddev({ groupSize: stddevGroup }).apply(features) as Sym;
  const score = denseBlock(features, 1, 'none');
  return new LatentGanTask({
    variant: 'tiny',
    generator: g,
    generatorEma: ema ? generator() : undefined,
    discriminator: tf.model({ inputs: x, outputs: score }),
    latentDim: 8,
    loss: adversarialLoss('bce'),
    lr: 2e-3,
    beta1: 0.5,
    seed,
    batchSize: 16,
    data,
    config: { latentDim: 8 },
    mustMatch: ['latentDim'],
    r1: r1Gamma,
    modeSeekingWeight,
  });
}

/** "Real" images: a bright square on a dark background at a random place. */
function blobs(count: number): LabelledImages {
  return {
    count,
    batch(indices) {
      return tf.tidy(() => {
        const imgs = Array.from(indices, (i) => {
          const buf = tf.buffer([8, 8, 1]);
          for (let p = 0; p < 64; p++) buf.set(-1, Math.floor(p / 8), p % 8, 0);
          const r = i % 5;
          const c = (i * 3) % 5;
          for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) buf.set(1, r + a, c + b, 0);
          return buf.toTensor();
        });
        return { x: tf.stack(imgs) as tf.Tensor4D, y: tf.zeros([indices.length], 'int32') as tf.Tensor1D };
      });
    },
  };
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-trainer-'));
const weightsOf = (task: LatentGanTask) =>
  Object.values(task.nets).flatMap((m) => m.getWeights().map((w) => Array.from(w.dataSync())));

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe('train', () => {
  it('keeps the tensor count flat over many steps (no leaks)', async () => {
    // The weight average, the R1 penalty (every 16th step), the mode-seeking term and D's minibatch stddev on, so
    // their tensors count too.
    const task = tinyTask(1, 1, blobs(256), true, 1, 0.1, 4);
    const counts: number[] = [];
    await train(task, {
      runDir: tmp(),
      steps: 60,
      sampleEvery: 20,
      onStep: (step) => {
        if (step >= 5) counts.push(tf.memory().numTensors);
      },
    });
    expect(counts.length).toBe(56);
    expect(new Set(counts).size).toBe(1);
    task.dispose();
  });

  it('lowers D loss on real vs fake within a few steps', async () => {
    const task = tinyTask(2);
    const d: number[] = [];
    // With G frozen (lr 0), D alone must learn to tell the squares from G's output.
    (task.optimizers.G as unknown as { learningRate: number }).learningRate = 0;
    const frozen = { ...task, generatorStep: () => ({}) } as unknown as LatentGanTask;
    Object.setPrototypeOf(frozen, Object.getPrototypeOf(task));
    await train(frozen, { runDir: tmp(), steps: 15, onStep: (_, l) => d.push(l.D!) });
    expect(d.at(-1)!).toBeLessThan(d[0]! * 0.5);
    task.dispose();
  });

  it('writes atomic checkpoints that load with tf.loadLayersModel, keeping the last K', async () => {
    const runDir = tmp();
    const task = tinyTask(3);
    const result = await train(task, { runDir, steps: 12, checkpointEvery: 3, keep: 2 });
    expect(result.step).toBe(12);
    const kept = listCheckpoints(runDir).map((p) => path.basename(p));
    expect(kept).toEqual(['step-00000009', 'step-00000012']);
    const state = readCheckpointState(latestCheckpoint(runDir)!);
    expect(state).toMatchObject({ variant: 'tiny', step: 12, config: { latentDim: 8 } });
    expect(fs.readdirSync(path.join(runDir, 'checkpoints')).filter((n) => n.includes('tmp'))).toEqual([]);
    const g = await loadModel(path.join(latestCheckpoint(runDir)!, 'generator'));
    const z = tf.randomNormal([2, 8], 0, 1, 'float32', 5) as tf.Tensor2D;
    const a = tf.tidy(() => g.predict(z) as tf.Tensor);
    const b = tf.tidy(() => task.nets.generator.predict(z) as tf.Tensor);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(fs.existsSync(path.join(runDir, 'samples', 'final.png'))).toBe(true);
    expect(readLossLog(path.join(runDir, 'losses.jsonl')).map((e) => e.step)).toEqual(
      [...Array(12)].map((_, i) => i + 1),
    );
    tf.dispose([z, a, b]);
    task.dispose();
  });

  it('resumes exactly: N steps straight equal N/2 + resume + N/2', async () => {
    const straight = tinyTask(4);
    await train(straight, { runDir: tmp(), steps: 10 });
    const runDir = tmp();
    const first = tinyTask(4);
    await train(first, { runDir, steps: 10, stopAfter: 5 });
    expect(readCheckpointState(latestCheckpoint(runDir)!).step).toBe(5);
    const second = tinyTask(4, 99); // different init: every weight must come from the checkpoint
    const result = await train(second, { runDir, steps: 10, resume: true });
    expect(result.step).toBe(10);
    const a = weightsOf(straight);
    const b = weightsOf(second);
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++)
      for (let j = 0; j < a[i]!.length; j++) expect(b[i]![j]!).toBeCloseTo(a[i]![j]!, 5);
    for (const t of [straight, first, second]) t.dispose();
  });

  it('refuses a checkpoint of another configuration', async () => {
    const runDir = tmp();
    await train(tinyTask(5), { runDir, steps: 2 });
    const other = tinyTask(5);
    (other.config as Record<string, unknown>).latentDim = 16;
    await expect(train(other, { runDir, steps: 4, resume: true })).rejects.toThrow(/latentDim=8, not 16/);
  });

  it('stops at a NaN loss naming the step, and never checkpoints NaN weights', async () => {
    const runDir = tmp();
    await train(tinyTask(6), { runDir, steps: 3 });
    const poisonAt = (task: LatentGanTask, at: number) => (step: number) => {
      if (step !== at) return;
      const w = task.nets.discriminator.trainableWeights[0]!;
      w.write(tf.fill(w.shape as number[], Number.NaN));
    };
    const a = tinyTask(6);
    await expect(train(a, { runDir, steps: 6, resume: true, onStep: poisonAt(a, 4) })).rejects.toThrow(
      /step 5: D loss is NaN/,
    );
    const b = tinyTask(6);
    await expect(
      train(b, { runDir, steps: 6, resume: true, checkpointEvery: 1, onStep: poisonAt(b, 4) }),
    ).rejects.toThrow(/step 4: weights contain NaN/);
    expect(readCheckpointState(latestCheckpoint(runDir)!).step).toBe(3);
  });

  it('rolls back to the last checkpoint with half the learning rate under nanPolicy rollback', async () => {
    const runDir = tmp();
    const task = tinyTask(7);
    let poisoned = false;
    const lines: string[] = [];
    const result = await train(task, {
      runDir,
      steps: 8,
      checkpointEvery: 2,
      nanPolicy: 'rollback',
      log: (l) => lines.push(l),
      onStep: (step) => {
        if (step !== 5 || poisoned) return;
        poisoned = true;
        const w = task.nets.discriminator.trainableWeights[0]!;
        w.write(tf.fill(w.shape as number[], Number.NaN));
      },
    });
    expect(
      lines.some((l) =>
        /step 6: D loss is NaN; rolled back .*step-00000004 \(step 4\) at 1\/2 of the learning rate \(retry 1 of 5\)/.test(
          l,
        ),
      ),
    ).toBe(true);
    expect(result.step).toBe(8);
    expect(Object.values(result.losses).every(Number.isFinite)).toBe(true);
    expect(readCheckpointState(latestCheckpoint(runDir)!).lrScale).toBe(0.5);
  });

  it('under nanPolicy rollback retries a bounded number of times, each at a lower rate, then stops with a clear message', async () => {
    const runDir = tmp();
    const task = tinyTask(8);
    const lines: string[] = [];
    const rates: number[] = [];
    const G = task.optimizers.G;
    await expect(
      train(task, {
        runDir,
        steps: 20,
        checkpointEvery: 4,
        nanPolicy: 'rollback',
        maxRollbacks: 3,
        log: (l) => lines.push(l),
        onStep: (step) => {
          if (step < 5) return;
          // The rate the step ran at, then poison: every step after the checkpoint at 4 diverges.
          rates.push((G as unknown as { learningRate: number }).learningRate);
          const w = task.nets.discriminator.trainableWeights[0]!;
          w.write(tf.fill(w.shape as number[], Number.NaN));
        },
      }),
    ).rejects.toThrow(
      /^step 6: D loss is NaN again after 3 rollbacks to .*step-00000004, the last at 1\/8 of the learning rate; training diverged \(lower --lr\)$/,
    );
    const rolled = lines.filter((l) => l.includes('rolled back'));
    expect(rolled.map((l) => /at (\S+) of the learning rate/.exec(l)?.[1])).toEqual(['1/2', '1/4', '1/8']);
    // Each retry really ran at a lower rate than the one before.
    expect(rates).toHaveLength(4);
    for (let i = 1; i < rates.length; i++) expect(rates[i]).toBeCloseTo(rates[i - 1]! / 2, 12);
    expect(readCheckpointState(latestCheckpoint(runDir)!).step).toBe(4);
  });

  it("refuses to resume from a checkpoint older than the run's latest (one history per run directory)", async () => {
    const runDir = tmp();
    await train(tinyTask(9), { runDir, steps: 4, checkpointEvery: 2 });
    const older = listCheckpoints(runDir)[0]!;
    await expect(train(tinyTask(9), { runDir, steps: 6, resume: older })).rejects.toThrow(
      /step 2 is older than this run's latest checkpoint \(step 4\)/,
    );
    expect(listCheckpoints(runDir).map((d) => path.basename(d))).toEqual(['step-00000002', 'step-00000004']);
  });
});

describe('generator weight average', () => {
  it('is ema ← β·ema + (1 − β)·G after each G step, with β warmed up', async () => {
    const task = tinyTask(9, 9, blobs(256), true);
    const before = task.nets.generator.getWeights().map((w) => Array.from(w.dataSync()));
    expect(task.nets.generator_ema!.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    await train(task, { runDir: tmp(), steps: 1 });
    const after = task.nets.generator.getWeights().map((w) => Array.from(w.dataSync()));
    const ema = task.nets.generator_ema!.getWeights().map((w) => Array.from(w.dataSync()));
    // Step 0: β = min(0.999, 1/10) = 0.1.
    for (let i = 0; i < ema.length; i++)
      for (let j = 0; j < ema[i]!.length; j++)
        expect(ema[i]![j]!).toBeCloseTo(0.1 * before[i]![j]! + 0.9 * after[i]![j]!, 5);
    expect(after).not.toEqual(before);
  });

  it('is checkpointed and resumed exactly', async () => {
    const straight = tinyTask(10, 10, blobs(256), true);
    await train(straight, { runDir: tmp(), steps: 8 });
    const runDir = tmp();
    await train(tinyTask(10, 10, blobs(256), true), { runDir, steps: 8, stopAfter: 4 });
    expect(fs.existsSync(path.join(latestCheckpoint(runDir)!, 'generator_ema', 'model.json'))).toBe(true);
    const resumed = tinyTask(10, 77, blobs(256), true);
    await train(resumed, { runDir, steps: 8, resume: true });
    const a = straight.nets.generator_ema!.getWeights().flatMap((w) => Array.from(w.dataSync()));
    const b = resumed.nets.generator_ema!.getWeights().flatMap((w) => Array.from(w.dataSync()));
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-5);
  });
});

describe('a training step', () => {
  it("shares G's forward pass between D's update and G's, with the same updates as the two steps", async () => {
    // R1 (step 16) and the mode-seeking term on: both must come out the same on the shared pass.
    const shared = tinyTask(12, 12, blobs(256), true, 1, 0.1);
    const split = tinyTask(12, 12, blobs(256), true, 1, 0.1);
    const trainable = (task: LatentGanTask) =>
      [task.nets.generator, task.nets.discriminator].flatMap((m) => m.trainableWeights.map((w) => w.read().dataSync()));
    for (let step = 0; step < 18; step++) {
      const batch = shared.nextBatch(step);
      const a = shared.trainStep(batch, step);
      const b = { ...split.discriminatorStep(batch, step), ...split.generatorStep(batch, step) };
      expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
      for (const k of Object.keys(a)) expect(a[k]!.dataSync()[0]).toBeCloseTo(b[k]!.dataSync()[0]!, 5);
      tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(batch)]);
    }
    const [wa, wb] = [trainable(shared), trainable(split)];
    const worst = Math.max(...wa.flatMap((w, i) => Array.from(w, (v, j) => Math.abs(v - wb[i]![j]!))));
    expect(worst).toBeLessThan(1e-5);
    // The saving is real: the shared step runs fewer kernels (G's forward pass once, not twice).
    const kernels = async (run: () => tf.Tensor[]) => (await tf.profile(() => tf.dispose(run()))).kernels.length;
    const batch = shared.nextBatch(18);
    const once = await kernels(() => Object.values(shared.trainStep(batch, 18)));
    const twice = await kernels(() => [
      ...Object.values(split.discriminatorStep(batch, 18)),
      ...Object.values(split.generatorStep(batch, 18)),
    ]);
    tf.dispose(Object.values(batch));
    expect(once).toBeLessThan(twice);
    shared.dispose();
    split.dispose();
  });
});

describe('R1 penalty (r1)', () => {
  it("is added to D's loss every 16th step only, at 16γ (lazy regularisation)", () => {
    const dLoss = (r1Gamma: number, step: number) => {
      const task = tinyTask(11, 11, blobs(256), false, r1Gamma);
      const batch = task.nextBatch(step);
      // The penalty at D's weights before the step, as the step computes it.
      const penalty = r1Penalty(
        (x) => task.nets.discriminator.apply(x, { training: true }) as tf.Tensor,
        batch.x,
        16 * r1Gamma,
      );
      const expected = penalty.dataSync()[0]!;
      const losses = task.discriminatorStep(batch, step);
      const d = losses.D!.dataSync()[0]!;
      tf.dispose([penalty, ...Object.values(losses), ...Object.values(batch)]);
      task.dispose();
      return { d, penalty: expected };
    };
    const plain = dLoss(0, 16);
    const regularised = dLoss(0.5, 16);
    expect(regularised.penalty).toBeGreaterThan(0);
    expect(regularised.d).toBeCloseTo(plain.d + regularised.penalty, 4);
    expect(dLoss(0.5, 17).d).toBeCloseTo(dLoss(0, 17).d, 6);
  });
});

describe('train on the pure-JS backend', () => {
  it('resumes reproducibly: N steps straight equal N/2 + resume + N/2', async () => {
    await initBackend({ backend: 'cpu', log: () => {} });
    try {
      const straight = tinyTask(8);
      await train(straight, { runDir: tmp(), steps: 6 });
      const runDir = tmp();
      await train(tinyTask(8), { runDir, steps: 6, stopAfter: 3 });
      const resumed = tinyTask(8, 123);
      await train(resumed, { runDir, steps: 6, resume: true });
      const a = weightsOf(straight).flat();
      const b = weightsOf(resumed).flat();
      expect(b.length).toBe(a.length);
      const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      expect(worst).toBeLessThan(1e-6);
    } finally {
      await initBackend({ backend: 'wasm', log: () => {} });
    }
  });
});

describe('discriminator collapse', () => {
  it("warns once when D's loss stays near zero", async () => {
    const lines: string[] = [];
    const task = {
      variant: 'fake',
      config: {},
      mustMatch: [],
      nets: {},
      optimizers: {},
      stepsPerEpoch: 10,
      nextBatch: () => tf.scalar(0),
      discriminatorStep: () => ({ D: tf.scalar(1e-5) }),
      generatorStep: () => ({ G: tf.scalar(9) }),
      writeSamples: async () => {},
    };
    await train(task, { runDir: tmp(), steps: 30, collapseSteps: 10, log: (l) => lines.push(l) });
    const warnings = lines.filter((l) => l.includes('warning'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/D's loss has stayed below 1e-3 for 10 steps \(step 10\).*smaller D/);
  });
});
