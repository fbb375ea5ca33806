// Quantized matmul kernels on MLX's affine layout: y[m, n] = sum_k x[m, k] * w[n, k], where
// w[n, k] = scale[n, g] * q[n, k] + bias[n, g] for group g = k / group_size and q is packed
// little-endian, `bits` per value (4 and 8: within uint32 words; 2, 3, 5, 6: a bit stream).
#pragma once

#include <cstdint>
#include <functional>

namespace gemma_cpu {

enum class ScaleType { F32, F16, BF16 };

struct QmmArgs {
  const float* x;         // [M, K], row-contiguous
  const uint32_t* w;      // [N, K * bits / 32]
  const void* scales;     // [N, K / group_size]
  const void* biases;     // [N, K / group_size]
  float* y;               // [M, N]
  int M, N, K, group_size, bits;
  ScaleType scale_type;
  bool int8_x = false;    // opt-in: x rounded to int8 per block of 32 where supported
};

// x rounded to int8 for the int8 kernels (qmm_int8.h): per chunk of 64 (4 bits) or 32 (8
// bits) values, the int8 values q [M, chunks, chunk] and the 8 lanes' scales d [M, chunks, 8].
struct Int8X {
  const int8_t* q;
  const float* d;
};

// True when the AVX2+FMA kernel can run here (CPU support checked at run time).
bool avx2_available();

// Runs the multiplication on the calling thread plus the pool; returns false if the shape or
// bits are not supported by the fast kernel (the caller then uses MLX's own op).
bool qmm(const QmmArgs& a);

// The kernel on rows [n0, n1) of w, with x already rearranged for it (see qmm_avx2.cpp).
void qmm_rows_avx2(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1);
void qmm_rows_scalar(const QmmArgs& a, const float* xsum, int n0, int n1);
void permute_x_avx2(const QmmArgs& a, float* xp);

// The AVX-512 float kernel (2, 4 and 8 bits), where the CPU has AVX-512 F, BW and VL.
bool avx512_available();
// Whether qmm uses it where available (default on; the tests and benchmarks switch it off to
// run the AVX2 kernel on the same machine).
void set_avx512(bool on);
void set_vnni(bool on);  // likewise for the int8 kernel's VNNI version
void set_serial_work(long multiply_adds);  // the benchmarks' threading switch
void permute_x_avx512(const QmmArgs& a, float* xp);
void qmm_rows_avx512(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1);

// The int8 kernels: 4 bits on AVX2; 4 and 8 bits with AVX-VNNI.
bool vnni_available();
void qmm_int8_rows_avx2(const QmmArgs& a, const Int8X& x, const float* xsum, int n0, int n1);
void qmm_int8_rows_vnni(const QmmArgs& a, const Int8X& x, const float* xsum, int n0, int n1);
// x rounded to int8 in the layout of Int8X: q [M * K], d [M * K / chunk * 8].
void quantize_x_avx2(const QmmArgs& a, int8_t* q, float* d);

int pool_threads();

// f(part) for part in [0, parts), parts <= pool_threads(), on the calling thread and the pool.
void pool_run(int parts, const std::function<void(int)>& f);

}  // namespace gemma_cpu
