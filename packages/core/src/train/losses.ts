/**
 * Adversarial losses, selectable by name for every variant. Discriminators output raw scores (logits);
 * each loss turns D's scores on real and fake samples into D's and G's objectives.
 */
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';

export const GAN_LOSSES = ['bce', 'lsgan', 'wgan-gp', 'hinge'] as const;
export type GanLossName = (typeof GAN_LOSSES)[number];

export interface AdversarialLoss {
  readonly name: GanLossName;
  discriminator(realScores: tf.Tensor, fakeScores: tf.Tensor): tf.Scalar;
  generator(fakeScores: tf.Tensor): tf.Scalar;
  /** Whether D's objective needs `gradientPenalty` added (WGAN-GP). */
  readonly needsGradientPenalty: boolean;
}

const mean = (t: tf.Tensor) => tf.mean(t) as tf.Scalar;

/** Non-saturating BCE (Goodfellow et al. 2014): G maximises log D(G(z)) instead of minimising log(1 − D(G(z))). */
const bce: AdversarialLoss = {
  name: 'bce',
  needsGradientPenalty: false,
  // −log σ(r) = softplus(−r); −log(1 − σ(f)) = softplus(f): stable for any logit.
  discriminator: (r, f) => tf.add(mean(tf.softplus(tf.neg(r))), mean(tf.softplus(f))),
  generator: (f) => mean(tf.softplus(tf.neg(f))),
};

/** Least-squares GAN (Mao et al. 2017), CycleGAN's default: targets 1 for real, 0 for fake. */
const lsgan: AdversarialLoss = {
  name: 'lsgan',
  needsGradientPenalty: false,
  // Halved as in the reference implementation, so D learns at the same pace as with BCE.
  discriminator: (r, f) => tf.mul(0.5, tf.add(mean(tf.square(tf.sub(r, 1))), mean(tf.square(f)))),
  generator: (f) => mean(tf.square(tf.sub(f, 1))),
};

/** Wasserstein loss (Gulrajani et al. 2017); the critic's Lipschitz constraint comes from `gradientPenalty`. */
const wganGp: AdversarialLoss = {
  name: 'wgan-gp',
  needsGradientPenalty: true,
  discriminator: (r, f) => tf.sub(mean(f), mean(r)),
  generator: (f) => tf.neg(mean(f)),
};

/** Hinge loss (Lim & Ye 2017; SAGAN, BigGAN). */
const hinge: AdversarialLoss = {
  name: 'hinge',
  needsGradientPenalty: false,
  discriminator: (r, f) => tf.add(mean(tf.relu(tf.sub(1, r))), mean(tf.relu(tf.add(1, f)))),
  generator: (f) => tf.neg(mean(f)),
};

const LOSSES: Record<GanLossName, AdversarialLoss> = { bce, lsgan, 'wgan-gp': wganGp, hinge };

export function adversarialLoss(name: string): AdversarialLoss {
  const loss = LOSSES[name as GanLossName];
  if (!loss) throw new GantryError(`--loss: unknown loss '${name}' (expected one of ${GAN_LOSSES.join(', ')})`);
  return loss;
}

/** ‖∇ₓD(x)‖₂² per sample: the quantity both gradient penalties below are built on. */
function squaredGradientNorm(critic: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): tf.Tensor {
  const grad = tf.grad((t: tf.Tensor) => tf.sum(critic(t)))(x);
  return tf.sum(
    tf.square(grad),
    grad.shape.slice(1).map((_, i) => i + 1),
  );
}

/**
 * WGAN-GP penalty λ·E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ of real and fake samples.
 * `critic` maps an image batch to scores (a conditional critic closes over its labels).
 */
export function gradientPenalty(
  critic: (x: tf.Tensor) => tf.Tensor,
  real: tf.Tensor,
  fake: tf.Tensor,
  lambda = 10,
  seed?: number,
): tf.Scalar {
  return tf.tidy(() => {
    const batch = real.shape[0]!;
    const epsShape = [batch, ...real.shape.slice(1).map(() => 1)];
    const eps = tf.randomUniform(epsShape, 0, 1, 'float32', seed);
    const interp = tf.add(tf.mul(eps, real), tf.mul(tf.sub(1, eps), fake));
    const norm = tf.sqrt(tf.add(squaredGradientNorm(critic, interp), 1e-12));
    return tf.mul(lambda, mean(tf.square(tf.sub(norm, 1))));
  });
}

/**
 * R1 penalty (Mescheder et al. 2018) (γ/2)·E[‖∇D(x)‖₂²] at real samples only: it keeps D flat on the data, so a
 * D strong enough to see fine texture cannot push G around with steep, oscillating gradients.
 */
export function r1Penalty(critic: (x: tf.Tensor) => tf.Tensor, real: tf.Tensor, gamma: number): tf.Scalar {
  return tf.tidy(() => tf.mul(gamma / 2, mean(squaredGradientNorm(critic, real))));
}

/**
 * Mode-seeking term (Mao et al. 2019, MSGAN): 1 / (‖G(z₁) − G(z₂)‖₁ / ‖z₁ − z₂‖₁), for images made from the
 * first `pairs` noise vectors and the next `pairs` (in a conditional GAN, with the same labels). Minimising it
 * rewards G for turning different noise into different images, against a cGAN's habit of ignoring z.
 */
export function modeSeekingLoss(images: tf.Tensor, z: tf.Tensor, pairs: number): tf.Scalar {
  return tf.tidy(() => {
    const half = (t: tf.Tensor, i: number) => tf.slice(t, i * pairs, pairs);
    const ratio = tf.div(l1(half(images, 0), half(images, 1)), l1(half(z, 0), half(z, 1)));
    return tf.div(1, tf.add(ratio, 1e-5)) as tf.Scalar;
  });
}

/** Mean absolute error: pix2pix's reconstruction term and CycleGAN's cycle and identity terms. */
export function l1(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return mean(tf.abs(tf.sub(a, b)));
}
