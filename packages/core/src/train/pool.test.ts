import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { ImagePool } from './pool.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

/** A batch of `n` 2×2×1 images whose pixels all equal their id, so every image is recognisable. */
const batch = (...ids: number[]) =>
  tf.tensor4d(
    ids.flatMap((id) => [id, id, id, id]),
    [ids.length, 2, 2, 1],
  );
const ids = (t: tf.Tensor4D) => {
  const v = t.dataSync();
  return Array.from({ length: t.shape[0] }, (_, i) => v[i * 4]!);
};

describe('ImagePool', () => {
  it('returns every image unchanged while filling up, and stores it', () => {
    const pool = new ImagePool(3, 1);
    const q = batch(1, 2);
    const out = pool.query(q);
    expect(ids(out)).toEqual([1, 2]);
    expect(pool.stored).toBe(2);
    expect(q.isDisposed).toBe(false); // the caller still owns its batch
    tf.dispose([q, out]);
    const out2 = pool.query(batch(3));
    expect(ids(out2)).toEqual([3]);
    expect(pool.stored).toBe(3);
    pool.dispose();
  });

  it('once full, returns the new image or a stored one (swapping it in) about half the time each', () => {
    const pool = new ImagePool(5, 7);
    for (let i = 0; i < 5; i++) tf.dispose(pool.query(batch(i)));
    let old = 0;
    const n = 400;
    for (let i = 0; i < n; i++) {
      const id = 1000 + i;
      const out = pool.query(batch(id));
      const got = ids(out)[0]!;
      if (got !== id) {
        old++;
        // A stored image is an earlier fake: one of the first five or an earlier query.
        expect(got < 5 || (got >= 1000 && got < id)).toBe(true);
      }
      out.dispose();
      expect(pool.stored).toBe(5);
    }
    expect(old / n).toBeGreaterThan(0.4);
    expect(old / n).toBeLessThan(0.6);
    pool.dispose();
  });

  it('handles batches larger than one image by image, with the input shape', () => {
    const pool = new ImagePool(2, 3);
    const out = pool.query(batch(1, 2, 3, 4));
    expect(out.shape).toEqual([4, 2, 2, 1]);
    // The first two fill the pool and are returned; the others are new or swapped-out pool images.
    const got = ids(out);
    expect(got.slice(0, 2)).toEqual([1, 2]);
    for (const g of got.slice(2)) expect([1, 2, 3, 4]).toContain(g);
    expect(pool.stored).toBe(2);
    out.dispose();
    pool.dispose();
  });

  it('is deterministic in its seed', () => {
    const run = (seed: number) => {
      const pool = new ImagePool(4, seed);
      const seen: number[] = [];
      for (let i = 0; i < 40; i++) {
        const out = pool.query(batch(i));
        seen.push(ids(out)[0]!);
        out.dispose();
      }
      pool.dispose();
      return seen;
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  it('size 0 turns the pool off: a copy of the batch, nothing stored', () => {
    const pool = new ImagePool(0);
    const q = batch(9);
    const out = pool.query(q);
    expect(out).not.toBe(q);
    expect(ids(out)).toEqual([9]);
    expect(pool.stored).toBe(0);
    tf.dispose([q, out]);
  });

  it('keeps memory flat: exactly `size` tensors held, all freed by dispose', () => {
    const before = tf.memory().numTensors;
    const pool = new ImagePool(3, 11);
    for (let i = 0; i < 50; i++) {
      const q = batch(i, i + 100);
      tf.dispose([q, pool.query(q)]);
      if (i >= 2) expect(tf.memory().numTensors).toBe(before + 3);
    }
    pool.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
