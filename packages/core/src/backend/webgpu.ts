/**
 * TF.js's WebGPU backend in Node, through Dawn (the npm package `webgpu`): Vulkan on Linux, Metal on macOS, D3D12 on
 * Windows. What TF.js 4.22 lacks in Node and this module supplies:
 *
 *  - `@tensorflow/tfjs-backend-webgpu` registers its backend only if `navigator.gpu` exists when it is imported;
 *    here the adapter is picked first (a hardware one, or SwiftShader when WebGPU was asked for by name) and the
 *    backend is registered with a device on it.
 *  - `dataSync()` reads through OffscreenCanvas, which Node lacks: a synchronous read of a tensor on the GPU throws a
 *    one-line error naming `await tensor.data()` instead of a TypeError from inside TF.js.
 *
 * SwiftShader (a CPU implementation of Vulkan that Chromium ships) gives an adapter on any Linux machine: slow, but
 * it runs the same kernels, so CI checks the WebGPU path with it. It is used only when asked for (`--backend webgpu`
 * with no hardware adapter, or `useSwiftShader()` as the tests do), never by automatic selection.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { fieldsOf } from './kernel-glue.js';

/** Where Chromium's packages put SwiftShader's Vulkan driver manifest (Debian/Ubuntu chromium, Google Chrome). */
const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

/** The directories the Vulkan loader reads driver manifests (ICD JSON files) from on Linux. */
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/i;

/** SwiftShader's Vulkan manifest on this machine (env GANTRY_SWIFTSHADER_ICD first), or undefined. */
export function swiftShaderIcd(): string | undefined {
  const own = process.env.GANTRY_SWIFTSHADER_ICD;
  if (own) return existsSync(own) ? own : undefined;
  return SWIFTSHADER_ICDS.find((p) => existsSync(p));
}

/**
 * Points the Vulkan loader at SwiftShader only (VK_ICD_FILENAMES), and sets XDG_RUNTIME_DIR where it is unset (Dawn
 * needs it). Returns the manifest used, or undefined when SwiftShader is not installed (nothing is changed then).
 * Takes effect for adapters requested after the call.
 */
export function useSwiftShader(): string | undefined {
  const icd = swiftShaderIcd();
  if (!icd) return undefined;
  process.env.VK_ICD_FILENAMES = icd;
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `gantry-xdg-${process.getuid?.() ?? 'user'}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  return icd;
}

/** Whether the Vulkan loader (libvulkan.so.1) is installed where the dynamic linker looks (Linux only). */
function vulkanLoaderPresent(): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/lib/x86_64-linux-gnu',
    '/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib64',
    '/usr/local/lib',
  ];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** The Vulkan driver manifests the loader would read (its environment variables first), as paths. */
function vulkanIcds(): string[] {
  const fromEnv = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  if (fromEnv) return fromEnv.split(delimiter).filter(Boolean);
  return ICD_DIRS.flatMap((d) => {
    try {
      return readdirSync(d)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(d, f));
    } catch {
      return [];
    }
  });
}

/** A hardware (not software-rendering) Vulkan driver manifest whose library is named in it. */
function hardwareIcds(): string[] {
  return vulkanIcds().filter((p) => {
    if (SOFTWARE.test(p)) return false;
    try {
      return !SOFTWARE.test(String(JSON.parse(readFileSync(p, 'utf8'))?.ICD?.library_path ?? ''));
    } catch {
      return false;
    }
  });
}

export interface WebGPUAdapterFacts {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** SwiftShader, llvmpipe or another CPU implementation. */
  software: boolean;
}

type Result = { ok: true; detail: string; adapter: WebGPUAdapterFacts } | { ok: false; why: string };

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: DawnModule | undefined;
let started: WebGPUAdapterFacts | undefined;
/**
 * Dawn's instance and adapter of the running backend. They must stay reachable: dawn.node frees its instance when
 * the JS object is collected while the device still polls it, and the process then aborts inside Dawn
 * (std::system_error from InstanceBase::ProcessEvents, or a futex error).
 */
const alive: { gpu?: GPU; adapter?: GPUAdapter; device?: GPUDevice } = {};

async function loadDawn(): Promise<DawnModule | string> {
  if (dawn) return dawn;
  try {
    dawn = fieldsOf<DawnModule>(await import('webgpu'));
    // Dawn's classes (GPUBufferUsage, GPUShaderStage, …) are globals in a browser; TF.js's kernels read them there.
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
    return dawn;
  } catch (e) {
    return `the npm package webgpu (Dawn) did not load: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
  }
}

function factsOf(adapter: GPUAdapter): WebGPUAdapterFacts {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor || 'unknown vendor',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || SOFTWARE.test(text),
  };
}

/** "vendor device (driver)" for the start-up line. */
export function describeAdapter(a: WebGPUAdapterFacts): string {
  const device = [a.architecture, a.device].filter(Boolean).join(' ') || 'unknown device';
  return `${a.vendor} ${device}, driver: ${a.description || 'not reported'}`;
}

async function requestAdapter(gpu: GPU): Promise<GPUAdapter | null> {
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter) Object.assign(alive, { gpu, adapter });
    return adapter;
  } catch {
    return null;
  }
}

/** What is missing for an adapter on this machine, as the end of a one-line error. */
function missing(allowSoftware: boolean): string {
  if (process.platform === 'linux') {
    if (!vulkanLoaderPresent())
      return 'no WebGPU adapter: the Vulkan loader libvulkan.so.1 is not installed (Debian/Ubuntu: apt install libvulkan1; see docs/backend.md)';
    const icds = vulkanIcds();
    if (icds.length === 0)
      return `no WebGPU adapter: no Vulkan driver is installed (no ICD file in ${ICD_DIRS.join(', ')}); install the GPU's Vulkan driver (docs/backend.md)${allowSoftware ? ', or Chromium for its SwiftShader' : ''}`;
    return `no WebGPU adapter: the Vulkan driver${icds.length > 1 ? 's' : ''} ${icds.join(', ')} found no usable GPU (docs/backend.md)`;
  }
  return `no WebGPU adapter on this ${process.platform} machine (docs/backend.md)`;
}

/** The limits TF.js's own backend factory asks for: the adapter's, where TF.js's kernels need more than the default. */
function deviceDescriptor(adapter: GPUAdapter): GPUDeviceDescriptor {
  const l = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  return {
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  };
}

/** In Node a synchronous read of a GPU tensor cannot work (TF.js reads through OffscreenCanvas): say so plainly. */
function guardReadSync(backend: WebGPUBackend): void {
  if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') return;
  const original = backend.readSync.bind(backend);
  backend.readSync = (dataId: object) => {
    const stored = backend.tensorMap.get(dataId);
    if (stored?.values != null || stored?.dtype === 'string') return original(dataId);
    throw new Error(
      'dataSync()/arraySync() cannot read a tensor on the webgpu backend in Node (no OffscreenCanvas): use await tensor.data()',
    );
  };
}

/**
 * Starts TF.js's WebGPU backend on the best adapter: a hardware one; else, with `allowSoftware`, SwiftShader (when
 * installed). On failure nothing is registered and the reason names what is missing.
 */
export async function initWebGPU(allowSoftware: boolean): Promise<Result> {
  if (started && tf.findBackend('webgpu')) {
    if (!started.software || allowSoftware) return startedResult(started);
    return { ok: false, why: `only a software adapter (${describeAdapter(started)}); automatic selection skips it` };
  }
  // Automatic selection on Linux probes only where a hardware Vulkan driver is installed: otherwise Dawn prints its
  // own warnings, and the only adapter it could find is a CPU one.
  if (!allowSoftware && process.platform === 'linux' && (!vulkanLoaderPresent() || hardwareIcds().length === 0)) {
    return { ok: false, why: missing(false) };
  }
  const mod = await loadDawn();
  if (typeof mod === 'string') return { ok: false, why: mod };
  // Where Linux has no hardware Vulkan driver there is nothing to probe but SwiftShader (and Dawn would print
  // "found no drivers" warnings first).
  const probeHardware = process.platform !== 'linux' || hardwareIcds().length > 0;
  let adapter = probeHardware ? await requestAdapter(mod.create([])) : null;
  if (adapter && factsOf(adapter).software && !allowSoftware) adapter = null;
  if (!adapter && allowSoftware && process.platform === 'linux' && vulkanLoaderPresent()) {
    const saved = process.env.VK_ICD_FILENAMES;
    if (useSwiftShader()) {
      adapter = await requestAdapter(mod.create([]));
      if (!adapter) {
        if (saved == null) delete process.env.VK_ICD_FILENAMES;
        else process.env.VK_ICD_FILENAMES = saved;
      }
    }
  }
  if (!adapter) return { ok: false, why: missing(allowSoftware) };
  const facts = factsOf(adapter);
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice(deviceDescriptor(adapter));
  } catch (e) {
    return { ok: false, why: `${describeAdapter(facts)}: no device: ${String((e as Error)?.message ?? e)}` };
  }
  alive.device = device;
  // WebGPUBackend's constructor checks navigator.gpu; TF.js's kernels never read it again.
  const nav = ((globalThis as { navigator?: object }).navigator ?? {}) as { gpu?: unknown };
  if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: alive.gpu, configurable: true });
  if (!(globalThis as { navigator?: object }).navigator)
    Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true });
  const backend = new WebGPUBackend(device, adapter.info);
  guardReadSync(backend);
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => backend, 0);
  started = facts;
  return startedResult(facts);
}

function startedResult(facts: WebGPUAdapterFacts): Result {
  return {
    ok: true,
    adapter: facts,
    detail: `${describeAdapter(facts)}; Dawn via the npm package webgpu${facts.software ? '; a CPU implementation of Vulkan: slow, for tests' : ''}`,
  };
}

/** The adapter WebGPU runs on (after initWebGPU succeeded). */
export function webgpuAdapter(): WebGPUAdapterFacts | undefined {
  return started;
}
