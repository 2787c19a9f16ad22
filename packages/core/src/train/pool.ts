import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from './rng.js';

/**
 * History of generated images (Shrivastava et al. 2017), as CycleGAN uses it: the discriminator sees a mix of
 * current and past fakes, which damps oscillation. Until `size` images are stored each new image is stored and
 * returned; after that, with probability ½ a stored image is returned and replaced by the new one.
 */
export class ImagePool {
  private readonly images: tf.Tensor3D[] = [];
  private readonly rng: () => number;

  constructor(
    readonly size = 50,
    seed = 0,
  ) {
    this.rng = mulberry32(seed);
  }

  get stored(): number {
    return this.images.length;
  }

  /** Returns a batch of the same shape as `batch`; the caller still owns `batch` and owns the result. */
  query(batch: tf.Tensor4D): tf.Tensor4D {
    if (this.size <= 0) return tf.clone(batch);
    const picked: tf.Tensor3D[] = [];
    const toDispose: tf.Tensor3D[] = [];
    const n = batch.shape[0];
    for (let i = 0; i < n; i++) {
      const image = tf.keep(tf.tidy(() => tf.squeeze(tf.slice(batch, i, 1), [0]) as tf.Tensor3D));
      if (this.images.length < this.size) {
        this.images.push(image);
        picked.push(image);
      } else if (this.rng() > 0.5) {
        const j = Math.floor(this.rng() * this.size);
        picked.push(this.images[j]!);
        this.images[j] = image;
      } else {
        picked.push(image);
        toDispose.push(image);
      }
    }
    const out = tf.stack(picked) as tf.Tensor4D;
    for (const t of toDispose) t.dispose();
    // Images returned from the pool were replaced there, so they are no longer referenced.
    for (const t of picked) if (!this.images.includes(t) && !toDispose.includes(t)) t.dispose();
    return out;
  }

  dispose(): void {
    for (const t of this.images) t.dispose();
    this.images.length = 0;
  }
}
