/**
 * Compute backend selection for Gantry: the fastest TF.js backend that works here, in the order
 * tfjs-node-gpu, WebGPU on a hardware adapter, tfjs-node, WebAssembly (with Gantry's gradient kernels), pure-JS cpu
 * (BACKEND_ORDER, shown by --help and docs/backend.md).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { GantryError } from '../errors.js';
import { registerGradientFixes } from './gradients.js';
import { registerNativeKernels } from './native-kernels.js';
import { registerWasmKernels } from './wasm-kernels.js';
import { initWebGPU } from './webgpu.js';

export { batchNormTraining, instanceNorm, instanceNormComposed, minibatchStddev } from './fused-ops.js';
export { mirrorPadGrad, registerGradientFixes } from './gradients.js';
export {
  broadcastPlan,
  type NativeKernelsInfo,
  nativeStats,
  nativeThreadCount,
  registerNativeKernels,
  setNativeEnabled,
  setNativeThreads,
} from './native-kernels.js';
export {
  conv2DBackpropFilterImpl,
  conv2DBackpropInputImpl,
  REPLACED_WASM_KERNELS,
  registerWasmKernels,
  SUPPLIED_WASM_KERNELS,
  unsortedSegmentSumImpl,
  type WasmKernelOptions,
} from './wasm-kernels.js';

export {
  describeAdapter,
  swiftShaderIcd,
  useSwiftShader,
  type WebGPUAdapterFacts,
  webgpuAdapter,
} from './webgpu.js';

export type BackendName = 'node-gpu' | 'webgpu' | 'node' | 'wasm' | 'cpu';
/** Automatic selection's order: the first that starts here runs. */
export const BACKEND_NAMES: readonly BackendName[] = ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu'];
/** The order in words, for --help and the docs. */
export const BACKEND_ORDER =
  'node-gpu (tfjs-node-gpu, CUDA 11.2), webgpu (a hardware GPU adapter; SwiftShader only when asked for by name), node (tfjs-node), wasm, cpu';

export interface BackendInfo {
  name: BackendName;
  detail: string;
}

export interface InitBackendOptions {
  /** Force a backend (else env GANTRY_BACKEND, else the fastest that works). 'auto' = pick. */
  backend?: string;
  /** Where the one-line report goes (default console.error). */
  log?: (line: string) => void;
}

const require = createRequire(import.meta.url);

const NODE_PACKAGES = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
} as const;

/** Result of the one guarded require per package (a second require re-registers kernels noisily). */
const nodeLoad = new Map<'node-gpu' | 'node', { ok: boolean; why: string }>();

function nativeBindingPresent(pkg: string): boolean {
  try {
    const root = dirname(require.resolve(`${pkg}/package.json`));
    const lib = join(root, 'lib');
    return existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, 'tfjs_binding.node')));
  } catch {
    return false;
  }
}

function loadNode(which: 'node-gpu' | 'node'): { ok: boolean; why: string } {
  const known = nodeLoad.get(which);
  if (known) return known;
  const pkg = NODE_PACKAGES[which];
  let result: { ok: boolean; why: string };
  if (!nativeBindingPresent(pkg)) {
    // Not installed, or installed without its install script: requiring it would only register its
    // kernels and then throw, so don't.
    result = { ok: false, why: 'not installed or native library missing' };
  } else {
    // Its kernels may already be registered by the other tfjs-node flavour: mute those warnings.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (!/already registered/.test(String(args[0]))) warn(...args);
    };
    try {
      require(pkg);
      result = {
        ok: tf.findBackend('tensorflow') != null || tf.findBackendFactory('tensorflow') != null,
        why: '',
      };
      if (!result.ok) result.why = 'it loaded but registered no "tensorflow" backend';
    } catch (e) {
      result = {
        ok: false,
        why: String((e as Error)?.message ?? e).split('\n')[0]!,
      };
    } finally {
      console.warn = warn;
    }
  }
  nodeLoad.set(which, result);
  return result;
}

async function trySetBackend(tfName: string): Promise<boolean> {
  try {
    return await tf.setBackend(tfName);
  } catch {
    return false;
  }
}

async function tryInit(
  name: BackendName,
  forced: boolean,
): Promise<{ ok: true; detail: string } | { ok: false; why: string }> {
  switch (name) {
    case 'webgpu': {
      const r = await initWebGPU(forced);
      if (!r.ok) return r;
      if (!(await trySetBackend('webgpu'))) return { ok: false, why: 'the TF.js WebGPU backend failed to start' };
      return { ok: true, detail: r.detail };
    }
    case 'node-gpu':
    case 'node': {
      const pkg = NODE_PACKAGES[name];
      const loaded = loadNode(name);
      if (!loaded.ok) {
        return {
          ok: false,
          why: `${pkg} is not installed or its native library is missing (see README: enabling tfjs-node)`,
        };
      }
      if (!(await trySetBackend('tensorflow'))) {
        return {
          ok: false,
          why: `${pkg} loaded but its TensorFlow backend failed to start`,
        };
      }
      return {
        ok: true,
        detail:
          name === 'node-gpu'
            ? 'TensorFlow C library with CUDA, via tfjs-node-gpu'
            : 'TensorFlow C library, via tfjs-node',
      };
    }
    case 'wasm': {
      registerWasmKernels(); // before setBackend('wasm'): replacements keep the original setupFunc
      const native = registerNativeKernels(); // wraps the kernels above; they remain its fallback
      if (!(await trySetBackend('wasm'))) {
        return {
          ok: false,
          why: '@tensorflow/tfjs-backend-wasm failed to start (WebAssembly module did not load)',
        };
      }
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      let threads = 1;
      try {
        threads = getThreadsCount();
      } catch {}
      return {
        ok: true,
        detail:
          `WebAssembly${simd ? ' SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'}, Gantry gradient kernels` +
          (native.version
            ? `; convolutions, matmuls, norms and elementwise ops on ${native.version} (native, ${native.threads} thread${native.threads === 1 ? '' : 's'})`
            : `; no native kernels (${native.why})`),
      };
    }
    case 'cpu': {
      if (!(await trySetBackend('cpu'))) return { ok: false, why: 'the pure-JS cpu backend failed to start' };
      // Silence TF.js's one-time "install tfjs-node" banner; the log line says which backend runs.
      const b = tf.backend() as { firstUse?: boolean };
      if (typeof b.firstUse === 'boolean') b.firstUse = false;
      return {
        ok: true,
        detail: 'pure JavaScript, slow: tests and tiny models only',
      };
    }
  }
}

let current: { request: string; info: BackendInfo } | undefined;
let pending: { request: string; promise: Promise<BackendInfo> } | undefined;

/**
 * Picks and starts the compute backend. `opts.backend` (or env GANTRY_BACKEND) forces one of
 * node-gpu | webgpu | node | wasm | cpu ('auto' or unset = the first of BACKEND_NAMES that works). A forced backend that cannot
 * start, or an unknown name, throws GantryError. Safe to call repeatedly: the same request returns the
 * same result without re-initialising.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const fromOpt = opts.backend != null && opts.backend.trim() !== '';
  const raw = (fromOpt ? opts.backend! : (process.env.GANTRY_BACKEND ?? '')).trim();
  const request = raw === '' ? 'auto' : raw.toLowerCase();
  const source = fromOpt ? '--backend' : 'GANTRY_BACKEND=';
  const label = (n: string) => (fromOpt ? `${source} ${n}` : `${source}${n}`);
  if (request !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(request)) {
    throw new GantryError(`${label(raw)}: unknown backend; expected one of auto, ${BACKEND_NAMES.join(', ')}`);
  }
  if (current && current.request === request && tf.getBackend() === tfBackendName(current.info.name)) {
    return current.info;
  }
  if (pending && pending.request === request) return pending.promise;
  const promise = (async (): Promise<BackendInfo> => {
    await (pending?.promise.catch(() => undefined) ?? Promise.resolve());
    registerGradientFixes();
    let info: BackendInfo | undefined;
    if (request === 'auto') {
      for (const name of BACKEND_NAMES) {
        const r = await tryInit(name, false);
        if (r.ok) {
          info = { name, detail: r.detail };
          break;
        }
      }
      if (!info) throw new GantryError(`no TF.js backend could be started (tried ${BACKEND_NAMES.join(', ')})`);
    } else {
      const name = request as BackendName;
      const r = await tryInit(name, true);
      if (!r.ok) throw new GantryError(`${label(name)}: ${r.why}`);
      info = { name, detail: r.detail };
    }
    current = { request, info };
    (opts.log ?? ((line: string) => console.error(line)))(`backend: ${info.name} (${info.detail})`);
    return info;
  })();
  pending = { request, promise };
  try {
    return await promise;
  } finally {
    if (pending?.promise === promise) pending = undefined;
  }
}

function tfBackendName(name: BackendName): string {
  return name === 'node' || name === 'node-gpu' ? 'tensorflow' : name;
}
