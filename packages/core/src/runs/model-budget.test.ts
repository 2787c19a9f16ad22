/** Issue #40 (probe): a model.json cannot make loadModel allocate more weights than its weight files hold. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { loadModel, saveModel } from './checkpoint.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-model-budget-'));
beforeAll(() => initBackend({ backend: 'cpu', log: () => {} }));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('loadModel', () => {
  it('refuses a topology that declares more weights than weights.bin holds, before allocating them', async () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [4] })] });
    const dir = path.join(tmp, 'm');
    await saveModel(m, dir);
    m.dispose();
    const ok = await loadModel(dir);
    ok.dispose();
    const file = path.join(dir, 'model.json');
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    Object.assign(j.modelTopology.config.layers[0].config, { units: 15000, batch_input_shape: [null, 15000] });
    fs.writeFileSync(file, JSON.stringify(j));
    const before = process.memoryUsage().rss;
    const tensors = tf.memory().numTensors;
    await expect(loadModel(dir)).rejects.toThrow(
      /model\.json: its layers declare more than 225000000 weight values, but its weight files hold 20$/,
    );
    // 15000² float32 weights would be 900 MB.
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(200);
    expect(tf.memory().numTensors).toBe(tensors);
    // The bound is lifted afterwards: models build as before.
    const again = tf.sequential({ layers: [tf.layers.dense({ units: 300, inputShape: [300] })] });
    expect(again.countParams()).toBe(90300);
    again.dispose();
  });
});
