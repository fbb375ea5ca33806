// The MLX primitive around the kernel, and its Python binding (module gemma_mlx._cpu_qmm).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <optional>

#include <stdexcept>

#include "mlx/allocator.h"
#include "mlx/array.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"
#include "mlx/primitives.h"
#include "mlx/stream.h"
#include "mlx/utils.h"
#include "mlx/version.h"
#include "attention.h"
#include "gelu.h"
#include "qmm_kernel.h"
#include "quant_search.h"

namespace nb = nanobind;
namespace mx = mlx::core;
using namespace nb::literals;

namespace {

gemma_cpu::ScaleType scale_type(mx::Dtype t) {
  if (t == mx::float32) return gemma_cpu::ScaleType::F32;
  if (t == mx::float16) return gemma_cpu::ScaleType::F16;
  if (t == mx::bfloat16) return gemma_cpu::ScaleType::BF16;
  throw std::invalid_argument("gemma_mlx._cpu_qmm: scales must be float32, float16 or bfloat16");
}

// The elements of a (any strides) in row-major order, into buffer.
const float* gather(const mx::array& a, std::vector<float>& buffer) {
  buffer.resize(a.size());
  const float* src = a.data<float>();
  const int nd = a.ndim();
  std::vector<int> idx(nd, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    long at = 0;
    for (int d = 0; d < nd; ++d) at += idx[d] * a.strides(d);
    buffer[i] = src[at];
    for (int d = nd - 1; d >= 0 && ++idx[d] == a.shape(d); --d) idx[d] = 0;
  }
  return buffer.data();
}

class GemmaQuantizedMatmul : public mx::UnaryPrimitive {
 public:
  GemmaQuantizedMatmul(mx::Stream s, int group_size, int bits, bool int8)
      : mx::UnaryPrimitive(s), group_size_(group_size), bits_(bits), int8_(int8) {}

  void eval_cpu(const std::vector<mx::array>& in, mx::array& out) override {
    out.set_data(mx::allocator::malloc(out.nbytes()));
    auto& enc = mx::cpu::get_command_encoder(stream());
    for (auto& a : in) enc.set_input_array(a);
    enc.set_output_array(out);
    enc.dispatch([x = mx::array::unsafe_weak_copy(in[0]), w = mx::array::unsafe_weak_copy(in[1]),
                  s = mx::array::unsafe_weak_copy(in[2]), b = mx::array::unsafe_weak_copy(in[3]),
                  y = mx::array::unsafe_weak_copy(out), gs = group_size_, bits = bits_,
                  int8 = int8_]() mutable {
      const int K = x.shape(-1);
      thread_local std::vector<float> copy;  // x in rows, when it is a strided view
      const float* xs = x.flags().row_contiguous ? x.data<float>() : gather(x, copy);
      gemma_cpu::QmmArgs a{xs, w.data<uint32_t>(), s.data<void>(), b.data<void>(),
                           y.data<float>(), static_cast<int>(x.size() / K),
                           static_cast<int>(w.shape(0)), K, gs, bits, scale_type(s.dtype()),
                           int8};
      if (!gemma_cpu::qmm(a)) throw std::runtime_error("gemma_mlx._cpu_qmm: unsupported shape");
    });
  }

  void eval_gpu(const std::vector<mx::array>&, mx::array&) override {
    throw std::runtime_error("GemmaQuantizedMatmul runs on the CPU only");
  }

  // The backward pass (QLoRA) goes through MLX's own op: dx = dy @ dequantize(w).
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals,
                             const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums,
                             const std::vector<mx::array>&) override {
    std::vector<mx::array> grads;
    for (int arg : argnums) {
      if (arg != 0) throw std::invalid_argument("no gradient for quantized weights");
      grads.push_back(mx::quantized_matmul(cotangents[0], primals[1], primals[2], primals[3],
                                           false, group_size_, bits_, "affine", stream()));
    }
    return grads;
  }

  const char* name() const override { return "GemmaQuantizedMatmul"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    auto& o = static_cast<const GemmaQuantizedMatmul&>(other);
    return group_size_ == o.group_size_ && bits_ == o.bits_ && int8_ == o.int8_;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    auto shape = in[0].shape();
    shape.back() = in[1].shape(0);
    return {shape};
  }

 private:
  int group_size_, bits_;
  bool int8_;
};

// softmax(scale q k^T + mask) v for a few queries (attention.cpp): q [B, Hq, Lq, D], k, v
// [B, Hkv, S, D] float32 read in place, mask bool [Bm, Lq, S] or absent.
class GemmaDecodeAttention : public mx::UnaryPrimitive {
 public:
  GemmaDecodeAttention(mx::Stream s, float scale) : mx::UnaryPrimitive(s), scale_(scale) {}

  void eval_cpu(const std::vector<mx::array>& in, mx::array& out) override {
    out.set_data(mx::allocator::malloc(out.nbytes()));
    auto& enc = mx::cpu::get_command_encoder(stream());
    for (auto& a : in) enc.set_input_array(a);
    enc.set_output_array(out);
    std::vector<mx::array> args;
    for (auto& a : in) args.push_back(mx::array::unsafe_weak_copy(a));
    enc.dispatch([args = std::move(args), y = mx::array::unsafe_weak_copy(out),
                  scale = scale_]() mutable {
      const mx::array &q = args[0], &k = args[1], &v = args[2];
      gemma_cpu::AttentionArgs a{};
      std::vector<float> qc, kc, vc;  // copies only if D is strided (never for cache views)
      a.q = inner_contiguous(q, qc, a.q_strides);
      a.k = inner_contiguous(k, kc, a.k_strides);
      a.v = inner_contiguous(v, vc, a.v_strides);
      if (args.size() > 3) {
        a.mask = args[3].data<bool>();
        a.mask_b_stride = args[3].shape(0) == 1 ? 0 : args[3].shape(1) * args[3].shape(2);
      }
      a.out = y.data<float>();
      a.B = q.shape(0), a.Hq = q.shape(1), a.Lq = q.shape(2), a.D = q.shape(3);
      a.Hkv = k.shape(1), a.S = k.shape(2), a.scale = scale;
      gemma_cpu::decode_attention(a);
    });
  }

  void eval_gpu(const std::vector<mx::array>&, mx::array&) override {
    throw std::runtime_error("GemmaDecodeAttention runs on the CPU only");
  }

  const char* name() const override { return "GemmaDecodeAttention"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    return scale_ == static_cast<const GemmaDecodeAttention&>(other).scale_;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    return {in[0].shape()};
  }

 private:
  // The data of a [B, H, S, D] array with D's stride 1: itself, or a copy into `buffer`.
  static const float* inner_contiguous(const mx::array& a, std::vector<float>& buffer,
                                       long* strides) {
    if (a.strides(3) == 1 || a.shape(3) == 1) {
      for (int i = 0; i < 3; ++i) strides[i] = a.strides(i);
      return a.data<float>();
    }
    gather(a, buffer);
    strides[2] = a.shape(3), strides[1] = strides[2] * a.shape(2),
    strides[0] = strides[1] * a.shape(1);
    return buffer.data();
  }

  float scale_;
};

// gelu_tanh(g) * u, Gemma's GeGLU (gelu.cpp), for g and u of one shape, float32.
class GemmaGeluMul : public mx::UnaryPrimitive {
 public:
  explicit GemmaGeluMul(mx::Stream s) : mx::UnaryPrimitive(s) {}

  void eval_cpu(const std::vector<mx::array>& in, mx::array& out) override {
    out.set_data(mx::allocator::malloc(out.nbytes()));
    auto& enc = mx::cpu::get_command_encoder(stream());
    for (auto& a : in) enc.set_input_array(a);
    enc.set_output_array(out);
    enc.dispatch([g = mx::array::unsafe_weak_copy(in[0]), u = mx::array::unsafe_weak_copy(in[1]),
                  y = mx::array::unsafe_weak_copy(out)]() mutable {
      thread_local std::vector<float> gc, uc;  // copies of strided views only
      gemma_cpu::gelu_mul(g.flags().row_contiguous ? g.data<float>() : gather(g, gc),
                          u.flags().row_contiguous ? u.data<float>() : gather(u, uc),
                          y.data<float>(), static_cast<long>(y.size()));
    });
  }

  void eval_gpu(const std::vector<mx::array>&, mx::array&) override {
    throw std::runtime_error("GemmaGeluMul runs on the CPU only");
  }

  // d/dg = c * u * gelu'(g), d/du = c * gelu(g), in MLX ops (LoRA on a quantized base).
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals,
                             const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums,
                             const std::vector<mx::array>&) override {
    const auto s = stream();
    const mx::array &g = primals[0], &u = primals[1], &c = cotangents[0];
    auto k = [&](float v) { return mx::array(v, mx::float32); };
    const float root = 0.7978845608028654f, cubic = 0.044715f;
    const auto g2 = mx::square(g, s);
    const auto t = mx::tanh(mx::multiply(k(root), mx::add(g, mx::multiply(k(cubic),
                                         mx::multiply(g2, g, s), s), s), s), s);
    std::vector<mx::array> grads;
    for (int arg : argnums) {
      if (arg == 1) {
        grads.push_back(mx::multiply(c, mx::multiply(mx::multiply(k(0.5f), g, s),
                                                     mx::add(k(1.0f), t, s), s), s));
        continue;
      }
      const auto dt = mx::multiply(mx::subtract(k(1.0f), mx::square(t, s), s),
                                   mx::multiply(k(root), mx::add(k(1.0f),
                                                mx::multiply(k(3.0f * cubic), g2, s), s), s), s);
      const auto d = mx::add(mx::multiply(k(0.5f), mx::add(k(1.0f), t, s), s),
                             mx::multiply(mx::multiply(k(0.5f), g, s), dt, s), s);
      grads.push_back(mx::multiply(mx::multiply(c, u, s), d, s));
    }
    return grads;
  }

  const char* name() const override { return "GemmaGeluMul"; }
  bool is_equivalent(const mx::Primitive&) const override { return true; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    return {in[0].shape()};
  }
};

// `a` itself when it is already row-contiguous (weights are: no graph node per call).
mx::array contiguous(const mx::array& a, mx::Stream s) {
  if (a.is_available() && a.flags().row_contiguous) return a;
  return mx::contiguous(a, false, s);
}

// y [..., N] = x [..., K] @ dequantize(w, scales, biases).T on the current CPU stream; `int8`:
// x rounded to int8 per block of 32 where the kernel supports it (4 bits; 8 with VNNI). x
// goes in as it is (a strided view is gathered at run time): a decode step calls this 127
// times, and a Contiguous and two Reshape nodes each would cost more than the copy.
mx::array quantized_matmul(const mx::array& x, const mx::array& w, const mx::array& scales,
                           const mx::array& biases, int group_size, int bits, bool int8) {
  if (x.ndim() < 1 || w.ndim() != 2 || x.dtype() != mx::float32 || w.dtype() != mx::uint32)
    throw std::invalid_argument("gemma_mlx._cpu_qmm: x must be float32 [..., K], w uint32 "
                                "[N, *]");
  if (static_cast<long>(w.shape(1)) * 32 != static_cast<long>(x.shape(-1)) * bits)
    throw std::invalid_argument("gemma_mlx._cpu_qmm: x's K does not match w");
  auto stream = mx::default_stream(mx::Device::cpu);
  auto prim = std::make_shared<GemmaQuantizedMatmul>(stream, group_size, bits, int8);
  auto shape = x.shape();
  shape.back() = w.shape(0);
  return mx::array(shape, mx::float32, prim,
                   {x, contiguous(w, stream), contiguous(scales, stream),
                    contiguous(biases, stream)});
}

mx::array decode_attention(const mx::array& q, const mx::array& k, const mx::array& v,
                           float scale, const std::optional<mx::array>& mask) {
  const auto f32 = mx::float32;
  if (q.ndim() != 4 || k.ndim() != 4 || v.ndim() != 4 || q.dtype() != f32 ||
      k.dtype() != f32 || v.dtype() != f32 || k.shape() != v.shape() ||
      q.shape(0) != k.shape(0) || q.shape(3) != k.shape(3) || q.shape(1) % k.shape(1))
    throw std::invalid_argument("gemma_mlx._cpu_qmm.decode_attention: q [B, Hq, L, D], k and "
                                "v [B, Hkv, S, D] float32, Hq a multiple of Hkv");
  auto stream = mx::default_stream(mx::Device::cpu);
  std::vector<mx::array> in{q, k, v};
  if (mask) {
    const auto& m = *mask;
    if (m.dtype() != mx::bool_ || m.ndim() != 3 || m.shape(1) != q.shape(2) ||
        m.shape(2) != k.shape(2) || (m.shape(0) != 1 && m.shape(0) != q.shape(0)))
      throw std::invalid_argument("gemma_mlx._cpu_qmm.decode_attention: mask must be bool "
                                  "[1 or B, L, S]");
    in.push_back(contiguous(m, stream));
  }
  return mx::array(q.shape(), f32, std::make_shared<GemmaDecodeAttention>(stream, scale), in);
}

mx::array gelu_mul(const mx::array& g, const mx::array& u) {
  if (g.dtype() != mx::float32 || u.dtype() != mx::float32 || g.shape() != u.shape())
    throw std::invalid_argument("gemma_mlx._cpu_qmm.gelu_mul: g and u float32, of one shape");
  auto stream = mx::default_stream(mx::Device::cpu);
  return mx::array(g.shape(), mx::float32, std::make_shared<GemmaGeluMul>(stream),
                   {g, u});  // strided views are gathered at run time, as in quantized_matmul
}

template <class T, size_t N>
using Buffer = nb::ndarray<T, nb::ndim<N>, nb::c_contig, nb::device::cpu>;

// The least-error grid search (quant_search.h) of groups g [N, G] into packed [N, G*bits/32],
// scales [N] and biases [N], preallocated by the caller; the GIL is released meanwhile.
void quant_search(Buffer<const float, 2> g, int bits, int spans,
                  Buffer<uint32_t, 2> packed, Buffer<float, 1> scales,
                  Buffer<float, 1> biases, bool portable) {
  const long groups = static_cast<long>(g.shape(0));
  const int group_size = static_cast<int>(g.shape(1));
  if (static_cast<long>(packed.shape(0)) != groups || scales.shape(0) != g.shape(0) ||
      biases.shape(0) != g.shape(0) ||
      static_cast<long>(packed.shape(1)) * 32 != static_cast<long>(group_size) * bits)
    throw std::invalid_argument("gemma_mlx._cpu_qmm.quant_search: output shapes do not match");
  const gemma_cpu::SearchArgs a{g.data(), packed.data(), scales.data(), biases.data(),
                                groups, group_size, bits, spans};
  bool ok;
  {
    nb::gil_scoped_release release;
    ok = gemma_cpu::quant_search(a, portable);
  }
  if (!ok) throw std::invalid_argument("gemma_mlx._cpu_qmm.quant_search: unsupported bits, "
                                       "group size or spans");
}

}  // namespace

NB_MODULE(_cpu_qmm, m) {
  m.doc() = "gemma-mlx's CPU quantized matmul (AVX2 + FMA, a thread pool)";
  m.def("quantized_matmul", &quantized_matmul, "x"_a, "w"_a, "scales"_a, "biases"_a,
        "group_size"_a, "bits"_a, "int8"_a = false);
  m.def("decode_attention", &decode_attention, "q"_a, "k"_a, "v"_a, "scale"_a,
        "mask"_a = nb::none());
  m.def("gelu_mul", &gelu_mul, "g"_a, "u"_a, "gelu_tanh(g) * u (Gemma's GeGLU)");
  m.def("quant_search", &quant_search, "g"_a, "bits"_a, "spans"_a, "packed"_a, "scales"_a,
        "biases"_a, "portable"_a = false);
  m.def("avx2", &gemma_cpu::avx2_available, "whether this CPU runs the AVX2 kernel");
  m.def("avx512", &gemma_cpu::avx512_available, "whether this CPU runs the AVX-512 kernel");
  m.def("set_avx512", &gemma_cpu::set_avx512, "on"_a, "use the AVX-512 kernel where available");
  m.def("vnni", &gemma_cpu::vnni_available, "whether the int8 kernel can use AVX-VNNI");
  m.def("set_serial_work", &gemma_cpu::set_serial_work, "multiply_adds"_a,
        "products below this many multiply-adds run on one thread");
  m.def("set_vnni", &gemma_cpu::set_vnni, "on"_a, "use AVX-VNNI where available");
  m.def("threads", &gemma_cpu::pool_threads, "the kernel's thread count");
  m.attr("mlx_version") = mx::version();
}
