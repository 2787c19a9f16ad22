/**
 * Sample-quality figures computed in plain JS on feature vectors (small dimensions, so double precision and
 * a Jacobi eigensolver are cheap and exact enough).
 */

/** Mean vector and covariance (n − 1 normalised) of `n` rows of `dim` features. */
export function meanAndCovariance(
  features: Float32Array | Float64Array,
  dim: number,
): { mean: Float64Array; cov: Float64Array } {
  const n = features.length / dim;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += features[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) row[j] = features[i * dim + j]! - mean[j]!;
    for (let a = 0; a < dim; a++) {
      const ra = row[a]!;
      if (ra === 0) continue;
      for (let b = a; b < dim; b++) cov[a * dim + b]! += ra * row[b]!;
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b]! / Math.max(1, n - 1);
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
  }
  return { mean, cov };
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: A = V diag(values) Vᵀ. */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p]!;
          const mkq = m[k * n + q]!;
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k]!;
          const mqk = m[q * n + k]!;
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i]!;
  return { values, vectors: v };
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += aik * b[k * n + j]!;
    }
  }
  return out;
}

/** Symmetric PSD square root: V diag(√max(λ, 0)) Vᵀ. */
function sqrtPsd(a: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]!));
    if (s === 0) continue;
    for (let i = 0; i < n; i++) {
      const vik = vectors[i * n + k]! * s;
      for (let j = 0; j < n; j++) out[i * n + j]! += vik * vectors[j * n + k]!;
    }
  }
  return out;
}

/**
 * Fréchet distance between Gaussians fitted to two feature sets (the FID formula, Heusel et al. 2017):
 * ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½), with tr((Σ₁Σ₂)^½) = tr((√Σ₁ Σ₂ √Σ₁)^½) so only symmetric roots are needed.
 */
export function frechetDistance(a: Float32Array | Float64Array, b: Float32Array | Float64Array, dim: number): number {
  const A = meanAndCovariance(a, dim);
  const B = meanAndCovariance(b, dim);
  let meanTerm = 0;
  for (let j = 0; j < dim; j++) meanTerm += (A.mean[j]! - B.mean[j]!) ** 2;
  const rootA = sqrtPsd(A.cov, dim);
  const inner = matmul(matmul(rootA, B.cov, dim), rootA, dim);
  // Symmetrise against rounding before the eigensolver.
  for (let i = 0; i < dim; i++)
    for (let j = i + 1; j < dim; j++)
      inner[i * dim + j] = inner[j * dim + i] = (inner[i * dim + j]! + inner[j * dim + i]!) / 2;
  const { values } = symmetricEigen(inner, dim);
  let traceRoot = 0;
  for (const v of values) traceRoot += Math.sqrt(Math.max(0, v));
  let trace = 0;
  for (let i = 0; i < dim; i++) trace += A.cov[i * dim + i]! + B.cov[i * dim + i]!;
  return Math.max(0, meanTerm + trace - 2 * traceRoot);
}

/** Mean Euclidean distance between all pairs of rows: a diversity figure (0 means every sample is the same). */
export function meanPairwiseDistance(features: Float32Array | Float64Array, dim: number): number {
  const n = features.length / dim;
  if (n < 2) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let d = 0;
      for (let k = 0; k < dim; k++) d += (features[i * dim + k]! - features[j * dim + k]!) ** 2;
      sum += Math.sqrt(d);
    }
  }
  return sum / ((n * (n - 1)) / 2);
}
