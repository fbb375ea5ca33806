// The int8-activation kernels (opt-in): x is rounded to int8 per block of 32 (d = amax / 127,
// as llama.cpp's Q8_0), so a block's dot product with the weights' levels is exact integer
// arithmetic (maddubs + madd on AVX2, vpdpbusd with VNNI), scaled once per 8 lanes. The bias
// term still uses the float sums of x. Included by qmm_int8_avx2.cpp and qmm_int8_vnni.cpp,
// which define GEMMA_DOT(u8, s8): the int32 lanes' sums of 4 adjacent byte products.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>

#include "qmm_simd.h"
#include "qmm_tile.h"

namespace gemma_cpu {
namespace {  // internal: each including file defines its own GEMMA_DOT

// The weight scales of the 8 int32 lanes of a chunk; lanes_per_group lanes share one.
inline __m256 weight_scales(const QmmArgs& a, long g, int lanes_per_group) {
  if (lanes_per_group >= 8) return _mm256_set1_ps(load_scale(a.scales, a.scale_type, g));
  return _mm256_set_m128(_mm_set1_ps(load_scale(a.scales, a.scale_type, g + 1)),
                         _mm_set1_ps(load_scale(a.scales, a.scale_type, g)));
}

// 4 bits: a chunk is 8 words = 64 values, byte i holding values 2i (low nibble) and 2i + 1;
// x.q holds per chunk the even values' int8 then the odd ones', so int32 lane L sums values
// 8L..8L+7 and lanes 0-3 / 4-7 are the chunk's two blocks of 32. 8 bits: a chunk is 32
// values in order, one block. x.d holds per chunk the 8 lanes' activation scales.
template <int BITS, int TILE>
inline void row_tile(const QmmArgs& a, const Int8X& x, const float* xsum, int n, int m0) {
  constexpr int VALUES = BITS == 4 ? 64 : 32;
  const int chunks = a.K / VALUES, groups = a.K / a.group_size, shift = group_shift(a.group_size);
  const int lanes_per_group = a.group_size / (VALUES / 8);
  const uint32_t* wr = a.w + n * (static_cast<long>(a.K) * BITS / 32);
  const long g_row = static_cast<long>(n) * groups;
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256 acc[TILE];
  for (int t = 0; t < TILE; ++t) acc[t] = _mm256_setzero_ps();
  if (TILE <= 2 && m0 == 0) prefetch_ahead<BITS>(a, n);
  for (int c = 0; c < chunks; ++c) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + c * 8));
    const long g = g_row + ((static_cast<long>(c) * VALUES) >> shift);  // lane 0's
    const __m256 ws = weight_scales(a, g, lanes_per_group);
    for (int t = 0; t < TILE; ++t) {
      const long row = static_cast<long>(m0 + t) * chunks + c;
      const int8_t* xq = x.q + row * VALUES;
      __m256i dot;
      if constexpr (BITS == 4) {
        const __m256i lo = _mm256_and_si256(wv, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), low);
        dot = GEMMA_DOT2(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)), hi,
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32)));
      } else {
        dot = GEMMA_DOT(wv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
      }
      const __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(x.d + row * 8), ws);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[t]);
    }
  }
  for (int t = 0; t < TILE; ++t) {
    const int m = m0 + t;
    a.y[static_cast<long>(m) * a.N + n] =
        hsum(acc[t]) + bias_dot(a, g_row, xsum + m * groups, groups);
  }
}

template <int BITS>
void rows(const QmmArgs& a, const Int8X& x, const float* xsum, int n0, int n1) {
  for_rows(a.M, n0, n1, [&]<int TILE>(int n, int m0) { row_tile<BITS, TILE>(a, x, xsum, n, m0); });
}

}  // namespace
}  // namespace gemma_cpu
#endif
