// Native convolution and matmul kernels for the TF.js WebAssembly backend, on oneDNN (Debian's libdnnl, the
// library PyTorch's CPU convolutions use). Tensors stay where the wasm backend keeps them: every call gets the
// wasm heap (an ArrayBuffer) and byte offsets into it, and oneDNN reads and writes there in place, no copies.
// Layouts are TF.js's: activations NHWC, conv filters HWIO ([kh, kw, in, out]), matrices row-major.
#include <cstdlib>
#include <node_api.h>
#include <omp.h>
#include <pthread.h>

#include <csignal>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace {

using dnnl::algorithm;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& cpuEngine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& cpuStream() {
  static dnnl::stream s(cpuEngine());
  return s;
}

// Activations of TF.js's fused kernels (the `activation` attribute), as numbered by the JS side.
enum Act { kLinear = 0, kRelu = 1, kRelu6 = 2, kLeakyRelu = 3, kElu = 4, kSigmoid = 5 };

void appendActivation(dnnl::post_ops& po, int act, float alpha) {
  switch (act) {
    case kRelu: po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); break;
    case kRelu6: po.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 6.f); break;
    case kLeakyRelu: po.append_eltwise(1.f, algorithm::eltwise_relu, alpha, 0.f); break;
    case kElu: po.append_eltwise(1.f, algorithm::eltwise_elu, 1.f, 0.f); break;
    case kSigmoid: po.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f); break;
    default: break;
  }
}

inline float activate(float v, int act, float alpha) {
  switch (act) {
    case kRelu: return v > 0 ? v : 0;
    case kRelu6: return v < 0 ? 0 : (v > 6 ? 6 : v);
    case kLeakyRelu: return v > 0 ? v : alpha * v;
    case kElu: return v > 0 ? v : std::expm1(v);
    case kSigmoid: return 1.f / (1.f + std::exp(-v));
    default: return v;
  }
}

// One convolution geometry. Parameters arrive as doubles (byte offsets can exceed 2^31).
struct ConvGeom {
  memory::dim N, H, W, Ci, Kh, Kw, Co, Ho, Wo, sh, sw, pt, pl, pb, pr, dh, dw;
  int act;
  float alpha;
  bool bias;
  std::string key() const {
    char buf[256];
    snprintf(buf, sizeof buf, "%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%d,%g,%d", (long)N,
             (long)H, (long)W, (long)Ci, (long)Kh, (long)Kw, (long)Co, (long)Ho, (long)Wo, (long)sh, (long)sw, (long)pt,
             (long)pl, (long)pb, (long)pr, (long)dh, (long)dw, act, alpha, bias ? 1 : 0);
    return buf;
  }
  memory::desc src() const { return {{N, Ci, H, W}, dt::f32, tag::nhwc}; }
  memory::desc wei() const { return {{Co, Ci, Kh, Kw}, dt::f32, tag::hwio}; }
  memory::desc dst() const { return {{N, Co, Ho, Wo}, dt::f32, tag::nhwc}; }
  memory::desc bia() const { return {{Co}, dt::f32, tag::x}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilates() const { return {dh - 1, dw - 1}; }  // oneDNN counts dilation from 0
  memory::dims padL() const { return {pt, pl}; }
  memory::dims padR() const { return {pb, pr}; }
};

// How a primitive's memory layouts are chosen. Blocked (default): oneDNN picks its layouts (format_tag::any)
// and tensors are reordered in and out, as PyTorch does; measured faster on every benchmark row than plain.
// Plain (GANTRY_DNNL_LAYOUT=plain): TF.js's own NHWC/HWIO in place, oneDNN's gemm-based convolutions; a
// geometry where plain layouts leave only oneDNN's reference code still goes blocked.
bool blockedEverywhere() {
  static const bool on = [] {
    const char* v = getenv("GANTRY_DNNL_LAYOUT");
    return !(v && std::string(v) == "plain");
  }();
  return on;
}

memory::desc anyOf(const memory::desc& md) { return memory::desc(md.dims(), dt::f32, tag::any); }

bool isReference(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

int threadsFor(int64_t work);

// Keeps the calling thread alone for oneDNN work too small to share. Reorders, eltwise primitives and sgemm split
// their work over omp_get_max_threads() threads when they run (convolutions fix theirs when made), and waking a
// sleeping thread costs far more than such a pass (docs/results/2026-12-01-two-threads.md).
class AloneIf {
 public:
  explicit AloneIf(bool alone) : saved_(omp_get_max_threads()), on_(alone && saved_ > 1) {
    if (on_) omp_set_num_threads(1);
  }
  ~AloneIf() {
    if (on_) omp_set_num_threads(saved_);
  }
  AloneIf(const AloneIf&) = delete;
  AloneIf& operator=(const AloneIf&) = delete;

 private:
  int saved_;
  bool on_;
};

// Elements of a memory descriptor.
int64_t elements(const memory::desc& md) { return static_cast<int64_t>(md.get_size() / sizeof(float)); }

// One primitive of a geometry, made on first use and kept: making one JIT-compiles code.
struct Prim {
  std::unique_ptr<dnnl::primitive> prim;
  std::unique_ptr<dnnl::primitive_desc_base> pd;
  std::string impl;
};

struct ConvPrims {
  // [0] plain layouts, [1] blocked; the forward descriptors are also the backward primitives' hints.
  std::unique_ptr<dnnl::convolution_forward::primitive_desc> fwdPd[2];
  Prim op[3];
};

std::unordered_map<std::string, ConvPrims>& convCache() {
  static std::unordered_map<std::string, ConvPrims> c;
  return c;
}

const dnnl::convolution_forward::primitive_desc& forwardPd(ConvPrims& c, const ConvGeom& g, bool blocked) {
  auto& slot = c.fwdPd[blocked ? 1 : 0];
  if (!slot) {
    dnnl::primitive_attr attr;
    dnnl::post_ops po;
    appendActivation(po, g.act, g.alpha);
    attr.set_post_ops(po);
    auto src = blocked ? anyOf(g.src()) : g.src();
    auto wei = blocked ? anyOf(g.wei()) : g.wei();
    auto dst = blocked ? anyOf(g.dst()) : g.dst();
    const auto prop = dnnl::prop_kind::forward_training;
    auto d = g.bias ? dnnl::convolution_forward::desc(prop, algorithm::convolution_direct, src, wei, g.bia(), dst,
                                                        g.strides(), g.dilates(), g.padL(), g.padR())
                    : dnnl::convolution_forward::desc(prop, algorithm::convolution_direct, src, wei, dst, g.strides(),
                                                        g.dilates(), g.padL(), g.padR());
    slot = std::make_unique<dnnl::convolution_forward::primitive_desc>(d, attr, cpuEngine());
  }
  return *slot;
}

// Makes the primitive for `op` (0 forward, 1 input gradient, 2 filter gradient) with plain or blocked layouts.
Prim makeConv(ConvPrims& c, const ConvGeom& g, int op, bool blocked) {
  auto& e = cpuEngine();
  const auto& hint = forwardPd(c, g, blocked);
  auto src = blocked ? anyOf(g.src()) : g.src();
  auto wei = blocked ? anyOf(g.wei()) : g.wei();
  auto dst = blocked ? anyOf(g.dst()) : g.dst();
  Prim p;
  if (op == 0) {
    auto pd = std::make_unique<dnnl::convolution_forward::primitive_desc>(hint);
    p.prim = std::make_unique<dnnl::convolution_forward>(*pd);
    p.pd = std::move(pd);
  } else if (op == 1) {
    dnnl::convolution_backward_data::desc d(algorithm::convolution_direct, src, wei, dst, g.strides(), g.dilates(),
                                            g.padL(), g.padR());
    auto pd = std::make_unique<dnnl::convolution_backward_data::primitive_desc>(d, e, hint);
    p.prim = std::make_unique<dnnl::convolution_backward_data>(*pd);
    p.pd = std::move(pd);
  } else {
    dnnl::convolution_backward_weights::desc d(algorithm::convolution_direct, src, wei, dst, g.strides(),
                                               g.dilates(), g.padL(), g.padR());
    auto pd = std::make_unique<dnnl::convolution_backward_weights::primitive_desc>(d, e, hint);
    p.prim = std::make_unique<dnnl::convolution_backward_weights>(*pd);
    p.pd = std::move(pd);
  }
  p.impl = p.pd->impl_info_str();
  return p;
}

Prim& convPrim(const ConvGeom& g, int op) {
  // A convolution primitive fixes its thread count when made: one set per count, so setThreads takes effect at once.
  ConvPrims& c = convCache()[g.key() + "@" + std::to_string(omp_get_max_threads())];
  Prim& p = c.op[op];
  if (!p.prim) {
    p = makeConv(c, g, op, blockedEverywhere());
    if (isReference(p.impl) && !blockedEverywhere()) {
      Prim b = makeConv(c, g, op, true);
      if (!isReference(b.impl)) p = std::move(b);
    }
  }
  return p;
}

// A tensor argument: TF.js's layout and where it lies; `out` when the primitive writes it.
struct Bind {
  int arg;
  memory::desc user;
  float* ptr;
  bool out;
};

// Executes a primitive on tensors in TF.js's layouts, reordering to and from the primitive's layouts where
// they differ (blocked layouts only).
void execute(const Prim& p, const std::vector<Bind>& binds) {
  auto& e = cpuEngine();
  auto& s = cpuStream();
  std::unordered_map<int, memory> args;
  std::vector<std::pair<memory, memory>> outs;
  for (const Bind& b : binds) {
    memory user(b.user, e, b.ptr);
    const memory::desc want = p.pd->query_md(dnnl::query::exec_arg_md, b.arg);
    if (want == b.user) {
      args.insert({b.arg, user});
      continue;
    }
    memory tmp(want, e);
    if (b.out) {
      outs.emplace_back(tmp, user);
    } else {
      AloneIf alone(threadsFor(elements(b.user)) == 1);
      dnnl::reorder(user, tmp).execute(s, user, tmp);
    }
    args.insert({b.arg, tmp});
  }
  p.prim->execute(s, args);
  for (auto& [tmp, user] : outs) {
    AloneIf alone(threadsFor(elements(user.get_desc())) == 1);
    dnnl::reorder(tmp, user).execute(s, tmp, user);
  }
  s.wait();
}

// The wasm heap as the addon sees it.
struct Heap {
  uint8_t* base = nullptr;
  size_t bytes = 0;
};

bool getHeap(napi_env env, napi_value v, Heap& h) {
  void* data = nullptr;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, v, &data, &len) != napi_ok) return false;
  h.base = static_cast<uint8_t*>(data);
  h.bytes = len;
  return true;
}

bool getParams(napi_env env, napi_value v, std::vector<double>& out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array)
    return false;
  const double* d = static_cast<const double*>(data);
  out.assign(d, d + length);
  return true;
}

napi_value str(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}

napi_value fail(napi_env env, const std::string& msg) {
  napi_throw_error(env, "GANTRY_NATIVE", msg.c_str());
  return nullptr;
}

// The two arguments of every entry point: the wasm heap and a Float64Array of parameters.
bool readArgs(napi_env env, napi_callback_info info, Heap& heap, std::vector<double>& params) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  return argc >= 2 && getHeap(env, argv[0], heap) && getParams(env, argv[1], params);
}

// Checks that [off, off + n floats) lies inside the heap and returns the pointer.
float* at(const Heap& h, double off, double n, bool& ok) {
  if (off < 0 || off + n * 4 > static_cast<double>(h.bytes)) {
    ok = false;
    return nullptr;
  }
  return reinterpret_cast<float*>(h.base + static_cast<size_t>(off));
}

bool byPatches(const ConvGeom& g, int op);
bool convByPatches(const ConvGeom& g, int op, float* x, float* w, float* dy);

// conv(heap, params): params = [op, xOff, wOff, yOff, bOff, N,H,W,Ci, Kh,Kw,Co, Ho,Wo, sh,sw, pt,pl,pb,pr, dh,dw,
// act, alpha]. op 0: y = act(conv(x, w) + b); op 1: x = input gradient from y (= dy) and w; op 2: w = filter
// gradient from x and y (= dy). Returns the oneDNN implementation's name.
napi_value Conv(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 24)
    return fail(env, "conv(heap: ArrayBuffer, params: Float64Array(24)) expected");
  const int op = static_cast<int>(p[0]);
  ConvGeom g{};
  memory::dim* dims[] = {&g.N, &g.H, &g.W, &g.Ci, &g.Kh, &g.Kw, &g.Co, &g.Ho, &g.Wo,
                         &g.sh, &g.sw, &g.pt, &g.pl, &g.pb, &g.pr, &g.dh, &g.dw};
  for (int i = 0; i < 17; i++) *dims[i] = static_cast<memory::dim>(p[5 + i]);
  g.act = op == 0 ? static_cast<int>(p[22]) : 0;
  g.alpha = op == 0 ? static_cast<float>(p[23]) : 0.f;
  g.bias = op == 0 && p[4] >= 0;
  bool ok = true;
  float* x = at(heap, p[1], double(g.N) * g.H * g.W * g.Ci, ok);
  float* w = at(heap, p[2], double(g.Kh) * g.Kw * g.Ci * g.Co, ok);
  float* y = at(heap, p[3], double(g.N) * g.Ho * g.Wo * g.Co, ok);
  float* b = g.bias ? at(heap, p[4], double(g.Co), ok) : nullptr;
  if (!ok) return fail(env, "conv: a tensor lies outside the heap");
  if (op < 0 || op > 2) return fail(env, "conv: op must be 0 (forward), 1 (input gradient) or 2 (filter gradient)");
  if (byPatches(g, op)) {
    if (!convByPatches(g, op, x, w, y)) return fail(env, "oneDNN sgemm failed in a convolution");
    return str(env, "gantry:patches+sgemm");
  }
  try {
    const Prim& prim = convPrim(g, op);
    if (op == 0) {
      std::vector<Bind> binds = {{DNNL_ARG_SRC, g.src(), x, false}, {DNNL_ARG_WEIGHTS, g.wei(), w, false},
                                 {DNNL_ARG_DST, g.dst(), y, true}};
      if (b) binds.push_back({DNNL_ARG_BIAS, g.bia(), b, false});
      execute(prim, binds);
    } else if (op == 1) {
      execute(prim, {{DNNL_ARG_DIFF_SRC, g.src(), x, true}, {DNNL_ARG_WEIGHTS, g.wei(), w, false},
                     {DNNL_ARG_DIFF_DST, g.dst(), y, false}});
    } else {
      execute(prim, {{DNNL_ARG_SRC, g.src(), x, false}, {DNNL_ARG_DIFF_WEIGHTS, g.wei(), w, true},
                     {DNNL_ARG_DIFF_DST, g.dst(), y, false}});
    }
    if (getenv("GANTRY_DEBUG") && isReference(prim.impl))
      fprintf(stderr, "gantry_native: op %d on %s runs oneDNN's reference code\n", op, g.key().c_str());
    return str(env, prim.impl);
  } catch (const dnnl::error& err) {
    return fail(env, std::string("oneDNN: ") + err.what());
  }
}

// Holds asynchronous signals back from the calling thread while it lives. oneDNN 2.6's sgemm (Debian's libdnnl)
// keeps data below the stack pointer, past the 128-byte red zone that a signal handler leaves alone: a signal
// handled on a thread inside it (Node's CPU profiler sends SIGPROF every millisecond under --cpu-prof) overwrites
// that data and corrupts the heap (docs/backend.md, "Signals"). Held signals arrive when the call returns. Faults
// (SIGSEGV and the like) are never held: a thread that faults with them blocked is killed without its handler.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t all;
    sigfillset(&all);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&all, s);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalsHeld() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t saved_;
};

// Starts OpenMP's pool of n threads with asynchronous signals held: a new thread keeps its creator's signal mask,
// so the pool's threads (which run oneDNN's and our parallel loops) never run a handler and every signal Node
// handles goes to its own threads.
void startPool(int n) {
  SignalsHeld held;
#pragma omp parallel num_threads(n)
  {
  }
}

// Multiply-adds of one product below which sgemm runs on the calling thread alone (about 0.1 ms of one core).
constexpr int64_t kAloneMacs = int64_t(1) << 22;

template <int ACT>
void biasActivateAs(float* c, int64_t M, int64_t N, const float* bias, int64_t biasSize, float alpha) {
  const int nt = threadsFor(M * N);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < M; r++) {
    float* row = c + r * N;
    if (!bias)
      for (int64_t j = 0; j < N; j++) row[j] = activate(row[j], ACT, alpha);
    else if (biasSize == 1)
      for (int64_t j = 0; j < N; j++) row[j] = activate(row[j] + bias[0], ACT, alpha);
    else
      for (int64_t j = 0; j < N; j++) row[j] = activate(row[j] + bias[j], ACT, alpha);
  }
}

// c[r][j] = act(c[r][j] + bias) over an M×N matrix; the bias (null: none) per column (biasSize N) or one scalar
// (biasSize 1). One instance per activation, so that the inner loops carry no switch.
void biasActivate(float* c, int64_t M, int64_t N, const float* bias, int64_t biasSize, int act, float alpha) {
  switch (act) {
    case kRelu: return biasActivateAs<kRelu>(c, M, N, bias, biasSize, alpha);
    case kRelu6: return biasActivateAs<kRelu6>(c, M, N, bias, biasSize, alpha);
    case kLeakyRelu: return biasActivateAs<kLeakyRelu>(c, M, N, bias, biasSize, alpha);
    case kElu: return biasActivateAs<kElu>(c, M, N, bias, biasSize, alpha);
    case kSigmoid: return biasActivateAs<kSigmoid>(c, M, N, bias, biasSize, alpha);
    default:
      if (bias) biasActivateAs<kLinear>(c, M, N, bias, biasSize, alpha);
  }
}

// matmul(heap, params): params = [aOff, bOff, cOff, biasOff, biasSize, batchA, batchB, M, N, K, transA, transB,
// act, alpha]. c[i] = act(op(a[i]) · op(b[i]) + bias) for each batch i; a batch of 1 broadcasts. The bias
// (biasOff < 0: none) is added along the last axis (biasSize N) or as a scalar (biasSize 1).
napi_value MatMul(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 14)
    return fail(env, "matmul(heap: ArrayBuffer, params: Float64Array(14)) expected");
  const int64_t batchA = p[5], batchB = p[6], M = p[7], N = p[8], K = p[9];
  const bool tA = p[10] != 0, tB = p[11] != 0;
  const int act = static_cast<int>(p[12]);
  const float alpha = static_cast<float>(p[13]);
  const int64_t batch = batchA > batchB ? batchA : batchB;
  if ((batchA != batch && batchA != 1) || (batchB != batch && batchB != 1))
    return fail(env, "matmul: batch sizes must match or be 1");
  bool ok = true;
  float* a = at(heap, p[0], double(batchA) * M * K, ok);
  float* b = at(heap, p[1], double(batchB) * K * N, ok);
  float* c = at(heap, p[2], double(batch) * M * N, ok);
  const int64_t biasSize = p[3] >= 0 ? static_cast<int64_t>(p[4]) : 0;
  float* bias = biasSize > 0 ? at(heap, p[3], double(biasSize), ok) : nullptr;
  if (!ok) return fail(env, "matmul: a tensor lies outside the heap");
  if (bias && biasSize != N && biasSize != 1) return fail(env, "matmul: bias size must be N or 1");
  AloneIf alone(M * N * K < kAloneMacs);
  SignalsHeld held;
  for (int64_t i = 0; i < batch; i++) {
    const float* ai = a + (batchA == 1 ? 0 : i * M * K);
    const float* bi = b + (batchB == 1 ? 0 : i * K * N);
    float* ci = c + i * M * N;
    dnnl_status_t s = dnnl_sgemm(tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, 1.f, ai, tA ? M : K, bi, tB ? K : N, 0.f,
                                 ci, N);
    if (s != dnnl_success) return fail(env, "oneDNN sgemm failed (status " + std::to_string(int(s)) + ")");
    biasActivate(ci, M, N, bias, biasSize, act, alpha);
  }
  return str(env, "dnnl_sgemm");
}

// Gradients of convolutions with few input channels (an image's first layer, a generator's last transposed one) as
// one sgemm over the gathered patches (im2col): the input gradient with one to four channels, the filter gradient
// with one. oneDNN's blocked layouts pad such channels to 8 and its gemm-based convolutions split the work image by
// image; at these shapes both ran 1.2–4× slower than this. Its forward pass, and its filter gradient with three
// channels, were as fast or faster, so they stay with it (docs/results/2026-12-01-thin-convolutions.md).
// GANTRY_CONV_PATCHES=0 sends everything to oneDNN, to compare.
constexpr int64_t kMaxPatchFloats = int64_t(1) << 24;  // 64 MiB of gathered patches at most

bool byPatches(const ConvGeom& g, int op) {
  // Read at every call, so that a benchmark can compare both paths in one process (bench/step-ab.mjs).
  const char* v = getenv("GANTRY_CONV_PATCHES");
  const bool on = !(v && v[0] == '0' && v[1] == 0);
  const bool thin = op == 1 ? g.Ci <= 4 : op == 2 && g.Ci == 1;
  return on && thin && g.N * g.Ho * g.Wo * g.Kh * g.Kw * g.Ci <= kMaxPatchFloats;
}

// Patch buffer of the calling thread, grown as needed and kept.
float* patchBuffer(int64_t floats) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) buf.resize(floats);
  return buf.data();
}

// The patches as a [Kh·Kw·Ci, N·Ho·Wo] matrix: row (ky, kx, c) holds, for every output position, the input value
// under that tap (0 over the padding). Rows run along the output's width, so the loops are long for one to four
// channels. dir 0 (im2col) fills it from x; dir 1 (col2im) sets x to 0 and adds every entry back into its pixel.
void patches(const ConvGeom& g, int dir, float* x, float* cols) {
  const int64_t Ci = g.Ci, M = g.N * g.Ho * g.Wo, imageSize = g.H * g.W * Ci, step = g.sw * Ci;
  // Per kx, the output columns whose input column lies inside the image: [oxLo, oxHi).
  std::vector<int64_t> oxLo(g.Kw), oxHi(g.Kw);
  for (int64_t kx = 0; kx < g.Kw; kx++) {
    int64_t lo = 0, hi = g.Wo;
    while (lo < hi && lo * g.sw - g.pl + kx * g.dw < 0) lo++;
    while (hi > lo && (hi - 1) * g.sw - g.pl + kx * g.dw >= g.W) hi--;
    oxLo[kx] = lo, oxHi[kx] = hi;
  }
  const int nt = threadsFor(M * g.Kh * g.Kw * Ci * 4);
  // Images never share a pixel, so col2im may run them on different threads.
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    float* image = x + n * imageSize;
    if (dir == 1) std::memset(image, 0, imageSize * sizeof(float));
    for (int64_t ky = 0; ky < g.Kh; ky++)
      for (int64_t kx = 0; kx < g.Kw; kx++)
        for (int64_t c = 0; c < Ci; c++) {
          float* plane = cols + ((ky * g.Kw + kx) * Ci + c) * M + n * g.Ho * g.Wo;
          const int64_t lo = oxLo[kx], hi = oxHi[kx];
          for (int64_t oy = 0; oy < g.Ho; oy++) {
            float* row = plane + oy * g.Wo;
            const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
            const bool inside = iy >= 0 && iy < g.H;
            if (dir == 0 && (!inside || lo > 0 || hi < g.Wo)) std::memset(row, 0, g.Wo * sizeof(float));
            if (!inside || lo >= hi) continue;
            float* pixel = image + (iy * g.W + lo * g.sw - g.pl + kx * g.dw) * Ci + c;  // under output column lo
            if (dir == 0)
              for (int64_t ox = lo; ox < hi; ox++) row[ox] = pixel[(ox - lo) * step];
            else
              for (int64_t ox = lo; ox < hi; ox++) pixel[(ox - lo) * step] += row[ox];
          }
        }
  }
}

// op 1: x = col2im(w · dyᵀ); op 2: w = patches · dy, with the filter in HWIO as the [Kh·Kw·Ci, Co] matrix and dy
// as [N·Ho·Wo, Co].
bool convByPatches(const ConvGeom& g, int op, float* x, float* w, float* dy) {
  const int64_t M = g.N * g.Ho * g.Wo, K = g.Kh * g.Kw * g.Ci, Co = g.Co;
  float* cols = patchBuffer(M * K);
  if (op == 2) patches(g, 0, x, cols);
  dnnl_status_t s;
  {
    AloneIf alone(M * K * Co < kAloneMacs);
    SignalsHeld held;
    s = op == 1 ? dnnl_sgemm('N', 'T', K, M, Co, 1.f, w, Co, dy, Co, 0.f, cols, M)
                : dnnl_sgemm('N', 'N', K, Co, M, 1.f, cols, M, dy, Co, 0.f, w, Co);
  }
  if (s != dnnl_success) return false;
  if (op == 1) patches(g, 1, x, cols);
  return true;
}

// blocks(heap, params): params = [dir, wholeOff, outer, wholeInner, n, (partOff, partInner) × n]. Concatenation
// along an axis is, per index of the axes before it, the parts' blocks one after another: dir 0 copies the parts
// into the whole (Concat), dir 1 the whole into the parts (Split). Element size 4 bytes (float32/int32).
napi_value Blocks(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() < 5 || p[4] < 1 ||
      p.size() != 5 + 2 * static_cast<size_t>(p[4]))
    return fail(env, "blocks(heap: ArrayBuffer, params: Float64Array(5 + 2n)) expected");
  const bool split = p[0] != 0;
  const int64_t outer = p[2], wholeInner = p[3], n = p[4];
  bool ok = true;
  float* whole = at(heap, p[1], double(outer) * wholeInner, ok);
  std::vector<float*> parts(n);
  std::vector<int64_t> inner(n);
  int64_t sum = 0;
  for (int64_t k = 0; k < n; k++) {
    inner[k] = static_cast<int64_t>(p[6 + 2 * k]);
    parts[k] = at(heap, p[5 + 2 * k], double(outer) * inner[k], ok);
    sum += inner[k];
  }
  if (!ok || sum != wholeInner) return fail(env, "blocks: sizes do not add up or lie outside the heap");
  for (int64_t o = 0; o < outer; o++) {
    float* w = whole + o * wholeInner;
    for (int64_t k = 0; k < n; k++) {
      float* part = parts[k] + o * inner[k];
      if (split)
        std::memcpy(part, w, inner[k] * 4);
      else
        std::memcpy(w, part, inner[k] * 4);
      w += inner[k];
    }
  }
  return str(env, split ? "split" : "concat");
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t n = 1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1)
    return fail(env, "setThreads(n: positive integer) expected");
  omp_set_num_threads(n);
  startPool(n);
  napi_value v;
  napi_create_int32(env, omp_get_max_threads(), &v);
  return v;
}

// Adam as TF.js computes it: m2 = b1 m + (1 - b1) g, v2 = b2 v + (1 - b2) g², x2 = x - lr m2/c1 / (sqrt(v2/c2) + eps).
// Separate tensors (restrict) and sqrt without errno (-fno-math-errno) let the compiler vectorise the loop.
void adamUpdate(int64_t n, const float* __restrict x, const float* __restrict m, const float* __restrict v,
                const float* __restrict g, float* __restrict x2, float* __restrict m2, float* __restrict v2, float lr,
                float b1, float b2, float eps, float c1, float c2) {
  const float a1 = 1 - b1, a2 = 1 - b2, step = lr / c1, inv2 = 1 / c2;
  for (int64_t i = 0; i < n; i++) {
    const float mi = b1 * m[i] + a1 * g[i];
    const float vi = b2 * v[i] + a2 * g[i] * g[i];
    m2[i] = mi;
    v2[i] = vi;
    x2[i] = x[i] - step * mi / (std::sqrt(vi * inv2) + eps);
  }
}

void lerp(int64_t n, const float* __restrict a, const float* __restrict b, float* __restrict out, float beta) {
  const float rest = 1 - beta;
  for (int64_t i = 0; i < n; i++) out[i] = beta * a[i] + rest * b[i];
}


// ---------------------------------------------------------------------------------------------------------------
// Memory-bound kernels on OpenMP threads: elementwise arithmetic, activations and their gradients, reductions,
// instance norm, reflection padding. Each splits its work into pieces of at least kGrain elements, so a small
// tensor runs on the calling thread alone (waking threads costs more than it saves there). The thread count is
// omp_set_num_threads's (setThreads), the same for oneDNN's primitives.

constexpr int64_t kGrain = 16384;

// Elements a thread must get before it is woken: waking a passively waiting thread costs tens of microseconds, as
// much as a memory-bound pass over tens of thousands of elements. GANTRY_NATIVE_MIN_WORK overrides it (the tests
// set it low, so that their small tensors still take the threaded paths).
int64_t perThread() {
  static const int64_t v = [] {
    const char* e = std::getenv("GANTRY_NATIVE_MIN_WORK");
    const long long n = e ? std::atoll(e) : 0;
    return n > 0 ? static_cast<int64_t>(n) : int64_t(1) << 18;
  }();
  return v;
}

// Threads for `work` elements: at most the configured count, at least 1, about perThread() elements each.
int threadsFor(int64_t work) {
  const int64_t t = omp_get_max_threads();
  const int64_t k = work / perThread();
  return static_cast<int>(k < 1 ? 1 : (k < t ? k : t));
}

// Binary ops of TF.js's kernels Add, Sub, Multiply, RealDiv, SquaredDifference, Maximum, Minimum.
enum BinOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kSqDiff = 4, kMax = 5, kMin = 6 };

template <int OP>
inline float binop(float a, float b) {
  if (OP == kAdd) return a + b;
  if (OP == kSub) return a - b;
  if (OP == kMul) return a * b;
  if (OP == kDiv) return a / b;
  if (OP == kSqDiff) return (a - b) * (a - b);
  if (OP == kMax) return (a != a || b != b) ? NAN : (a > b ? a : b);
  return (a != a || b != b) ? NAN : (a < b ? a : b);
}

// One contiguous run of the output: a and b advance by sa, sb (each 0 for a broadcast value, or 1).
template <int OP>
void binaryRun(float* __restrict y, const float* __restrict a, int64_t sa, const float* __restrict b, int64_t sb,
               int64_t len) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < len; i++) y[i] = binop<OP>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < len; i++) y[i] = binop<OP>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < len; i++) y[i] = binop<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < len; i++) y[i] = binop<OP>(a[i * sa], b[i * sb]);
  }
}

// y = a OP b over `dims` (row-major, innermost last), a and b read with element strides (0 where broadcast).
template <int OP>
void binaryAll(float* y, const float* a, const float* b, const std::vector<int64_t>& dims,
               const std::vector<int64_t>& sa, const std::vector<int64_t>& sb) {
  const int rank = static_cast<int>(dims.size());
  const int64_t inner = dims[rank - 1];
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= dims[d];
  // Work pieces: runs of at most kGrain elements of one row.
  const int64_t perRow = (inner + kGrain - 1) / kGrain;
  const int64_t pieces = rows * perRow;
  const int nt = threadsFor(rows * inner);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t p = 0; p < pieces; p++) {
    const int64_t row = p / perRow, part = p % perRow;
    int64_t rest = row, oa = 0, ob = 0;
    for (int d = rank - 2; d >= 0; d--) {
      const int64_t i = rest % dims[d];
      rest /= dims[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    const int64_t from = part * kGrain;
    const int64_t len = std::min(inner, from + kGrain) - from;
    binaryRun<OP>(y + row * inner + from, a + oa + from * sa[rank - 1], sa[rank - 1], b + ob + from * sb[rank - 1],
                  sb[rank - 1], len);
  }
}

// binary(heap, params): params = [op, yOff, aOff, bOff, rank, dims × rank, aStrides × rank, bStrides × rank].
// Strides are in elements, 0 along a broadcast axis; the caller merges axes so that rank stays small.
napi_value Binary(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() < 5 || p[4] < 1 || p.size() != 5 + 3 * static_cast<size_t>(p[4]))
    return fail(env, "binary(heap: ArrayBuffer, params: Float64Array(5 + 3 rank)) expected");
  const int op = static_cast<int>(p[0]);
  const int rank = static_cast<int>(p[4]);
  std::vector<int64_t> dims(rank), sa(rank), sb(rank);
  double n = 1, reachA = 1, reachB = 1;
  for (int d = 0; d < rank; d++) {
    dims[d] = static_cast<int64_t>(p[5 + d]);
    sa[d] = static_cast<int64_t>(p[5 + rank + d]);
    sb[d] = static_cast<int64_t>(p[5 + 2 * rank + d]);
    if (dims[d] < 1 || sa[d] < 0 || sb[d] < 0) return fail(env, "binary: bad dims or strides");
    n *= dims[d];
    reachA += double(dims[d] - 1) * sa[d];
    reachB += double(dims[d] - 1) * sb[d];
  }
  bool ok = true;
  float* y = at(heap, p[1], n, ok);
  const float* a = at(heap, p[2], reachA, ok);
  const float* b = at(heap, p[3], reachB, ok);
  if (!ok) return fail(env, "binary: a tensor lies outside the heap");
  switch (op) {
    case kAdd: binaryAll<kAdd>(y, a, b, dims, sa, sb); break;
    case kSub: binaryAll<kSub>(y, a, b, dims, sa, sb); break;
    case kMul: binaryAll<kMul>(y, a, b, dims, sa, sb); break;
    case kDiv: binaryAll<kDiv>(y, a, b, dims, sa, sb); break;
    case kSqDiff: binaryAll<kSqDiff>(y, a, b, dims, sa, sb); break;
    case kMax: binaryAll<kMax>(y, a, b, dims, sa, sb); break;
    case kMin: binaryAll<kMin>(y, a, b, dims, sa, sb); break;
    default: return fail(env, "binary: unknown op");
  }
  return str(env, "binary");
}

// Unary ops. The transcendental ones (tanh, sigmoid, exp, elu) run as oneDNN eltwise primitives (vectorised
// JIT code); the rest are plain loops the compiler vectorises.
enum UnOp {
  kURelu = 0, kULeaky = 1, kUTanh = 2, kUSigmoid = 3, kUSquare = 4, kUNeg = 5, kUAbs = 6, kURsqrt = 7,
  kUSqrt = 8, kUStep = 9, kUExp = 10, kUElu = 11, kURelu6 = 12
};

// Runs f(from, to) over [0, n) in pieces of kGrain elements on the threads. The loops inside take their arrays as
// __restrict parameters of a function (not captures of a lambda), so the compiler can vectorise them and turn the
// selects into blends instead of branches (a mispredicted branch per element was 20× slower).
template <typename F>
void forPieces(int64_t n, F f) {
  const int nt = threadsFor(n);
  const int64_t pieces = (n + kGrain - 1) / kGrain;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t p = 0; p < pieces; p++) f(p * kGrain, std::min(n, (p + 1) * kGrain));
}

// update(heap, params): elementwise updates of whole tensors in one pass (TF.js runs one pass per arithmetic op).
// op 0, Adam: params = [0, n, xOff, mOff, vOff, gOff, x2Off, m2Off, v2Off, lr, beta1, beta2, eps, 1 - beta1^t,
// 1 - beta2^t]. op 1, a weight average's step: params = [1, n, aOff, bOff, outOff, beta]; out = beta a + (1 - beta) b.
// Outputs are fresh tensors, never the inputs (the wasm backend may share an input's data with other tensors).
napi_value Update(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() < 2 || !(p[0] == 0 ? p.size() == 15 : p[0] == 1 && p.size() == 6))
    return fail(env, "update(heap: ArrayBuffer, params: Float64Array) expected: [0, n, 7 offsets, 6 numbers] or [1, n, 3 offsets, beta]");
  const int64_t n = static_cast<int64_t>(p[1]);
  const int count = p[0] == 0 ? 7 : 3;
  bool ok = n >= 0;
  float* t[7];
  for (int k = 0; k < count; k++) t[k] = at(heap, p[2 + k], n, ok);
  if (!ok) return fail(env, "update: a tensor lies outside the heap");
  // On the threads, in pieces (forPieces, below): every tensor is read and written once, so a big layer's update is
  // memory-bound work that more cores finish sooner.
  if (p[0] == 0) {
    const float lr = p[9], b1 = p[10], b2 = p[11], eps = p[12], c1 = p[13], c2 = p[14];
    forPieces(n, [=](int64_t a, int64_t b) {
      adamUpdate(b - a, t[0] + a, t[1] + a, t[2] + a, t[3] + a, t[4] + a, t[5] + a, t[6] + a, lr, b1, b2, eps, c1, c2);
    });
    return str(env, "adam");
  }
  const float beta = p[5];
  forPieces(n, [=](int64_t a, int64_t b) { lerp(b - a, t[0] + a, t[1] + a, t[2] + a, beta); });
  return str(env, "lerp");
}

#define GANTRY_MAP1(NAME, EXPR)                                                                  \
  void NAME(const float* __restrict x, float* __restrict y, float alpha, int64_t i0, int64_t i1) { \
    (void)alpha;                                                                                 \
    for (int64_t i = i0; i < i1; i++) {                                                          \
      const float v = x[i];                                                                      \
      y[i] = (EXPR);                                                                             \
    }                                                                                            \
  }
GANTRY_MAP1(mapRelu, v < 0 ? 0.f : v)
GANTRY_MAP1(mapRelu6, v < 0 ? 0.f : (v > 6 ? 6.f : v))
GANTRY_MAP1(mapLeaky, v < 0 ? alpha * v : v)
GANTRY_MAP1(mapSquare, v * v)
GANTRY_MAP1(mapNeg, -v)
GANTRY_MAP1(mapAbs, std::fabs(v))
GANTRY_MAP1(mapRsqrt, 1.f / std::sqrt(v))
GANTRY_MAP1(mapSqrt, std::sqrt(v))
GANTRY_MAP1(mapStep, v != v ? v : (v > 0 ? 1.f : alpha))
#undef GANTRY_MAP1

#define GANTRY_MAP2(NAME, EXPR)                                                                                 \
  void NAME(const float* __restrict dy, const float* __restrict v, float* __restrict dx, float alpha, int64_t i0, \
            int64_t i1) {                                                                                       \
    (void)alpha;                                                                                                \
    for (int64_t i = i0; i < i1; i++) {                                                                         \
      const float g = dy[i], u = v[i];                                                                          \
      dx[i] = (EXPR);                                                                                           \
    }                                                                                                           \
  }
// NaN inputs give NaN gradients, as TF.js's dy · step(x) does: a diverging run must show up as a NaN loss.
GANTRY_MAP2(gradRelu, u != u ? u : (u > 0 ? g : 0.f))
GANTRY_MAP2(gradLeaky, u != u ? u : (u > 0 ? g : alpha * g))
GANTRY_MAP2(gradTanh, (1.f - u * u) * g)
GANTRY_MAP2(gradSigmoid, g * (u * (1.f - u)))
#undef GANTRY_MAP2

std::unordered_map<std::string, Prim>& eltwiseCache() {
  static std::unordered_map<std::string, Prim> c;
  return c;
}

const std::string& eltwise(algorithm alg, float alpha, float beta, int64_t n, float* x, float* y) {
  char key[96];
  snprintf(key, sizeof key, "%d,%g,%g,%ld", static_cast<int>(alg), alpha, beta, static_cast<long>(n));
  Prim& p = eltwiseCache()[key];
  memory::desc md({n}, dt::f32, tag::x);
  if (!p.prim) {
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, md, alpha, beta);
    auto pd = std::make_unique<dnnl::eltwise_forward::primitive_desc>(d, cpuEngine());
    p.prim = std::make_unique<dnnl::eltwise_forward>(*pd);
    p.impl = pd->impl_info_str();
    p.pd = std::move(pd);
  }
  auto& e = cpuEngine();
  memory src(md, e, x), dst(md, e, y);
  AloneIf alone(threadsFor(n) == 1);
  p.prim->execute(cpuStream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  cpuStream().wait();
  return p.impl;
}

// unary(heap, params): params = [op, n, xOff, yOff, alpha]; alpha: LeakyRelu's slope, Step's value for x ≤ 0.
napi_value Unary(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 5) return fail(env, "unary(heap: ArrayBuffer, params: Float64Array(5)) expected");
  const int op = static_cast<int>(p[0]);
  const int64_t n = static_cast<int64_t>(p[1]);
  bool ok = n >= 0;
  float* __restrict x = at(heap, p[2], n, ok);
  float* __restrict y = at(heap, p[3], n, ok);
  if (!ok) return fail(env, "unary: a tensor lies outside the heap");
  const float alpha = static_cast<float>(p[4]);
  try {
    switch (op) {
      case kURelu: forPieces(n, [=](int64_t a, int64_t b) { mapRelu(x, y, alpha, a, b); }); break;
      case kURelu6: forPieces(n, [=](int64_t a, int64_t b) { mapRelu6(x, y, alpha, a, b); }); break;
      case kULeaky: forPieces(n, [=](int64_t a, int64_t b) { mapLeaky(x, y, alpha, a, b); }); break;
      case kUSquare: forPieces(n, [=](int64_t a, int64_t b) { mapSquare(x, y, alpha, a, b); }); break;
      case kUNeg: forPieces(n, [=](int64_t a, int64_t b) { mapNeg(x, y, alpha, a, b); }); break;
      case kUAbs: forPieces(n, [=](int64_t a, int64_t b) { mapAbs(x, y, alpha, a, b); }); break;
      case kURsqrt: forPieces(n, [=](int64_t a, int64_t b) { mapRsqrt(x, y, alpha, a, b); }); break;
      case kUSqrt: forPieces(n, [=](int64_t a, int64_t b) { mapSqrt(x, y, alpha, a, b); }); break;
      case kUStep: forPieces(n, [=](int64_t a, int64_t b) { mapStep(x, y, alpha, a, b); }); break;
      case kUTanh: return str(env, eltwise(algorithm::eltwise_tanh, 0.f, 0.f, n, x, y));
      case kUSigmoid: return str(env, eltwise(algorithm::eltwise_logistic, 0.f, 0.f, n, x, y));
      case kUExp: return str(env, eltwise(algorithm::eltwise_exp, 0.f, 0.f, n, x, y));
      case kUElu: return str(env, eltwise(algorithm::eltwise_elu, 1.f, 0.f, n, x, y));
      default: return fail(env, "unary: unknown op");
    }
  } catch (const dnnl::error& err) {
    return fail(env, std::string("oneDNN: ") + err.what());
  }
  return str(env, "unary");
}

// actGrad(heap, params): params = [op, n, dyOff, vOff, dxOff, alpha]: the gradient of an activation in one pass.
// op 0 relu and 1 leaky relu read the input x (v); 2 tanh and 3 sigmoid read the output y (v).
napi_value ActGrad(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 6) return fail(env, "actGrad(heap: ArrayBuffer, params: Float64Array(6)) expected");
  const int op = static_cast<int>(p[0]);
  const int64_t n = static_cast<int64_t>(p[1]);
  bool ok = n >= 0;
  const float* __restrict dy = at(heap, p[2], n, ok);
  const float* __restrict v = at(heap, p[3], n, ok);
  float* __restrict dx = at(heap, p[4], n, ok);
  if (!ok) return fail(env, "actGrad: a tensor lies outside the heap");
  const float alpha = static_cast<float>(p[5]);
  switch (op) {
    case 0: forPieces(n, [=](int64_t a, int64_t b) { gradRelu(dy, v, dx, alpha, a, b); }); break;
    case 1: forPieces(n, [=](int64_t a, int64_t b) { gradLeaky(dy, v, dx, alpha, a, b); }); break;
    case 2: forPieces(n, [=](int64_t a, int64_t b) { gradTanh(dy, v, dx, alpha, a, b); }); break;
    case 3: forPieces(n, [=](int64_t a, int64_t b) { gradSigmoid(dy, v, dx, alpha, a, b); }); break;
    default: return fail(env, "actGrad: unknown op");
  }
  return str(env, "actGrad");
}

// minibatchStddev(heap, params): the minibatch standard-deviation feature (Karras et al. 2018) of x [B, F], groups
// of g consecutive rows. dir 0: params = [0, B, F, g, xOff, -1, yOff]; y [B, F + 1] is x with one more column, per
// group the mean over features of √(variance over the group + 1e-8). dir 1: params = [1, B, F, g, xOff, dyOff,
// dxOff]; dx [B, F] = dy[:, :F] + (Σ over the group of dy[:, F]) · (x − mean) / (g · F · σ). Statistics in double.
// TF.js composes about a dozen small ops forward and more backward, each with its own dispatch.
constexpr double kStddevEpsilon = 1e-8;

napi_value MinibatchStddev(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 7)
    return fail(env, "minibatchStddev(heap: ArrayBuffer, params: Float64Array(7)) expected");
  const int dir = static_cast<int>(p[0]);
  const int64_t B = static_cast<int64_t>(p[1]), F = static_cast<int64_t>(p[2]), g = static_cast<int64_t>(p[3]);
  if ((dir != 0 && dir != 1) || B < 1 || F < 1 || g < 1 || B % g != 0)
    return fail(env, "minibatchStddev: expected dir 0 or 1, and a group size that divides the batch");
  bool ok = true;
  const float* __restrict x = at(heap, p[4], B * F, ok);
  const float* __restrict dy = dir ? at(heap, p[5], B * (F + 1), ok) : nullptr;
  float* __restrict out = at(heap, p[6], dir ? B * F : B * (F + 1), ok);
  if (!ok) return fail(env, "minibatchStddev: a tensor lies outside the heap");
  const int64_t groups = B / g;
  const int nt = threadsFor(B * F);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && groups > 1)
  for (int64_t k = 0; k < groups; k++) {
    const float* xs = x + k * g * F;
    double total = 0, upstream = 0;
    if (dir) for (int64_t r = 0; r < g; r++) upstream += dy[(k * g + r) * (F + 1) + F];
    for (int64_t f = 0; f < F; f++) {
      double mean = 0, var = 0;
      for (int64_t r = 0; r < g; r++) mean += xs[r * F + f];
      mean /= static_cast<double>(g);
      for (int64_t r = 0; r < g; r++) var += (xs[r * F + f] - mean) * (xs[r * F + f] - mean);
      const double sigma = std::sqrt(var / static_cast<double>(g) + kStddevEpsilon);
      total += sigma;
      if (dir) {
        const double coef = upstream / (static_cast<double>(g) * static_cast<double>(F) * sigma);
        for (int64_t r = 0; r < g; r++) {
          const int64_t row = k * g + r;
          out[row * F + f] = static_cast<float>(dy[row * (F + 1) + f] + coef * (xs[r * F + f] - mean));
        }
      }
    }
    if (!dir) {
      const float feature = static_cast<float>(total / static_cast<double>(F));
      for (int64_t r = 0; r < g; r++) {
        const int64_t row = k * g + r;
        std::copy(xs + r * F, xs + (r + 1) * F, out + row * (F + 1));
        out[row * (F + 1) + F] = feature;
      }
    }
  }
  return str(env, "minibatchStddev");
}

// Sums over r of x[o, r, i] into acc[i] (i < inner), eight rows' partial sums kept apart for precision and speed.
void sumRows(const float* x, int64_t r0, int64_t r1, int64_t inner, double* acc) {
  if (inner == 1) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8)
      for (int l = 0; l < 8; l++) lane[l] += x[r + l];
    for (; r < r1; r++) lane[0] += x[r];
    for (int l = 0; l < 8; l++) acc[0] += lane[l];
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    const float* row = x + r * inner;
    for (int64_t i = 0; i < inner; i++) acc[i] += row[i];
  }
}

// reduce(heap, params): params = [op (0 sum, 1 mean), outer, rows, inner, xOff, yOff]: y[o, i] = Σ_r x[o, r, i]
// (÷ rows for the mean), summed in double.
napi_value Reduce(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 6) return fail(env, "reduce(heap: ArrayBuffer, params: Float64Array(6)) expected");
  const int op = static_cast<int>(p[0]);
  const int64_t outer = p[1], rows = p[2], inner = p[3];
  bool ok = outer >= 1 && rows >= 1 && inner >= 1 && (op == 0 || op == 1);
  const float* x = at(heap, p[4], double(outer) * rows * inner, ok);
  float* y = at(heap, p[5], double(outer) * inner, ok);
  if (!ok) return fail(env, "reduce: bad sizes, or a tensor lies outside the heap");
  const double scale = op == 1 ? 1.0 / rows : 1.0;
  const int64_t total = outer * rows * inner;
  const int nt = threadsFor(total);
  // Row chunks per output block: split the rows only when the outer blocks alone cannot feed the threads.
  int64_t chunks = 1;
  if (outer < nt) {
    chunks = (nt + outer - 1) / outer;
    const int64_t maxChunks = std::max<int64_t>(1, rows * inner / kGrain);
    chunks = std::min(std::min(chunks, maxChunks), rows);
  }
  std::vector<double> part(static_cast<size_t>(outer * chunks * inner), 0.0);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t w = 0; w < outer * chunks; w++) {
    const int64_t o = w / chunks, c = w % chunks;
    const int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
    sumRows(x + o * rows * inner, r0, r1, inner, part.data() + w * inner);
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double s = 0;
      for (int64_t c = 0; c < chunks; c++) s += part[(o * chunks + c) * inner + i];
      y[o * inner + i] = static_cast<float>(s * scale);
    }
  return str(env, "reduce");
}

// Two sums per (sample, channel) over the HW pixels of NHWC data, by pixel chunks on the threads, each chunk's
// partial sums in double and the chunks added in order: terms(n, q, c) gives pixel q's (0 ≤ q < N·HW, of sample n)
// two terms for channel c. sum1 and sum2 are [N·C].
template <class Terms>
void channelSums(int64_t N, int64_t HW, int64_t C, Terms terms, std::vector<double>& sum1, std::vector<double>& sum2) {
  const int64_t per = std::max<int64_t>(1, std::min(HW, kGrain / std::max<int64_t>(C, 1)));
  const int64_t chunks = (HW + per - 1) / per;
  std::vector<double> part(static_cast<size_t>(N * chunks * 2 * C), 0.0);
  const int nt = threadsFor(N * HW * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t w = 0; w < N * chunks; w++) {
    const int64_t n = w / chunks, c0 = (w % chunks) * per, c1 = std::min(HW, c0 + per);
    double* s1 = part.data() + w * 2 * C;
    double* s2 = s1 + C;
    for (int64_t q = n * HW + c0; q < n * HW + c1; q++)
      for (int64_t c = 0; c < C; c++) {
        const auto [t1, t2] = terms(n, q, c);
        s1[c] += t1;
        s2[c] += t2;
      }
  }
  sum1.assign(N * C, 0.0);
  sum2.assign(N * C, 0.0);
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t k = 0; k < chunks; k++) {
        sum1[n * C + c] += part[((n * chunks + k) * 2) * C + c];
        sum2[n * C + c] += part[((n * chunks + k) * 2 + 1) * C + c];
      }
}

// Per-(sample, channel) mean and 1/√(variance + ε) of NHWC x over its HW pixels; sums in double, shifted by the
// first pixel so that a large mean does not cancel the variance.
void instanceStats(const float* x, int64_t N, int64_t HW, int64_t C, double eps, std::vector<double>& mean,
                   std::vector<double>& rstd, std::vector<double>* variance = nullptr) {
  std::vector<double> sum, sumSq;
  const auto shifted = [&](int64_t n, int64_t q, int64_t c) {
    const double d = double(x[q * C + c]) - x[n * HW * C + c];
    return std::pair<double, double>(d, d * d);
  };
  channelSums(N, HW, C, shifted, sum, sumSq);
  mean.assign(N * C, 0.0);
  rstd.assign(N * C, 0.0);
  if (variance) variance->assign(N * C, 0.0);
  for (int64_t k = 0; k < N * C; k++) {
    const double m = sum[k] / HW;
    const double d2 = sumSq[k] / HW - m * m;
    const double var = d2 < 0 ? 0.0 : d2;  // NaN stays NaN
    mean[k] = m + x[(k / C) * HW * C + k % C];
    rstd[k] = 1.0 / std::sqrt(var + eps);
    if (variance) (*variance)[k] = var;
  }
}

// The statistics as the float values the passes over x use.
void floatStats(const std::vector<double>& mean, const std::vector<double>& rstd, std::vector<float>& m32,
                std::vector<float>& r32) {
  m32.assign(mean.begin(), mean.end());
  r32.assign(rstd.begin(), rstd.end());
}

// Σ dy and Σ dy·x̂ per (sample, channel) of NHWC x and dy over the HW pixels, x̂ = (x − m) · r on the float
// statistics: sumDy[n·C + c] and sumDyXh[n·C + c].
void gradientSums(const float* x, const float* dy, int64_t N, int64_t HW, int64_t C, const std::vector<float>& m32,
                  const std::vector<float>& r32, std::vector<double>& sumDy, std::vector<double>& sumDyXh) {
  const auto terms = [&](int64_t n, int64_t q, int64_t c) {
    const float g = dy[q * C + c];
    const float xh = (x[q * C + c] - m32[n * C + c]) * r32[n * C + c];
    return std::pair<double, double>(g, double(g) * xh);
  };
  channelSums(N, HW, C, terms, sumDy, sumDyXh);
}

// instanceNorm(heap, params): params = [dir, N, HW, C, xOff, dyOff, outOff, eps]. NHWC, each (sample, channel)
// normalised over its HW pixels. dir 0: out = (x − mean) · rstd. dir 1: out = dx, the gradient from dy:
// rstd · (dy − mean(dy) − x̂ · mean(dy · x̂)), x̂ the normalised x (statistics recomputed from x).
napi_value InstanceNorm(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 8) return fail(env, "instanceNorm(heap: ArrayBuffer, params: Float64Array(8)) expected");
  const int dir = static_cast<int>(p[0]);
  const int64_t N = p[1], HW = p[2], C = p[3];
  const double n = double(N) * HW * C;
  bool ok = N >= 1 && HW >= 1 && C >= 1 && dir >= 0 && dir <= 1;
  const float* x = at(heap, p[4], n, ok);
  const float* dy = dir == 1 ? at(heap, p[5], n, ok) : nullptr;
  float* out = at(heap, p[6], n, ok);
  if (!ok) return fail(env, "instanceNorm: bad sizes, or a tensor lies outside the heap");
  std::vector<double> mean, rstd;
  instanceStats(x, N, HW, C, p[7], mean, rstd);
  std::vector<float> m32, r32;
  floatStats(mean, rstd, m32, r32);
  const int nt = threadsFor(static_cast<int64_t>(n));
  const int64_t rows = N * HW;
  if (dir == 0) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t q = 0; q < rows; q++) {
      const float* m = m32.data() + (q / HW) * C;
      const float* r = r32.data() + (q / HW) * C;
      for (int64_t c = 0; c < C; c++) out[q * C + c] = (x[q * C + c] - m[c]) * r[c];
    }
    return str(env, "instanceNorm");
  }
  std::vector<double> sumDy, sumDyXh;
  gradientSums(x, dy, N, HW, C, m32, r32, sumDy, sumDyXh);
  std::vector<float> a32(N * C), b32(N * C);  // dx = r · (dy − a − x̂ · b)
  for (int64_t k = 0; k < N * C; k++) {
    a32[k] = static_cast<float>(sumDy[k] / HW);
    b32[k] = static_cast<float>(sumDyXh[k] / HW);
  }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t q = 0; q < rows; q++) {
    const int64_t o = (q / HW) * C;
    const float *m = m32.data() + o, *r = r32.data() + o, *a = a32.data() + o, *b = b32.data() + o;
    for (int64_t c = 0; c < C; c++) {
      const float xh = (x[q * C + c] - m[c]) * r[c];
      out[q * C + c] = r[c] * (dy[q * C + c] - a[c] - xh * b[c]);
    }
  }
  return str(env, "instanceNormGrad");
}

// batchNorm(heap, params): batch norm in training of G batches stacked along the first axis, each P pixels of C
// channels (NHWC), each normalised by its own statistics (instance norm with N = G, HW = P), then scaled by γ and
// shifted by β (per channel). dir 0: params = [0, G, P, C, xOff, γOff, βOff, meanOff, varOff, yOff, mean2Off,
// var2Off, eps, decay]: y, and the running averages (mean, var) updated by each group in turn as TF.js does,
// v ← v − (v − batch value) · decay, with the biased variance. dir 1: params = [1, G, P, C, xOff, dyOff, γOff,
// dxOff, dγOff, eps], each output computed only where its offset is not negative: the gradients of Σ dy·y,
// dx = γ·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)) per group and dγ = Σ dy·x̂ over every group (β's, Σ dy, is a plain
// sum). Float arithmetic as TF.js's composition (x̂ first, then · γ + β).
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() < 10 || p.size() != (p[0] == 0 ? 14u : 10u))
    return fail(env, "batchNorm(heap: ArrayBuffer, params: Float64Array(14 forward, 10 gradient)) expected");
  const bool forward = p[0] == 0;
  const int64_t G = p[1], P = p[2], C = p[3];
  const double n = double(G) * P * C;
  bool ok = G >= 1 && P >= 1 && C >= 1;
  const float* x = at(heap, p[4], n, ok);
  const double eps = forward ? p[12] : p[9];
  if (!ok) return fail(env, "batchNorm: bad sizes, or a tensor lies outside the heap");
  std::vector<double> mean, rstd, variance;
  instanceStats(x, G, P, C, eps, mean, rstd, forward ? &variance : nullptr);
  std::vector<float> m32, r32;
  floatStats(mean, rstd, m32, r32);
  const int nt = threadsFor(static_cast<int64_t>(n));
  const int64_t rows = G * P;
  if (forward) {
    const float* gamma = at(heap, p[5], double(C), ok);
    const float* beta = at(heap, p[6], double(C), ok);
    const float* runMean = at(heap, p[7], double(C), ok);
    const float* runVar = at(heap, p[8], double(C), ok);
    float* y = at(heap, p[9], n, ok);
    float* runMean2 = at(heap, p[10], double(C), ok);
    float* runVar2 = at(heap, p[11], double(C), ok);
    if (!ok) return fail(env, "batchNorm: a tensor lies outside the heap");
    const float decay = static_cast<float>(p[13]);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t q = 0; q < rows; q++) {
      const float* m = m32.data() + (q / P) * C;
      const float* r = r32.data() + (q / P) * C;
      for (int64_t c = 0; c < C; c++) {
        const float xh = (x[q * C + c] - m[c]) * r[c];
        y[q * C + c] = xh * gamma[c] + beta[c];
      }
    }
    for (int64_t c = 0; c < C; c++) {
      float mu = runMean[c], var = runVar[c];
      for (int64_t g = 0; g < G; g++) {
        mu = mu - (mu - m32[g * C + c]) * decay;
        var = var - (var - static_cast<float>(variance[g * C + c])) * decay;
      }
      runMean2[c] = mu;
      runVar2[c] = var;
    }
    return str(env, "batchNorm");
  }
  const float* dy = at(heap, p[5], n, ok);
  const float* gamma = at(heap, p[6], double(C), ok);
  float* dx = p[7] < 0 ? nullptr : at(heap, p[7], n, ok);
  float* dgamma = p[8] < 0 ? nullptr : at(heap, p[8], double(C), ok);
  if (!ok) return fail(env, "batchNorm: a tensor lies outside the heap");
  std::vector<double> sumDy, sumDyXh;
  gradientSums(x, dy, G, P, C, m32, r32, sumDy, sumDyXh);
  std::vector<float> a32(G * C), b32(G * C);  // dx = γ·r · (dy − a − x̂ · b)
  for (int64_t k = 0; k < G * C; k++) {
    a32[k] = static_cast<float>(sumDy[k] / P);
    b32[k] = static_cast<float>(sumDyXh[k] / P);
  }
  for (int64_t c = 0; dgamma && c < C; c++) {  // over every group
    double dg = 0;
    for (int64_t g = 0; g < G; g++) dg += sumDyXh[g * C + c];
    dgamma[c] = static_cast<float>(dg);
  }
  if (!dx) return str(env, "batchNormGrad");
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t q = 0; q < rows; q++) {
    const int64_t o = (q / P) * C;
    const float *m = m32.data() + o, *r = r32.data() + o, *a = a32.data() + o, *b = b32.data() + o;
    for (int64_t c = 0; c < C; c++) {
      const float xh = (x[q * C + c] - m[c]) * r[c];
      dx[q * C + c] = gamma[c] * r[c] * (dy[q * C + c] - a[c] - xh * b[c]);
    }
  }
  return str(env, "batchNormGrad");
}

// Source index of padded index i along an axis of n elements padded by `before` (reflect: the edge is not
// repeated; symmetric: it is). One reflection suffices: TF.js limits the padding to n − 1 (reflect) or n.
inline int64_t mirrorIndex(int64_t i, int64_t before, int64_t n, bool symmetric) {
  int64_t s = i - before;
  if (s < 0) s = symmetric ? -s - 1 : -s;
  if (s >= n) s = symmetric ? 2 * n - 1 - s : 2 * n - 2 - s;
  return s;
}

// mirrorPad(heap, params): params = [dir, N, H, W, C, top, bottom, left, right, symmetric, xOff, yOff] (NHWC,
// padding of H and W). dir 0: y (padded) from x. dir 1: x = the gradient from y = dy: every padded pixel's
// gradient added onto the pixel it copied.
napi_value MirrorPad(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  if (!readArgs(env, info, heap, p) || p.size() != 12) return fail(env, "mirrorPad(heap: ArrayBuffer, params: Float64Array(12)) expected");
  const int dir = static_cast<int>(p[0]);
  const int64_t N = p[1], H = p[2], W = p[3], C = p[4], top = p[5], bottom = p[6], left = p[7], right = p[8];
  const bool sym = p[9] != 0;
  const int64_t limit = sym ? 0 : 1;
  bool ok = N >= 1 && H >= 1 && W >= 1 && C >= 1 && top >= 0 && bottom >= 0 && left >= 0 && right >= 0 &&
            top <= H - limit && bottom <= H - limit && left <= W - limit && right <= W - limit;
  const int64_t Hp = H + top + bottom, Wp = W + left + right;
  float* x = at(heap, p[10], double(N) * H * W * C, ok);
  float* y = at(heap, p[11], double(N) * Hp * Wp * C, ok);
  if (!ok) return fail(env, "mirrorPad: bad sizes or paddings, or a tensor lies outside the heap");
  std::vector<int64_t> col(Wp);
  for (int64_t j = 0; j < Wp; j++) col[j] = mirrorIndex(j, left, W, sym);
  if (dir == 0) {
    const int nt = threadsFor(N * Hp * Wp * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t q = 0; q < N * Hp; q++) {
      const int64_t n = q / Hp, i = q % Hp;
      const float* src = x + (n * H + mirrorIndex(i, top, H, sym)) * W * C;
      float* dst = y + q * Wp * C;
      std::memcpy(dst + left * C, src, W * C * 4);
      for (int64_t j = 0; j < left; j++) std::memcpy(dst + j * C, src + col[j] * C, C * 4);
      for (int64_t j = left + W; j < Wp; j++) std::memcpy(dst + j * C, src + col[j] * C, C * 4);
    }
    return str(env, "mirrorPad");
  }
  // Gradient: source row r collects the padded rows that copy it (itself and at most one reflection per side).
  std::vector<std::vector<int64_t>> from(H);
  for (int64_t i = 0; i < Hp; i++) from[mirrorIndex(i, top, H, sym)].push_back(i);
  const int nt = threadsFor(N * Hp * Wp * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t q = 0; q < N * H; q++) {
    const int64_t n = q / H, r = q % H;
    float* dst = x + q * W * C;
    bool first = true;
    for (int64_t i : from[r]) {
      const float* src = y + (n * Hp + i) * Wp * C;
      if (first) {
        std::memcpy(dst, src + left * C, W * C * 4);
        first = false;
      } else {
        for (int64_t k = 0; k < W * C; k++) dst[k] += src[left * C + k];
      }
      for (int64_t j = 0; j < Wp; j++) {
        if (j >= left && j < left + W) continue;
        float* d = dst + col[j] * C;
        const float* s = src + j * C;
        for (int64_t c = 0; c < C; c++) d[c] += s[c];
      }
    }
  }
  return str(env, "mirrorPadGrad");
}

// box(heap, params): copies a box of elements between two dense row-major tensors of the same rank (≤ 8), as TF.js's
// Slice (the box at `begin` of x into all of y) and PadV2 (all of x into y at `before`, the rest of y set to
// `value`) need. params = [op (0 slice, 1 pad), rank, xShape × rank, yShape × rank, at × rank, xOff, yOff, value].
// Trailing dimensions that both tensors hold whole merge into one contiguous run, so each row is one memcpy.
napi_value Box(napi_env env, napi_callback_info info) {
  Heap heap;
  std::vector<double> p;
  constexpr int kMaxRank = 8;
  if (!readArgs(env, info, heap, p) || p.size() < 2 || p[1] < 1 || p[1] > kMaxRank || p.size() != 5 + 3 * p[1])
    return fail(env, "box(heap: ArrayBuffer, params: Float64Array) expected: [op, rank, xShape, yShape, at, xOff, yOff, value]");
  const bool pad = p[0] == 1;
  const int rank = static_cast<int>(p[1]);
  int64_t xs[kMaxRank], ys[kMaxRank], pos[kMaxRank], box[kMaxRank];
  int64_t nx = 1, ny = 1;
  for (int d = 0; d < rank; d++) {
    xs[d] = static_cast<int64_t>(p[2 + d]);
    ys[d] = static_cast<int64_t>(p[2 + rank + d]);
    pos[d] = static_cast<int64_t>(p[2 + 2 * rank + d]);
    box[d] = pad ? xs[d] : ys[d];
    const int64_t outer = pad ? ys[d] : xs[d];
    if (xs[d] < 1 || ys[d] < 1 || pos[d] < 0 || pos[d] + box[d] > outer) return fail(env, "box: the box lies outside the tensor");
    nx *= xs[d];
    ny *= ys[d];
  }
  bool ok = true;
  const float* __restrict x = at(heap, p[2 + 3 * rank], nx, ok);
  float* __restrict y = at(heap, p[3 + 3 * rank], ny, ok);
  if (!ok) return fail(env, "box: a tensor lies outside the heap");
  // Strides, then merge each dimension into the one after it while that one is held whole by both tensors.
  int64_t xstride[kMaxRank], ystride[kMaxRank];
  xstride[rank - 1] = ystride[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; d--) {
    xstride[d] = xstride[d + 1] * xs[d + 1];
    ystride[d] = ystride[d + 1] * ys[d + 1];
  }
  int last = rank - 1;
  int64_t run = box[last];
  while (last > 0 && box[last] == xs[last] && box[last] == ys[last]) {
    last--;
    run *= box[last];
  }
  // The run starts at dimension `last`; the rows are the boxes' positions over dimensions 0 … last − 1.
  int64_t rows = 1;
  for (int d = 0; d < last; d++) rows *= box[d];
  const float value = static_cast<float>(p[4 + 3 * rank]);
  if (pad) forPieces(ny, [=](int64_t a, int64_t b) { std::fill(y + a, y + b, value); });
  const int nt = threadsFor(rows * run);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) {
    int64_t xo = 0, yo = 0, q = r;
    for (int d = last - 1; d >= 0; d--) {
      const int64_t i = q % box[d];
      q /= box[d];
      xo += (pad ? i : i + pos[d]) * xstride[d];
      yo += (pad ? i + pos[d] : i) * ystride[d];
    }
    xo += (pad ? 0 : pos[last]) * xstride[last];
    yo += (pad ? pos[last] : 0) * ystride[last];
    std::memcpy(y + yo, x + xo, run * sizeof(float));
  }
  return str(env, pad ? "pad" : "slice");
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value v;
  napi_create_int32(env, omp_get_max_threads(), &v);
  return v;
}

napi_value Version(napi_env env, napi_callback_info) {
  const dnnl_version_t* v = dnnl_version();
  char buf[64];
  snprintf(buf, sizeof buf, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  return str(env, buf);
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv", nullptr, Conv, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"matmul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"blocks", nullptr, Blocks, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"update", nullptr, Update, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"threads", nullptr, Threads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"unary", nullptr, Unary, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"actGrad", nullptr, ActGrad, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"reduce", nullptr, Reduce, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"instanceNorm", nullptr, InstanceNorm, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"batchNorm", nullptr, BatchNorm, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"mirrorPad", nullptr, MirrorPad, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"box", nullptr, Box, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"minibatchStddev", nullptr, MinibatchStddev, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"version", nullptr, Version, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  startPool(omp_get_max_threads());
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
