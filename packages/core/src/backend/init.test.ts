import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { GantryError } from '../errors.js';
import { initBackend, nativeThreadCount } from './index.js';

const saved = process.env.GANTRY_BACKEND;
afterEach(() => {
  if (saved === undefined) delete process.env.GANTRY_BACKEND;
  else process.env.GANTRY_BACKEND = saved;
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('initBackend', () => {
  it('forcing cpu works, logs one line, and is idempotent', async () => {
    const lines: string[] = [];
    const info = await initBackend({
      backend: 'cpu',
      log: (l) => lines.push(l),
    });
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(lines).toEqual([`backend: cpu (${info.detail})`]);
    const again = await initBackend({
      backend: 'cpu',
      log: (l) => lines.push(l),
    });
    expect(again).toBe(info);
    expect(lines).toHaveLength(1);
  });

  it('forcing node fails with a GantryError naming it (tfjs-node installed without its native library)', async () => {
    const e = await rejection(initBackend({ backend: 'node', log: () => {} }));
    expect(e).toBeInstanceOf(GantryError);
    const msg = (e as Error).message;
    expect(msg).toMatch(/^--backend node: @tensorflow\/tfjs-node is not installed/);
    expect(msg).not.toContain('\n');
  });

  it('forcing node-gpu fails the same way', async () => {
    const e = await rejection(initBackend({ backend: 'node-gpu', log: () => {} }));
    expect(e).toBeInstanceOf(GantryError);
    expect((e as Error).message).toContain('@tensorflow/tfjs-node-gpu');
  });

  it('an unknown name fails with a GantryError listing the valid ones', async () => {
    const e = await rejection(initBackend({ backend: 'tpu', log: () => {} }));
    expect(e).toBeInstanceOf(GantryError);
    expect((e as Error).message).toBe(
      '--backend tpu: unknown backend; expected one of auto, node-gpu, webgpu, node, wasm, cpu',
    );
  });

  it('GANTRY_BACKEND is honoured and named in errors', async () => {
    process.env.GANTRY_BACKEND = 'bogus';
    const e = await rejection(initBackend({ log: () => {} }));
    expect(e).toBeInstanceOf(GantryError);
    expect((e as Error).message).toMatch(/^GANTRY_BACKEND=bogus: unknown backend/);
    process.env.GANTRY_BACKEND = 'cpu';
    expect((await initBackend({ log: () => {} })).name).toBe('cpu');
  });

  it('auto picks wasm here (tfjs-node has no native library) with the gradient kernels registered', async () => {
    delete process.env.GANTRY_BACKEND;
    const lines: string[] = [];
    const info = await initBackend({ log: (l) => lines.push(l) });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toEqual([`backend: wasm (${info.detail})`]);
    expect(info.detail).toMatch(
      /^WebAssembly( SIMD)?, \d+ threads?, Gantry gradient kernels; (convolutions, matmuls, norms and elementwise ops on oneDNN [\d.]+ \(native, \d+ threads?\)|no native kernels \(.+\))$/,
    );
    // The native kernels are built wherever g++ and libdnnl-dev are (CI installs them): say so if they are not.
    if (process.env.CI && !/oneDNN/.test(info.detail)) throw new Error(`CI without native kernels: ${info.detail}`);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    // concurrent and repeated calls share one initialisation
    const [a, b] = await Promise.all([initBackend({ log: (l) => lines.push(l) }), initBackend({ backend: 'auto' })]);
    expect(a).toBe(info);
    expect(b).toBe(info);
    expect(lines).toHaveLength(1);
    // a tiny embedding gradient runs on wasm
    const g = tf.grad((t) => tf.sum(tf.gather(t, tf.tensor1d([0, 2, 2], 'int32'))))(tf.ones([3, 2]));
    expect(Array.from(g.dataSync())).toEqual([1, 1, 0, 0, 2, 2]);
  });
});

describe('GANTRY_THREADS', () => {
  it('defaults to every core available to the process; takes a positive integer or all; anything else is a GantryError', () => {
    const all = os.availableParallelism();
    expect(nativeThreadCount('')).toBe(all);
    expect(nativeThreadCount('all')).toBe(all);
    expect(nativeThreadCount(' 3 ')).toBe(3);
    for (const bad of ['0', '-2', '1.5', 'two', '4x']) {
      expect(() => nativeThreadCount(bad), bad).toThrow(GantryError);
      expect(() => nativeThreadCount(bad), bad).toThrow(`GANTRY_THREADS=${bad}: expected a positive integer or 'all'`);
    }
  });
});
