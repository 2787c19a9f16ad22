/**
 * From a PyTorch state dict of the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix,
 * models/networks.py) to Gantry's networks: the architecture from the keys and shapes (or the reference's test
 * flags), the reference's load_networks quirks, a strict key check like PyTorch's `load_state_dict(strict=True)`,
 * shape checks, and the weights copied into the TF.js layers in NHWC layout.
 *
 * Key names (see docs/torch-import.md): the U-Net nests UnetSkipConnectionBlocks, each a `model` Sequential —
 * outermost `model.model.{0 downconv, 1 submodule, 3 upconv}`, middle blocks `….model.{1 downconv, 2 downnorm,
 * 3 submodule, 5 upconv, 6 upnorm}`, innermost `….model.{1 downconv, 3 upconv, 4 upnorm}`; the ResNet generator is
 * one flat `model` Sequential whose residual blocks are `model.N.conv_block.{1,2,5,6}` (`{1,2,6,7}` with
 * dropout); the PatchGAN is `model.{0, 2, 3, 5, 6, 8, 9, 11}`.
 */
import * as tf from '@tensorflow/tfjs';
import { type Norm, patchDiscriminator, resnetGenerator, unetGenerator, withoutRandomInit } from '../nn/networks.js';
import { keyName, type TorchTensor } from './reader.js';

export type TorchArch =
  | {
      kind: 'unet';
      netG: string;
      numDowns: number;
      ngf: number;
      norm: Norm;
      dropout: boolean;
      inChannels: number;
      outChannels: number;
    }
  | {
      kind: 'resnet';
      netG: string;
      blocks: number;
      ngf: number;
      norm: Norm;
      dropout: boolean;
      inChannels: number;
      outChannels: number;
    }
  | { kind: 'patchgan'; ndf: number; nLayers: number; norm: Norm; inChannels: number };

/** The reference's test flags that state an architecture (undefined: inferred from the file). */
export interface ArchFlags {
  netG?: string;
  ngf?: number;
  norm?: Norm;
  dropout?: boolean;
  inputNc?: number;
  outputNc?: number;
  /** Dropout of a U-Net when the flag is not given (the reference: on for pix2pix, off for CycleGAN). */
  unetDropoutDefault?: boolean;
}

/** Architecture names the reference's define_G knows and Gantry builds. */
export const TORCH_NET_G = ['unet_256', 'unet_128', 'resnet_9blocks', 'resnet_6blocks'] as const;

/** A failure tied to the state dict's content (the caller names the file). */
export class StateDictError extends Error {}

interface Slot {
  /** Module path in the state dict, e.g. 'model.model.1.model.1'. */
  key: string;
  kind: 'conv' | 'deconv' | 'bn' | 'in';
  bias: boolean;
  /** Channels in and out, and the kernel size (convolutions); norms have `out` only. */
  in: number;
  out: number;
  k: number;
}

/** The weighted (and instance-norm) modules of an architecture, in the order Gantry's builder creates its layers. */
export function archSlots(a: TorchArch): Slot[] {
  const normKind = (): Slot['kind'] => (a.norm === 'batch' ? 'bn' : 'in');
  const useBias = a.norm === 'instance';
  const s: Slot[] = [];
  const conv = (key: string, i: number, o: number, k: number, bias = useBias) =>
    s.push({ key, kind: 'conv', bias, in: i, out: o, k });
  const deconv = (key: string, i: number, o: number, k: number, bias = useBias) =>
    s.push({ key, kind: 'deconv', bias, in: i, out: o, k });
  const norm = (key: string, c: number) => s.push({ key, kind: normKind(), bias: true, in: c, out: c, k: 0 });
  if (a.kind === 'unet') {
    const n = a.numDowns;
    // The reference's UnetGenerator: block d (1 = below the outermost) maps ngf·min(2^(d-1), 8) channels to
    // ngf·min(2^d, 8) on the way down.
    const width = (d: number) => a.ngf * Math.min(2 ** d, 8);
    const path = [`model.model`];
    for (let d = 1; d < n; d++) path.push(d === 1 ? 'model.model.1' : `${path[d - 1]}.model.3`);
    conv(`${path[0]}.0`, a.inChannels, a.ngf, 4);
    for (let d = 1; d < n; d++) {
      conv(`${path[d]}.model.1`, width(d - 1), width(d), 4);
      if (d < n - 1) norm(`${path[d]}.model.2`, width(d));
    }
    for (let d = n - 1; d >= 1; d--) {
      const innermost = d === n - 1;
      deconv(`${path[d]}.model.${innermost ? 3 : 5}`, innermost ? width(d) : 2 * width(d), width(d - 1), 4);
      norm(`${path[d]}.model.${innermost ? 4 : 6}`, width(d - 1));
    }
    deconv(`${path[0]}.3`, 2 * a.ngf, a.outChannels, 4, true);
  } else if (a.kind === 'resnet') {
    const f = a.ngf;
    conv('model.1', a.inChannels, f, 7);
    norm('model.2', f);
    conv('model.4', f, 2 * f, 3);
    norm('model.5', 2 * f);
    conv('model.7', 2 * f, 4 * f, 3);
    norm('model.8', 4 * f);
    const second = a.dropout ? 6 : 5;
    for (let b = 0; b < a.blocks; b++) {
      const p = `model.${10 + b}.conv_block`;
      conv(`${p}.1`, 4 * f, 4 * f, 3);
      norm(`${p}.2`, 4 * f);
      conv(`${p}.${second}`, 4 * f, 4 * f, 3);
      norm(`${p}.${second + 1}`, 4 * f);
    }
    const j = 10 + a.blocks;
    deconv(`model.${j}`, 4 * f, 2 * f, 3);
    norm(`model.${j + 1}`, 2 * f);
    deconv(`model.${j + 3}`, 2 * f, f, 3);
    norm(`model.${j + 4}`, f);
    conv(`model.${j + 7}`, f, a.outChannels, 7, true);
  } else {
    const width = (n: number) => a.ndf * Math.min(2 ** n, 8);
    let i = 0;
    conv(`model.${i}`, a.inChannels, a.ndf, 4, true);
    i += 2;
    for (let n = 1; n <= a.nLayers; n++) {
      conv(`model.${i}`, width(n - 1), width(n), 4);
      norm(`model.${i + 1}`, width(n));
      i += 3;
    }
    conv(`model.${i}`, width(a.nLayers), 1, 4, true);
  }
  return s;
}

/** The PyTorch shape of each parameter of a slot, by its name (weight, bias, running_mean, running_var). */
function slotShapes(slot: Slot): Map<string, number[]> {
  if (slot.kind === 'bn' || slot.kind === 'in') return new Map(BN_KEYS.map((n) => [n, [slot.out]]));
  const weight = slot.kind === 'conv' ? [slot.out, slot.in, slot.k, slot.k] : [slot.in, slot.out, slot.k, slot.k];
  return new Map([
    ['weight', weight],
    ['bias', [slot.out]],
  ]);
}

const BN_KEYS = ['weight', 'bias', 'running_mean', 'running_var'];

/** Parameter names the architecture expects, in builder order (num_batches_tracked is optional and unused). */
function expectedKeys(slots: Slot[]): string[] {
  return slots.flatMap((s) =>
    s.kind === 'in'
      ? []
      : s.kind === 'bn'
        ? BN_KEYS.map((k) => `${s.key}.${k}`)
        : [`${s.key}.weight`, ...(s.bias ? [`${s.key}.bias`] : [])],
  );
}

/** Removes `module.` prefixes (DataParallel) from every key, as loading into the unwrapped network needs. */
export function stripModulePrefix(sd: Map<string, TorchTensor>): Map<string, TorchTensor> {
  return new Map([...sd].map(([k, v]) => [k.replace(/^(module\.)+/, ''), v]));
}

/** 'unet_256 (ngf 64, batch norm, 3→3 channels)': what an import found, for messages. */
export function describeArch(a: TorchArch): string {
  if (a.kind === 'patchgan') return `PatchGAN (${a.nLayers} layers, ndf ${a.ndf}, ${a.norm} norm)`;
  return `${a.netG} (ngf ${a.ngf}, ${a.norm} norm${a.kind === 'resnet' && a.dropout ? ', dropout' : ''}, ${a.inChannels}→${a.outChannels} channels)`;
}

/**
 * The generator architecture of a state dict (keys already stripped of `module.`), each part overridable by a
 * flag. What cannot be told from the file and is not given is an error naming the flag.
 */
export function inferArch(sd: Map<string, TorchTensor>, flags: ArchFlags = {}): TorchArch {
  const has = (k: string) => sd.has(k);
  const shape = (k: string) => sd.get(k)?.shape;
  let kind: 'unet' | 'resnet' | undefined;
  if (flags.netG !== undefined) {
    if (!(TORCH_NET_G as readonly string[]).includes(flags.netG))
      throw new StateDictError(`--netG ${flags.netG}: expected one of ${TORCH_NET_G.join(', ')}`);
    kind = flags.netG.startsWith('unet') ? 'unet' : 'resnet';
  } else if (has('model.model.0.weight')) kind = 'unet';
  else if ([...sd.keys()].some((k) => /^model\.\d+\.conv_block\./.test(k))) kind = 'resnet';
  if (!kind) {
    const sample = [...sd.keys()].slice(0, 3).map(keyName).join(', ');
    throw new StateDictError(
      `unknown architecture: keys such as ${sample} are neither the reference's U-Net (model.model.…) nor its ResNet generator (model.N.conv_block.…); pass --netG if it is one of ${TORCH_NET_G.join(', ')}`,
    );
  }
  const firstKey = kind === 'unet' ? 'model.model.0.weight' : 'model.1.weight';
  const first = shape(firstKey);
  // What the file does not tell takes the reference's defaults (ngf 64, 3 channels): the strict key check that
  // follows then names what is missing, as loading into the reference's default network would. A flag's value is
  // checked as the flag's, a file's as the file's (naming the tensor).
  const need = (
    flag: number | undefined,
    file: { key: string; dim: number } | undefined,
    name: string,
    what: string,
    fallback: number,
  ): number => {
    if (flag !== undefined) {
      if (!Number.isInteger(flag) || flag < 1) throw new StateDictError(`${name} ${flag}: expected a positive integer`);
      return flag;
    }
    const s = file ? shape(file.key) : undefined;
    if (!file || s?.length !== 4) return fallback;
    const v = s[file.dim]!;
    if (v < 1) throw new StateDictError(`${file.key}: shape [${s.join(', ')}] in the file gives ${v} ${what}`);
    return v;
  };
  const ngf = need(flags.ngf, first && { key: firstKey, dim: 0 }, '--ngf', 'filters', 64);
  const inChannels = need(flags.inputNc, first && { key: firstKey, dim: 1 }, '--input-nc', 'input channels', 3);
  if (kind === 'unet') {
    let numDowns: number | undefined;
    if (flags.netG) numDowns = flags.netG === 'unet_256' ? 8 : 7;
    else {
      // The innermost block is the one whose model.3 is a (transposed conv) tensor rather than a submodule.
      let p = 'model.model.1';
      for (let d = 1; d < 12; d++) {
        if (has(`${p}.model.3.weight`)) {
          numDowns = d + 1;
          break;
        }
        p = `${p}.model.3`;
      }
      if (numDowns === undefined || numDowns < 5)
        throw new StateDictError(
          "cannot find the U-Net's innermost block (model.model.1.model.3….model.3.weight); pass --netG",
        );
    }
    const batch = has('model.model.1.model.2.weight');
    const norm: Norm = flags.norm ?? (batch ? 'batch' : 'instance');
    const outChannels = need(
      flags.outputNc,
      { key: 'model.model.3.weight', dim: 1 },
      '--output-nc',
      'output channels',
      3,
    );
    const netG = `unet_${2 ** numDowns}`;
    return {
      kind,
      netG,
      numDowns,
      ngf,
      norm,
      dropout: flags.dropout ?? flags.unetDropoutDefault ?? true,
      inChannels,
      outChannels,
    };
  }
  let blocks = 0;
  if (flags.netG) blocks = flags.netG === 'resnet_9blocks' ? 9 : 6;
  else {
    // One pass over the keys (a loop over them per block would be quadratic in a hostile file's key count).
    const present = new Set<number>();
    for (const k of sd.keys()) {
      const m = /^model\.(\d+)\.conv_block\./.exec(k);
      if (m) present.add(Number(m[1]));
    }
    while (present.has(10 + blocks)) blocks++;
  }
  const norm: Norm = flags.norm ?? (has('model.2.weight') ? 'batch' : 'instance');
  // With dropout the second conv moves from conv_block.5 to .6 (where batch norm would otherwise have its weight).
  const dropout = flags.dropout ?? shape('model.10.conv_block.6.weight')?.length === 4;
  const outChannels = need(
    flags.outputNc,
    { key: `model.${10 + blocks + 7}.weight`, dim: 0 },
    '--output-nc',
    'output channels',
    3,
  );
  return { kind, netG: `resnet_${blocks}blocks`, blocks, ngf, norm, dropout, inChannels, outChannels };
}

/** Gantry's network for an architecture (input [null, null, C]: any size that is a multiple of its stride). */
export function buildTorchNetwork(a: TorchArch, name?: string): tf.LayersModel {
  if (a.kind === 'unet') {
    const size = 2 ** a.numDowns;
    return unetGenerator({
      size,
      inChannels: a.inChannels,
      outChannels: a.outChannels,
      numDowns: a.numDowns,
      ngf: a.ngf,
      norm: a.norm,
      dropout: a.dropout,
      name,
    });
  }
  if (a.kind === 'resnet') {
    return resnetGenerator({
      size: 256,
      inChannels: a.inChannels,
      outChannels: a.outChannels,
      ngf: a.ngf,
      blocks: a.blocks,
      norm: a.norm,
      dropout: a.dropout,
      name,
    });
  }
  return patchDiscriminator({ size: 256, inChannels: a.inChannels, ndf: a.ndf, layers: a.nLayers, norm: a.norm, name });
}

const list = (keys: string[]) =>
  keys.length > 4
    ? `${keys.slice(0, 4).map(keyName).join(', ')} and ${keys.length - 4} more`
    : keys.map(keyName).join(', ');

/**
 * Checks a state dict (keys stripped of `module.`) against an architecture as PyTorch's strict load does, after
 * the reference's load_networks quirks: instance-norm running statistics and every num_batches_tracked (not
 * used at inference; missing in files older than PyTorch 0.4.1) are dropped. Then shapes, then values (NaN,
 * infinities, negative running variances). Returns the tensors in builder order.
 */
export function checkStateDict(sd: Map<string, TorchTensor>, a: TorchArch): { slot: Slot; tensors: TorchTensor[] }[] {
  const slots = archSlots(a);
  const droppable = new Set<string>();
  for (const s of slots) {
    droppable.add(`${s.key}.num_batches_tracked`);
    if (s.kind === 'in') for (const k of ['running_mean', 'running_var']) droppable.add(`${s.key}.${k}`);
  }
  const expected = expectedKeys(slots);
  const want = new Set(expected);
  const missing = expected.filter((k) => !sd.has(k));
  const unexpected = [...sd.keys()].filter((k) => !want.has(k) && !droppable.has(k));
  if (missing.length || unexpected.length) {
    const parts = [
      missing.length ? `missing keys ${list(missing)}` : '',
      unexpected.length ? `unexpected keys ${list(unexpected)}` : '',
    ].filter(Boolean);
    throw new StateDictError(`does not fit ${describeArch(a)}: ${parts.join('; ')}`);
  }
  // Every shape against the architecture before anything is built at the width the file declares.
  const weighted = slots.filter((s) => s.kind !== 'in');
  const names = (slot: Slot) => (slot.kind === 'bn' ? BN_KEYS : ['weight', ...(slot.bias ? ['bias'] : [])]);
  for (const slot of weighted) {
    const shapes = slotShapes(slot);
    for (const n of names(slot)) {
      const key = `${slot.key}.${n}`;
      const have = sd.get(key)!.shape;
      const want = shapes.get(n)!;
      if (fmt(have) !== fmt(want))
        throw new StateDictError(`${key}: shape ${fmt(have)} in the file, ${fmt(want)} expected by ${describeArch(a)}`);
    }
  }
  return weighted.map((slot) => {
    const tensors = names(slot).map((n) => {
      const key = `${slot.key}.${n}`;
      const t = sd.get(key)!;
      if (!t.data) throw new StateDictError(`${key}: an ${t.dtype} tensor, expected floating point`);
      const d = t.data;
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i]!)) throw new StateDictError(`${key}: contains NaN or infinite values`);
        if (n === 'running_var' && d[i]! < 0) throw new StateDictError(`${key}: a negative running variance`);
      }
      return t;
    });
    return { slot, tensors };
  });
}

const fmt = (s: readonly (number | null)[]) => `[${s.join(', ')}]`;

/** PyTorch's layout of a Gantry weight: conv kernels [kh, kw, in, out] ↔ [out, in, kh, kw]; transposed [kh, kw, out, in] ↔ [in, out, kh, kw]. */
function torchShape(shape: number[]): number[] {
  return shape.length === 4 ? [shape[3]!, shape[2]!, shape[0]!, shape[1]!] : shape;
}

/** Copies checked tensors into `model` (built by `buildTorchNetwork` for the same architecture). */
export function setTorchWeights(
  model: tf.LayersModel,
  a: TorchArch,
  entries: { slot: Slot; tensors: TorchTensor[] }[],
): void {
  const layers = model.layers.filter((l) => l.weights.length > 0);
  if (layers.length !== entries.length)
    throw new Error(`internal: ${layers.length} weighted layers for ${entries.length} modules of ${describeArch(a)}`);
  layers.forEach((layer, i) => {
    const { slot, tensors } = entries[i]!;
    const cls = layer.getClassName();
    const ok =
      slot.kind === 'conv'
        ? cls === 'Conv2D'
        : slot.kind === 'deconv'
          ? cls === 'Conv2DTranspose'
          : cls === 'BatchNormalization';
    if (!ok || layer.weights.length !== tensors.length)
      throw new Error(`internal: ${slot.key} (${slot.kind}) meets layer ${layer.name} (${cls})`);
    const values = tf.tidy(() =>
      layer.weights.map((w, j) => {
        const t = tensors[j]!;
        const key = `${slot.key}.${j === 0 ? 'weight' : slot.kind === 'bn' ? BN_KEYS[j] : 'bias'}`;
        const wantShape = torchShape(w.shape as number[]);
        if (fmt(wantShape) !== fmt(t.shape)) {
          throw new StateDictError(
            `${key}: shape ${fmt(t.shape)} in the file, ${fmt(wantShape)} expected by ${describeArch(a)}`,
          );
        }
        const x = tf.tensor(t.data!, t.shape, 'float32');
        return t.shape.length === 4 ? tf.transpose(x, [2, 3, 1, 0]) : x;
      }),
    );
    try {
      layer.setWeights(values);
    } finally {
      tf.dispose(values);
    }
  });
}

/**
 * A Gantry network with the weights of a state dict: `module.` prefixes stripped, architecture inferred (or
 * stated by `flags`), strict key, shape and value checks. Throws StateDictError for a state dict that does not fit.
 */
export function networkFromStateDict(
  raw: Map<string, TorchTensor>,
  flags: ArchFlags = {},
  name?: string,
): { arch: TorchArch; model: tf.LayersModel } {
  const sd = stripModulePrefix(raw);
  const arch = inferArch(sd, flags);
  const entries = checkStateDict(sd, arch);
  const model = withoutRandomInit(() => buildTorchNetwork(arch, name));
  try {
    setTorchWeights(model, arch, entries);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { arch, model };
}
