export interface NativeBinding {
  /** params: [op, xOff, wOff, yOff, bOff, N,H,W,Ci, Kh,Kw,Co, Ho,Wo, sh,sw, pt,pl,pb,pr, dh,dw, act, alpha]; returns oneDNN's implementation name. */
  conv(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [aOff, bOff, cOff, biasOff, biasSize, batchA, batchB, M, N, K, transA, transB, act, alpha]. */
  matmul(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [dir (0 concat, 1 split), wholeOff, outer, wholeInner, n, (partOff, partInner) × n]. */
  blocks(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [0, n, xOff, mOff, vOff, gOff, x2Off, m2Off, v2Off, lr, beta1, beta2, eps, c1, c2] (Adam) or [1, n, aOff, bOff, outOff, beta] (β·a + (1 − β)·b). */
  update(heap: ArrayBuffer, params: Float64Array): string;
  /** Sets oneDNN's OpenMP thread count; returns the count in effect. */
  setThreads(n: number): number;
  version(): string;
}
export declare const binding: NativeBinding | null;
/** Why `binding` is null (empty when it loaded). */
export declare const why: string;
