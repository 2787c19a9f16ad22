/**
 * Every building block of Gantry's networks, named once (in the spirit of the reference implementation's
 * networks.py): initialisers, norm layers, reflection padding, conv/deconv blocks, and the image-to-image
 * networks (U-Net, ResNet generator, PatchGAN) shared by pix2pix and CycleGAN.
 *
 * Networks are tfjs-layers models so that a trained generator saves in the TF.js layers format and loads
 * with `tf.loadLayersModel` in Node or the browser (custom layers here are registered for that).
 */
import * as tf from '@tensorflow/tfjs';
import { instanceNorm, minibatchStddev } from '../backend/fused-ops.js';
import { nextInitSeed } from '../train/rng.js';
import { batchGroupsOf, batchNormalization } from './batch-norm.js';
import { conv2d, dense } from './conv-dense.js';
import { firstInput, firstShape } from './layer-inputs.js';

export const NORMS = ['batch', 'instance', 'none'] as const;
export type Norm = (typeof NORMS)[number];
export type Activation = 'relu' | 'leaky' | 'tanh' | 'sigmoid' | 'none';
type Sym = tf.SymbolicTensor;
type Initializer = ReturnType<typeof tf.initializers.randomNormal>;

let skipRandomInit = false;

/**
 * Builds networks whose weights are about to be overwritten (an import) with zero-filled weights: drawing tens
 * of millions of normal samples would cost seconds for nothing (no weight seeds are drawn either).
 */
export function withoutRandomInit<T>(build: () => T): T {
  skipRandomInit = true;
  try {
    return build();
  } finally {
    skipRandomInit = false;
  }
}

/** N(0, 0.02) weights, as in the DCGAN and pix2pix papers; every call draws a new seed (see `seedWeights`). */
export function weightInit(): Initializer {
  if (skipRandomInit) return tf.initializers.zeros();
  return tf.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: nextInitSeed() });
}

/** Norm-layer scales start at N(1, 0.02), as the reference implementation's init_weights. */
function gammaInit(): Initializer {
  if (skipRandomInit) return tf.initializers.ones();
  return tf.initializers.randomNormal({ mean: 1, stddev: 0.02, seed: nextInitSeed() });
}

/**
 * Instance normalisation (Ulyanov et al. 2016): each sample and channel normalised over H×W.
 * `affine: false` by default, like the reference's InstanceNorm2d.
 */
export class InstanceNormalization extends tf.layers.Layer {
  static className = 'InstanceNormalization';
  private readonly epsilon: number;
  private readonly affine: boolean;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;

  constructor(config: { epsilon?: number; affine?: boolean; name?: string; trainable?: boolean } = {}) {
    super(config);
    this.epsilon = config.epsilon ?? 1e-5;
    this.affine = config.affine ?? false;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = firstShape(inputShape);
    const channels = shape[shape.length - 1] as number;
    if (this.affine) {
      this.gamma = this.addWeight('gamma', [channels], 'float32', tf.initializers.ones());
      this.beta = this.addWeight('beta', [channels], 'float32', tf.initializers.zeros());
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = firstInput(inputs);
      // One native kernel forward and backward on the wasm backend with @gantry/native; TF.js's moments elsewhere.
      let y = instanceNorm(x, this.epsilon);
      if (this.gamma && this.beta) y = tf.add(tf.mul(y, this.gamma.read()), this.beta.read());
      return y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, affine: this.affine };
  }
}
tf.serialization.registerClass(InstanceNormalization);

/** Reflection padding of H and W (CycleGAN's ResNet generator pads this way to avoid border artefacts). */
export class ReflectionPadding2D extends tf.layers.Layer {
  static className = 'ReflectionPadding2D';
  private readonly padding: number;

  constructor(config: { padding: number; name?: string }) {
    super(config);
    this.padding = config.padding;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = firstShape(inputShape);
    const grow = (d: number | null) => (d == null ? null : d + 2 * this.padding);
    return [s[0]!, grow(s[1]!), grow(s[2]!), s[3]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = firstInput(inputs) as tf.Tensor4D;
    const p = this.padding;
    return tf.mirrorPad(
      x,
      [
        [0, 0],
        [p, p],
        [p, p],
        [0, 0],
      ],
      'reflect',
    );
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), padding: this.padding };
  }
}
tf.serialization.registerClass(ReflectionPadding2D);

/**
 * Minibatch standard deviation (Karras et al. 2018, section 3) for a D of dense layers: one more feature per
 * sample, the standard deviation of each feature over the sample's group of `groupSize` consecutive samples,
 * averaged over the features. D sees how varied a group is, so a G that draws too few kinds of sample is told
 * apart. With BATCH_GROUPS (real and fake stacked in one pass) groups stay inside their stack; a stack the group
 * size does not divide is one group.
 */
export class MinibatchStddev extends tf.layers.Layer {
  static className = 'MinibatchStddev';
  private readonly groupSize: number;

  constructor(config: { groupSize: number; name?: string }) {
    super(config);
    this.groupSize = config.groupSize;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = firstShape(inputShape);
    return [s[0]!, s[1] == null ? null : s[1]! + 1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const x = firstInput(inputs) as tf.Tensor2D;
      const stack = x.shape[0] / batchGroupsOf(kwargs, x.shape[0]);
      const g = stack % this.groupSize === 0 ? this.groupSize : stack;
      return minibatchStddev(x, g);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groupSize: this.groupSize };
  }
}
tf.serialization.registerClass(MinibatchStddev);

/**
 * The affine part of class-conditional batch norm (Dumoulin et al. 2017; the generator of Miyato & Koyama 2018):
 * inputs [x, labels [B, 1] int32], x batch-normalised; each class has its own per-channel
 * scale γ (starts at N(1, 0.02), as norm scales do here) and shift β (starts at 0): y = γ[label]·x + β[label].
 */
export class ClassConditionalAffine extends tf.layers.Layer {
  static className = 'ClassConditionalAffine';
  private readonly numClasses: number;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;

  constructor(config: { numClasses: number; name?: string; trainable?: boolean }) {
    super(config);
    this.numClasses = config.numClasses;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (inputShape as tf.Shape[])[0]!;
    const channels = shape[shape.length - 1] as number;
    this.gamma = this.addWeight('gamma', [this.numClasses, channels], 'float32', gammaInit());
    this.beta = this.addWeight('beta', [this.numClasses, channels], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (inputShape as tf.Shape[])[0]!;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [x, labels] = inputs as tf.Tensor[];
      const index = tf.reshape(tf.cast(labels!, 'int32'), [-1]);
      // [B, C] per-sample parameters, shaped [B, 1, …, 1, C] to broadcast over x's spatial axes.
      const perSample = [x!.shape[0]!, ...Array<number>(x!.rank - 2).fill(1), x!.shape[x!.rank - 1]!];
      const g = tf.reshape(tf.gather(this.gamma!.read(), index), perSample);
      const b = tf.reshape(tf.gather(this.beta!.read(), index), perSample);
      return tf.add(tf.mul(x!, g), b);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), numClasses: this.numClasses };
  }
}
tf.serialization.registerClass(ClassConditionalAffine);

/**
 * Class-conditional batch norm: batch statistics as usual, then a scale and shift chosen by the label. The shared
 * affine stays (starting at γ 1, β 0): TF.js 4.22's batch norm reads γ and β in training even with center and
 * scale off.
 */
export function conditionalBatchNorm(x: Sym, labels: Sym, numClasses: number): Sym {
  const normalised = batchNormalization({ momentum: 0.9, epsilon: 1e-5 }).apply(x) as Sym;
  return new ClassConditionalAffine({ numClasses }).apply([normalised, labels]) as Sym;
}

/** A norm layer applied to `x` (identity for 'none'); epsilon 1e-5 as PyTorch's default. */
export function normLayer(x: Sym, norm: Norm): Sym {
  if (norm === 'batch') {
    // PyTorch's momentum 0.1 is Keras' 0.9.
    return batchNormalization({ momentum: 0.9, epsilon: 1e-5, gammaInitializer: gammaInit() }).apply(x) as Sym;
  }
  if (norm === 'instance') return new InstanceNormalization().apply(x) as Sym;
  return x;
}

/** An activation applied to `x` (LeakyReLU slope 0.2, as in DCGAN/pix2pix discriminators). */
export function activation(x: Sym, act: Activation): Sym {
  switch (act) {
    case 'none':
      return x;
    case 'leaky':
      return tf.layers.leakyReLU({ alpha: 0.2 }).apply(x) as Sym;
    default:
      return tf.layers.activation({ activation: act }).apply(x) as Sym;
  }
}

export interface ConvOptions {
  filters: number;
  kernel?: number;
  stride?: number;
  padding?: 'same' | 'valid';
  /**
   * PyTorch's symmetric zero padding (overrides `padding`): a conv pads `pad` on every side and runs 'valid'; a
   * transposed conv runs 'valid' and crops `pad` at the top/left and `pad - outputPadding` at the bottom/right,
   * which is what PyTorch's ConvTranspose2d(padding, output_padding) computes. TF.js 'same' pads bottom/right
   * first, which differs for odd kernels, stride-1 4×4 kernels and odd input sizes.
   */
  pad?: number;
  outputPadding?: number;
  norm?: Norm;
  act?: Activation;
  /** Bias is redundant before batch norm, so by default only convs without it get one. */
  bias?: boolean;
}

/** A (transposed) convolution with N(0, 0.02) weights, then norm and activation. */
function convLike(layer: typeof conv2d | typeof tf.layers.conv2dTranspose, x: Sym, o: ConvOptions): Sym {
  const norm = o.norm ?? 'none';
  const transposed = layer === tf.layers.conv2dTranspose;
  const pad = o.pad ?? 0;
  if (o.pad !== undefined && !transposed && pad > 0) x = tf.layers.zeroPadding2d({ padding: pad }).apply(x) as Sym;
  let y = layer({
    filters: o.filters,
    kernelSize: o.kernel ?? 4,
    strides: o.stride ?? 2,
    padding: o.pad !== undefined ? 'valid' : (o.padding ?? 'same'),
    useBias: o.bias ?? norm !== 'batch',
    kernelInitializer: weightInit(),
  }).apply(x) as Sym;
  const end = pad - (o.outputPadding ?? 0);
  if (transposed && (pad > 0 || end !== 0)) {
    if (end < 0) throw new Error(`deconv: output padding ${o.outputPadding} larger than padding ${pad}`);
    y = tf.layers
      .cropping2D({
        cropping: [
          [pad, end],
          [pad, end],
        ],
      })
      .apply(y) as Sym;
  }
  return activation(normLayer(y, norm), o.act ?? 'none');
}

/** conv → norm → activation. */
export function convBlock(x: Sym, o: ConvOptions): Sym {
  return convLike(conv2d, x, o);
}

/** transposed conv (upsampling ×stride) → norm → activation. */
export function deconvBlock(x: Sym, o: ConvOptions): Sym {
  return convLike(tf.layers.conv2dTranspose, x, o);
}

/** dense → norm → activation. */
export function denseBlock(x: Sym, units: number, act: Activation, norm: Norm = 'none', bias = norm !== 'batch'): Sym {
  const y = dense({ units, useBias: bias, kernelInitializer: weightInit() }).apply(x) as Sym;
  return activation(normLayer(y, norm), act);
}

/** Dropout with a seed drawn like the weights' (pix2pix uses it as the generator's noise source). */
export function dropout(x: Sym, rate: number): Sym {
  return tf.layers.dropout({ rate, seed: nextInitSeed() }).apply(x) as Sym;
}

export function concat(xs: Sym[]): Sym {
  return tf.layers.concatenate({ axis: -1 }).apply(xs) as Sym;
}

export interface UnetOptions {
  size: number;
  inChannels: number;
  outChannels: number;
  /** Number of ×2 downsamplings: 8 for unet_256, 7 for unet_128; the bottleneck is size / 2^numDowns. */
  numDowns: number;
  ngf: number;
  norm: Norm;
  dropout: boolean;
  name?: string;
}

/**
 * U-Net generator of pix2pix: an encoder–decoder whose mirrored levels are joined by skip connections.
 * Filters double per level up to ngf·8; dropout 0.5 on the decoder's deepest ngf·8 levels, as the reference.
 * Layer for layer the reference's UnetGenerator: every conv has a bias only under instance norm (its use_bias)
 * except the outermost up-conv, which always has one; the innermost down-conv has no norm. The reference's
 * in-place LeakyReLU also rewrites the skip tensor, but the ReLU that follows the concatenation makes that
 * invisible, so the plain skip here computes the same. The 4×4 stride-2 convs pad 1 on each side, which 'same'
 * does on the even sizes a U-Net sees. Input [H, W, C] with H and W multiples of 2^numDowns (`size` is the
 * training size, checked the same way).
 */
export function unetGenerator(o: UnetOptions): tf.LayersModel {
  if (o.size % 2 ** o.numDowns !== 0) {
    throw new Error(`unet: image size ${o.size} must be divisible by 2^${o.numDowns}`);
  }
  const filters = (level: number) => o.ngf * Math.min(2 ** level, 8);
  const input = tf.input({ shape: [null, null, o.inChannels] });
  const n = o.numDowns;
  const useBias = o.norm === 'instance';
  const downs: Sym[] = [convBlock(input, { filters: filters(0), bias: useBias })];
  for (let level = 1; level < n; level++) {
    const innermost = level === n - 1;
    downs.push(
      convBlock(activation(downs[level - 1]!, 'leaky'), {
        filters: filters(level),
        norm: innermost ? 'none' : o.norm,
        bias: useBias,
      }),
    );
  }
  let up: Sym = downs[n - 1]!;
  for (let level = n - 1; level >= 1; level--) {
    let y = deconvBlock(activation(up, 'relu'), { filters: filters(level - 1), norm: o.norm, bias: useBias });
    // The reference puts dropout on the ngf·8 blocks between the innermost and the 4 outer levels.
    if (o.dropout && level <= n - 2 && level >= 4) y = dropout(y, 0.5);
    up = concat([downs[level - 1]!, y]);
  }
  const output = deconvBlock(activation(up, 'relu'), {
    filters: o.outChannels,
    bias: true,
    act: 'tanh',
  });
  return tf.model({ inputs: input, outputs: output, name: o.name ?? 'unet_generator' });
}

export interface ResnetOptions {
  size: number;
  inChannels: number;
  outChannels: number;
  ngf: number;
  blocks: number;
  norm: Norm;
  dropout?: boolean;
  name?: string;
}

/** ResNet residual block: reflect-pad, conv3, norm, ReLU, [dropout], reflect-pad, conv3, norm, plus the input. */
export function resnetBlock(x: Sym, filters: number, norm: Norm, useDropout = false): Sym {
  const bias = norm === 'instance';
  let y = new ReflectionPadding2D({ padding: 1 }).apply(x) as Sym;
  y = convBlock(y, { filters, kernel: 3, stride: 1, padding: 'valid', norm, act: 'relu', bias });
  if (useDropout) y = dropout(y, 0.5);
  y = new ReflectionPadding2D({ padding: 1 }).apply(y) as Sym;
  y = convBlock(y, { filters, kernel: 3, stride: 1, padding: 'valid', norm, bias });
  return tf.layers.add().apply([x, y]) as Sym;
}

/**
 * CycleGAN's ResNet generator (Johnson et al. 2016): c7s1-ngf, two ×2 downsamplings, residual blocks, two ×2
 * upsamplings, c7s1-out + tanh. As the reference's ResnetGenerator: biases only under instance norm (and on the
 * last conv), stride-2 3×3 convs padded 1 on every side, transposed convs as ConvTranspose2d(3, 2, padding 1,
 * output_padding 1). Input [H, W, C] with H and W multiples of 4.
 */
export function resnetGenerator(o: ResnetOptions): tf.LayersModel {
  const input = tf.input({ shape: [null, null, o.inChannels] });
  const bias = o.norm === 'instance';
  let x = new ReflectionPadding2D({ padding: 3 }).apply(input) as Sym;
  x = convBlock(x, { filters: o.ngf, kernel: 7, stride: 1, padding: 'valid', norm: o.norm, act: 'relu', bias });
  x = convBlock(x, { filters: o.ngf * 2, kernel: 3, stride: 2, pad: 1, norm: o.norm, act: 'relu', bias });
  x = convBlock(x, { filters: o.ngf * 4, kernel: 3, stride: 2, pad: 1, norm: o.norm, act: 'relu', bias });
  for (let i = 0; i < o.blocks; i++) x = resnetBlock(x, o.ngf * 4, o.norm, o.dropout);
  x = deconvBlock(x, {
    filters: o.ngf * 2,
    kernel: 3,
    stride: 2,
    pad: 1,
    outputPadding: 1,
    norm: o.norm,
    act: 'relu',
    bias,
  });
  x = deconvBlock(x, {
    filters: o.ngf,
    kernel: 3,
    stride: 2,
    pad: 1,
    outputPadding: 1,
    norm: o.norm,
    act: 'relu',
    bias,
  });
  x = new ReflectionPadding2D({ padding: 3 }).apply(x) as Sym;
  x = convBlock(x, { filters: o.outChannels, kernel: 7, stride: 1, padding: 'valid', bias: true, act: 'tanh' });
  return tf.model({ inputs: input, outputs: x, name: o.name ?? 'resnet_generator' });
}

export interface PatchOptions {
  size: number;
  inChannels: number;
  ndf: number;
  /** Strided layers; 3 gives the 70×70 receptive field of the paper. */
  layers: number;
  norm: Norm;
  name?: string;
}

/**
 * PatchGAN discriminator: classifies each overlapping patch (70×70 for 3 layers) as real or fake,
 * returning a map of logits rather than one number. As the reference's NLayerDiscriminator: every 4×4 conv pads
 * 1 on each side (a 30×30 map at 256 px for 3 layers), biases on the first and last conv and under instance norm.
 */
export function patchDiscriminator(o: PatchOptions): tf.LayersModel {
  const input = tf.input({ shape: [null, null, o.inChannels] });
  const bias = o.norm === 'instance';
  let x = convBlock(input, { filters: o.ndf, pad: 1, bias: true, act: 'leaky' });
  for (let n = 1; n < o.layers; n++) {
    x = convBlock(x, { filters: o.ndf * Math.min(2 ** n, 8), pad: 1, norm: o.norm, act: 'leaky', bias });
  }
  x = convBlock(x, {
    filters: o.ndf * Math.min(2 ** o.layers, 8),
    stride: 1,
    pad: 1,
    norm: o.norm,
    act: 'leaky',
    bias,
  });
  x = convBlock(x, { filters: 1, stride: 1, pad: 1, bias: true });
  return tf.model({ inputs: input, outputs: x, name: o.name ?? 'patch_discriminator' });
}

/** Number of trainable parameters of a model. */
export function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}
