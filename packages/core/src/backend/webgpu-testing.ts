/**
 * For tests: a WebGPU backend on this machine, SwiftShader (Chromium's CPU implementation of Vulkan) where there is
 * no GPU, so CI checks the WebGPU path on any Linux machine with chromium and libvulkan1 installed (.ci/run). Not part
 * of the public API.
 */
import * as tf from '@tensorflow/tfjs';
import { registerGradientFixes } from './gradients.js';
import { describeAdapter, initWebGPU, useSwiftShader } from './webgpu.js';

export type WebGPUForTests = { ok: true; adapter: string } | { ok: false; reason: string };

let ready: Promise<WebGPUForTests> | undefined;

/**
 * Registers TF.js's WebGPU backend (as 'webgpu') and the cpu backend, leaving cpu current; or says why WebGPU cannot
 * run here (the caller skips its tests and prints the reason). VK_ICD_FILENAMES is pointed at SwiftShader unless the
 * environment sets it (GANTRY_TEST_GPU=1 keeps the machine's own drivers, to run these tests on a real GPU).
 */
export function webgpuForTests(): Promise<WebGPUForTests> {
  ready ??= (async (): Promise<WebGPUForTests> => {
    registerGradientFixes();
    if (!process.env.VK_ICD_FILENAMES && process.env.GANTRY_TEST_GPU !== '1') useSwiftShader();
    const r = await initWebGPU(true);
    if (!r.ok) return { ok: false, reason: `WebGPU tests skipped: ${r.why}` };
    if (!(await tf.setBackend('webgpu')))
      return { ok: false, reason: 'WebGPU tests skipped: the backend did not start' };
    await tf.setBackend('cpu');
    return { ok: true, adapter: describeAdapter(r.adapter) };
  })();
  return ready;
}

/** `f` run on `backend`; tensors it returns are read back (asynchronously: WebGPU in Node has no sync read). */
export async function runOn(backend: 'cpu' | 'webgpu', f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const values = await Promise.all(list.map(async (t) => Float32Array.from(await t.data())));
  tf.dispose(list);
  return values;
}

/** max|a − b| / max(max|b|, 1e-6): the relative error of `a` against the reference `b`. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return a.length === b.length ? diff / scale : Number.POSITIVE_INFINITY;
}
