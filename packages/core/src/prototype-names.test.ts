/**
 * Issue #40: a user string (a flag, a run.json or state.json key, a preset, a variant name) is never looked up in a
 * plain object where JavaScript's own names (constructor, __proto__, toString) would be found.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend/index.js';
import { resolveTrainValues } from './cli/commands/train.js';
import { flag, readFlags } from './cli/flags.js';
import { addedConfigKeys, loadModel, migrateKeys, registerKeyMigrations, saveModel } from './runs/checkpoint.js';
import type { VariantDefinition } from './variant.js';

const flags = { width: flag.positiveInt('hidden units', { default: 4 }) };
const def: VariantDefinition<typeof flags, { width: number }, { length: number; unit: string }> = {
  name: 'toy',
  title: 'a test variant',
  trainDescribe: 'nothing',
  flags,
  presets: {
    small: {
      describe: 'small',
      constantEpochs: 1,
      decayEpochs: 0,
      batchSize: 1,
      lr: 1e-3,
      loss: 'bce',
      sampleEvery: 0,
      checkpointEvery: 0,
    },
  },
  config: (v) => ({ width: v.width }),
  mustMatch: ['width'],
  openData: async () => ({ length: 1, unit: 'images' }),
  createTask: () => {
    throw new Error('not used');
  },
  inference: { kind: 'latent', latentDim: () => 1, imageSize: () => 8, channels: () => 1 },
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-proto-'));
beforeAll(() => initBackend({ backend: 'cpu', log: () => {} }));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('prototype names', () => {
  it("a model.json weight of dtype 'constructor' is refused, not sized as NaN bytes", async () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    const dir = path.join(tmp, 'model');
    await saveModel(m, dir);
    m.dispose();
    const file = path.join(dir, 'model.json');
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    j.weightsManifest[0].weights[0].dtype = 'constructor';
    j.weightsManifest[0].weights[0].quantization = { dtype: 'constructor', scale: 1, min: 0 };
    fs.writeFileSync(file, JSON.stringify(j));
    await expect(loadModel(dir)).rejects.toThrow(/has dtype constructor, expected float32, int32 or bool/);
  });

  it('a preset named like an Object property is unknown (as from a run.json)', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(() => resolveTrainValues(def, {}, { preset: name })).toThrow(
        new RegExp(`--preset: unknown preset '${name}' \\(expected small\\)`),
      );
    }
  });

  it('run.json keys named like Object properties are neither renamed nor set the prototype', () => {
    const o = JSON.parse('{"constructor": 1, "toString": 2, "__proto__": {"polluted": true}, "size": 64}');
    // A variant that renamed `size` to `cropSize` (as CycleGAN did), registered as its definition would be.
    registerKeyMigrations({ name: 'renamer', renamedKeys: { size: 'cropSize' } });
    const m = migrateKeys('renamer', o);
    expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
    expect((m as { polluted?: boolean }).polluted).toBeUndefined();
    expect(m).toEqual({ constructor: 1, toString: 2, cropSize: 64 });
    expect(migrateKeys('constructor', { a: 1 })).toEqual({ a: 1 });
    expect(addedConfigKeys('__proto__')).toEqual([]);
    expect(addedConfigKeys('constructor')).toEqual([]);
  });

  it('a choice flag takes only its choices', () => {
    const specs = { mode: flag.choice(['a', 'b'] as const, 'mode') };
    for (const v of ['constructor', '__proto__', 'toString'])
      expect(() => readFlags(specs, { mode: v })).toThrow(/--mode: expected one of a, b/);
  });
});
