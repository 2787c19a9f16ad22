export interface NativeBinding {
  /** params: [op, xOff, wOff, yOff, bOff, N,H,W,Ci, Kh,Kw,Co, Ho,Wo, sh,sw, pt,pl,pb,pr, dh,dw, act, alpha]; returns oneDNN's implementation name. */
  conv(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [aOff, bOff, cOff, biasOff, biasSize, batchA, batchB, M, N, K, transA, transB, act, alpha]. */
  matmul(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [dir (0 concat, 1 split), wholeOff, outer, wholeInner, n, (partOff, partInner) × n]. */
  blocks(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [0, n, xOff, mOff, vOff, gOff, x2Off, m2Off, v2Off, lr, beta1, beta2, eps, c1, c2] (Adam) or [1, n, aOff, bOff, outOff, beta] (β·a + (1 − β)·b). */
  update(heap: ArrayBuffer, params: Float64Array): string;
  /** Sets the OpenMP thread count of every kernel (oneDNN's and the ones below); returns the count in effect. */
  setThreads(n: number): number;
  /** The OpenMP thread count in effect. */
  threads(): number;
  /** params: [op (0 add, 1 sub, 2 mul, 3 div, 4 squared difference, 5 max, 6 min), yOff, aOff, bOff, rank, dims × rank, aStrides × rank, bStrides × rank] (strides in elements, 0 where broadcast). */
  binary(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [op, n, xOff, yOff, alpha]; ops: 0 relu, 1 leaky relu, 2 tanh, 3 sigmoid, 4 square, 5 neg, 6 abs, 7 rsqrt, 8 sqrt, 9 step, 10 exp, 11 elu, 12 relu6. */
  unary(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [op (0 relu, 1 leaky relu: v = x; 2 tanh, 3 sigmoid: v = y), n, dyOff, vOff, dxOff, alpha]. */
  actGrad(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [op (0 sum, 1 mean), outer, rows, inner, xOff, yOff]: y[o, i] = Σ_r x[o, r, i]. */
  reduce(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [dir (0 forward, 1 gradient), N, HW, C, xOff, dyOff, outOff, epsilon] (NHWC). */
  instanceNorm(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [0, G, P, C, xOff, γOff, βOff, meanOff, varOff, yOff, mean2Off, var2Off, epsilon, decay] (forward: y and the running averages after each of the G stacked batches) or [1, G, P, C, xOff, dyOff, γOff, dxOff, dγOff, epsilon] (gradients; an offset < 0: not computed). Absent in builds before it. */
  batchNorm?(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [dir (0 pad, 1 gradient), N, H, W, C, top, bottom, left, right, symmetric, xOff, yOff] (NHWC). */
  mirrorPad(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [op (0 slice: the box at `at` of x → y; 1 pad: x → y at `at`, the rest `value`), rank, xShape × rank, yShape × rank, at × rank, xOff, yOff, value]. Absent in builds before it. */
  box?(heap: ArrayBuffer, params: Float64Array): string;
  /** params: [dir (0 forward, 1 gradient), B, F, groupSize, xOff, dyOff (-1 forward), outOff]: the minibatch standard-deviation feature of x [B, F] (y [B, F + 1]) or its gradient dx [B, F] (dy [B, F + 1]). Absent in builds before it. */
  minibatchStddev?(heap: ArrayBuffer, params: Float64Array): string;
  version(): string;
}
export declare const binding: NativeBinding | null;
/** Why `binding` is null (empty when it loaded). */
export declare const why: string;
