// Native convolution and matmul kernels for the TF.js WebAssembly backend, on oneDNN (Debian's libdnnl, the
// library PyTorch's CPU convolutions use). Tensors stay where the wasm backend keeps them: every call gets the
// wasm heap (an ArrayBuffer) and byte offsets into it, and oneDNN reads and writes there in place, no copies.
// Layouts are TF.js's: activations NHWC, conv filters HWIO ([kh, kw, in, out]), matrices row-major.
#include <node_api.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
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

float activate(float v, int act, float alpha) {
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
  ConvPrims& c = convCache()[g.key()];
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
    if (b.out)
      outs.emplace_back(tmp, user);
    else
      dnnl::reorder(user, tmp).execute(s, user, tmp);
    args.insert({b.arg, tmp});
  }
  p.prim->execute(s, args);
  for (auto& [tmp, user] : outs) dnnl::reorder(tmp, user).execute(s, tmp, user);
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
  for (int64_t i = 0; i < batch; i++) {
    const float* ai = a + (batchA == 1 ? 0 : i * M * K);
    const float* bi = b + (batchB == 1 ? 0 : i * K * N);
    float* ci = c + i * M * N;
    dnnl_status_t s = dnnl_sgemm(tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, 1.f, ai, tA ? M : K, bi, tB ? K : N, 0.f,
                                 ci, N);
    if (s != dnnl_success) return fail(env, "oneDNN sgemm failed (status " + std::to_string(int(s)) + ")");
    if (bias || act != kLinear) {
      for (int64_t r = 0; r < M; r++) {
        float* row = ci + r * N;
        for (int64_t j = 0; j < N; j++) {
          float v = row[j] + (bias ? bias[biasSize == 1 ? 0 : j] : 0.f);
          row[j] = activate(v, act, alpha);
        }
      }
    }
  }
  return str(env, "dnnl_sgemm");
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
  if (p[0] == 0) {
    adamUpdate(n, t[0], t[1], t[2], t[3], t[4], t[5], t[6], p[9], p[10], p[11], p[12], p[13], p[14]);
    return str(env, "adam");
  }
  lerp(n, t[0], t[1], t[2], p[5]);
  return str(env, "lerp");
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
      {"version", nullptr, Version, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
