// AVX2 helpers shared by the float and int8 kernels (static: each translation unit, compiled
// with its own flags, keeps its own copy).
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "qmm_kernel.h"
#include "qmm_scales.h"

namespace gemma_cpu {

static inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_hadd_ps(lo, lo);
  lo = _mm_hadd_ps(lo, lo);
  return _mm_cvtss_f32(lo);
}

// 8 consecutive scales or biases as float32.
static inline __m256 load8(const void* p, ScaleType t, long i) {
  if (t == ScaleType::F32) return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(
      static_cast<const uint16_t*>(p) + i));
  if (t == ScaleType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// sum_g bias[g0 + g] * xsum[g] over a row's groups: the bias term of y.
static inline float bias_dot(const QmmArgs& a, long g0, const float* xsum, int groups) {
  __m256 acc = _mm256_setzero_ps();
  int g = 0;
  for (; g + 8 <= groups; g += 8)
    acc = _mm256_fmadd_ps(load8(a.biases, a.scale_type, g0 + g), _mm256_loadu_ps(xsum + g), acc);
  float s = hsum(acc);
  for (; g < groups; ++g) s += load_scale(a.biases, a.scale_type, g0 + g) * xsum[g];
  return s;
}

// Software prefetch of weight row n + 16, with its scales and biases. The hardware
// prefetchers alone left one thread's head pass at ~11 GB/s of the ~28 a read loop gets
// here; with this it ran ~1.3x faster (rows are short: K = 640 at 4 bits is 320 bytes).
// An asm statement: GCC 12 deleted _mm_prefetch/__builtin_prefetch calls in this function.
static inline void prefetch(const void* p) {
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
}

template <int BITS>
static inline void prefetch_ahead(const QmmArgs& a, int n) {
  constexpr int AHEAD = 16;
  const long row_bytes = static_cast<long>(a.K) * BITS / 8, groups = a.K / a.group_size;
  const char* w = reinterpret_cast<const char*>(a.w) + (n + AHEAD) * row_bytes;
  for (long o = 0; o < row_bytes; o += 64) prefetch(w + o);
  const long g = (n + AHEAD) * groups * (a.scale_type == ScaleType::F32 ? 4 : 2);
  prefetch(static_cast<const char*>(a.scales) + g);
  prefetch(static_cast<const char*>(a.biases) + g);
}

}  // namespace gemma_cpu
#endif
