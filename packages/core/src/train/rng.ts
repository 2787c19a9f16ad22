/** Small deterministic PRNG helpers: runs with the same seed see the same noise, data order and weights. */

/** mulberry32: a fast 32-bit PRNG, good enough for shuffling and augmentation (not for crypto). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes several integers into one 31-bit seed, so (seed, epoch) or (seed, step, stream) pairs get independent streams. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0x5bd1e995) >>> 0;
  }
  return (h ^ (h >>> 15)) & 0x7fffffff;
}

/** Fisher–Yates permutation of 0..n-1 drawn from `rng`. */
export function permutation(n: number, rng: Rng): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

let initSeedBase = 0;
let initSeedCounter = 0;

/**
 * Fixes the seed from which every weight initialiser built afterwards draws its own seed,
 * so a network built twice with the same seed has the same weights.
 */
export function seedWeights(seed: number): void {
  initSeedBase = seed;
  initSeedCounter = 0;
}

/** The next weight-initialiser seed (distinct for every layer built after `seedWeights`). */
export function nextInitSeed(): number {
  return mixSeed(initSeedBase, ++initSeedCounter);
}

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** A uniform integer in [lo, hi] (both inclusive, like Python's random.randint). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** A uniform float in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + rng() * (hi - lo);
}

/**
 * Which examples each step trains on: a fresh seeded permutation per epoch, consumed in consecutive batches
 * (the last partial batch of an epoch is dropped). Depends only on (seed, step), so a resumed run sees the
 * same data as an uninterrupted one.
 */
export class EpochSampler {
  readonly stepsPerEpoch: number;
  private current?: { epoch: number; perm: Int32Array };

  constructor(
    readonly count: number,
    readonly batchSize: number,
    readonly seed: number,
  ) {
    this.stepsPerEpoch = Math.max(1, Math.floor(count / batchSize));
  }

  indices(step: number): Int32Array {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (this.current?.epoch !== epoch)
      this.current = { epoch, perm: permutation(this.count, mulberry32(mixSeed(this.seed, epoch, 11))) };
    const start = (step % this.stepsPerEpoch) * this.batchSize;
    return this.current.perm.subarray(start, start + this.batchSize);
  }
}
