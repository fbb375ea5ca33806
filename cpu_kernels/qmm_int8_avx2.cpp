// The int8-activation kernel on AVX2 (maddubs + madd; 4 bits only: 8-bit levels times int8
// would saturate maddubs's int16 sums). Compiled with -mavx2 -mfma.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

// A pair of 4-bit levels times int8 sums to at most 2 * 15 * 127, four such to 15240: no
// int16 saturation.
#define GEMMA_DOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
#define GEMMA_DOT2(u0, s0, u1, s1)                                                   \
  _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(u0, s0),                   \
                                     _mm256_maddubs_epi16(u1, s1)),                  \
                    _mm256_set1_epi16(1))
#include "qmm_int8.h"

namespace gemma_cpu {

void qmm_int8_rows_avx2(const QmmArgs& a, const Int8X& x, const float* xsum, int n0, int n1) {
  rows<4>(a, x, xsum, n0, n1);
}

// Per block of 32: d = amax / 127, q = round-to-even(x * (1 / d)) in float32, as llama.cpp's
// Q8_0 (the tests' numpy reference does the same operations). 4 bits: each chunk of 64 holds
// the even values' q, then the odd ones'.
void quantize_x_avx2(const QmmArgs& a, int8_t* q, float* d) {
  const int values = a.bits == 4 ? 64 : 32, chunks = a.K / values, blocks = values / 32;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i even_odd = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                            0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (int m = 0; m < a.M; ++m)
    for (int c = 0; c < chunks; ++c) {
      const float* xc = a.x + static_cast<long>(m) * a.K + c * values;
      const long at = static_cast<long>(m) * chunks + c;
      __m256i packed[2];
      for (int blk = 0; blk < blocks; ++blk) {
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; ++i) {
          v[i] = _mm256_loadu_ps(xc + blk * 32 + 8 * i);
          amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], abs_mask));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        const float scale = _mm_cvtss_f32(h) / 127.0f, inv = scale > 0.0f ? 1.0f / scale : 0.0f;
        for (int lane = 0; lane < 8 / blocks; ++lane) d[at * 8 + blk * (8 / blocks) + lane] = scale;
        __m256i i32[4];
        for (int i = 0; i < 4; ++i)  // the default rounding mode: to nearest, ties to even
          i32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(inv)));
        const __m256i i16a = _mm256_packs_epi32(i32[0], i32[1]);
        const __m256i i16b = _mm256_packs_epi32(i32[2], i32[3]);
        packed[blk] = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16a, i16b), order);
      }
      __m256i* out = reinterpret_cast<__m256i*>(q + at * values);
      if (blocks == 1) {
        _mm256_storeu_si256(out, packed[0]);
        continue;
      }
      __m256i split[2];  // per block: its 16 even values, then its 16 odd ones
      for (int blk = 0; blk < 2; ++blk)
        split[blk] = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(packed[blk], even_odd),
                                              0xd8);  // qwords 0, 2, 1, 3
      _mm256_storeu_si256(out, _mm256_permute2x128_si256(split[0], split[1], 0x20));
      _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(split[0], split[1], 0x31));
    }
}

}  // namespace gemma_cpu
#else
#include "qmm_kernel.h"
namespace gemma_cpu {
void qmm_int8_rows_avx2(const QmmArgs&, const Int8X&, const float*, int, int) {}
void quantize_x_avx2(const QmmArgs&, int8_t*, float*) {}
}  // namespace gemma_cpu
#endif
