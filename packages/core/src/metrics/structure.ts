/**
 * How much of an input's structure a translation keeps: the Pearson correlation of the Sobel edge-magnitude maps of
 * input and output (grayscale, same size). See docs/structure-measure.md for what it measures and what it does not.
 * Browser-safe (no imports).
 */

/** 8-bit pixels, 1-4 channels (alpha, if any, is ignored). */
export interface BytesImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: number;
}

/** Below this, `translate` warns that the output has lost most of the scene. */
export const STRUCTURE_WARN = 0.3;

/** Edge maps are computed at most this many pixels on the longer side (box-averaged down by an integer factor). */
export const STRUCTURE_SIDE = 512;

/** Rec. 601 luma in [0, 255], box-averaged by `k`×`k` blocks (partial blocks at the right/bottom edges dropped). */
export function lumaDownscaled(img: BytesImage, k: number): { data: Float32Array; width: number; height: number } {
  const w = Math.max(1, Math.floor(img.width / k));
  const h = Math.max(1, Math.floor(img.height / k));
  const kx = Math.min(k, img.width);
  const ky = Math.min(k, img.height);
  const out = new Float32Array(w * h);
  const c = img.channels;
  const gray = c < 3;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = 0; dy < ky; dy++) {
        let p = ((y * ky + dy) * img.width + x * kx) * c;
        for (let dx = 0; dx < kx; dx++, p += c)
          s += gray ? img.data[p]! : 0.299 * img.data[p]! + 0.587 * img.data[p + 1]! + 0.114 * img.data[p + 2]!;
      }
      out[y * w + x] = s / (kx * ky);
    }
  }
  return { data: out, width: w, height: h };
}

/** Sobel gradient magnitude of a grayscale map, over the interior (the 1-pixel border is left out). */
export function sobelMagnitude(g: { data: Float32Array; width: number; height: number }): Float32Array {
  const { data, width: w, height: h } = g;
  if (w < 3 || h < 3) return new Float32Array(0);
  const out = new Float32Array((w - 2) * (h - 2));
  let i = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++, i++) {
      const a = (yy: number, xx: number) => data[yy * w + xx]!;
      const gx =
        a(y - 1, x + 1) + 2 * a(y, x + 1) + a(y + 1, x + 1) - a(y - 1, x - 1) - 2 * a(y, x - 1) - a(y + 1, x - 1);
      const gy =
        a(y + 1, x - 1) + 2 * a(y + 1, x) + a(y + 1, x + 1) - a(y - 1, x - 1) - 2 * a(y - 1, x) - a(y - 1, x + 1);
      out[i] = Math.hypot(gx, gy);
    }
  }
  return out;
}

/** Pearson correlation; NaN when either side is constant (no edges: nothing to correlate). */
export function pearson(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  if (n === 0 || n !== b.length) return Number.NaN;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  // Below this the map is flat up to rounding: 1e-6 of the mean squared gradient an 8-bit step gives.
  if (saa <= 1e-6 * n || sbb <= 1e-6 * n) return Number.NaN;
  return sab / Math.sqrt(saa * sbb);
}

export interface StructureScore {
  /** Correlation of the edge maps in [-1, 1]; NaN when the input or output has no edges at all. */
  correlation: number;
  /** Whether the input has edges at all (otherwise there is no structure to keep). */
  inputHasEdges: boolean;
}

/**
 * Correlation of the Sobel edge magnitudes of `input` and `output` (same width and height), on luma box-averaged
 * down to at most `side` pixels on the longer side.
 */
export function structureScore(input: BytesImage, output: BytesImage, side = STRUCTURE_SIDE): StructureScore {
  if (input.width !== output.width || input.height !== output.height) {
    throw new Error(
      `structure: input ${input.width}×${input.height} and output ${output.width}×${output.height} differ in size`,
    );
  }
  const k = Math.max(1, Math.ceil(Math.max(input.width, input.height) / side));
  const ea = sobelMagnitude(lumaDownscaled(input, k));
  const eb = sobelMagnitude(lumaDownscaled(output, k));
  const inputHasEdges = !Number.isNaN(pearson(ea, ea));
  let correlation = pearson(ea, eb);
  // Edges in, none out: the scene is gone.
  if (inputHasEdges && Number.isNaN(correlation)) correlation = 0;
  return { correlation, inputHasEdges };
}

/** "structure 0.71" (with a warning below STRUCTURE_WARN) for the translate log line. */
export function formatStructure(s: StructureScore, warnBelow = STRUCTURE_WARN): { text: string; warning?: string } {
  if (!s.inputHasEdges) return { text: 'structure n/a (the input has no edges)' };
  const text = `structure ${s.correlation.toFixed(2)}`;
  if (s.correlation < warnBelow) {
    return {
      text,
      warning: `warning: the output keeps little of the input's structure (edge correlation ${s.correlation.toFixed(2)} < ${warnBelow}); the model may not suit this kind of image`,
    };
  }
  return { text };
}
