// The AVX2 + FMA kernels: 2, 4 and 8 bits (values inside uint32 words), 3, 5 and 6 bits (a
// bit stream); compiled with -mavx2 -mfma, called only after a run-time CPU check.
//
// A block is 8 words (one 256-bit load) holding 8 * vpw values, vpw = 32 / bits. Shifting
// and masking the block by bits * j gives value j of every word at once: lane i holds
// element vpw * i + j. So x is rearranged once per call to that order, xp[m][block][j][i] =
// x[m][block * 8 vpw + vpw i + j], and the inner loop is contiguous loads and FMAs. The bias
// enters through per-group sums of x: sum_k x (s q + b) = s (q . x) + b sum_k x.
// Elsewhere than x86 (macOS arm64) the file compiles to stubs that avx2_available() never picks.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "qmm_generic.h"
#include "qmm_kernel.h"
#include "qmm_scales.h"
#include "qmm_simd.h"
#include "qmm_tile.h"

namespace gemma_cpu {

namespace {

// Scales of the 8 lanes of a block: lanes of the same group share one.
inline __m256 lane_scales(const QmmArgs& a, long row_group0, int block, int per_block,
                          int shift) {
  const int values = 8 * (32 / a.bits);
  const long g0 = row_group0 + ((static_cast<long>(block) * values) >> shift);
  if (per_block == 1) return _mm256_set1_ps(load_scale(a.scales, a.scale_type, g0));
  if (per_block == 2)  // 4-bit, groups of 32: lanes 0-3 and 4-7
    return _mm256_set_m128(_mm_set1_ps(load_scale(a.scales, a.scale_type, g0 + 1)),
                           _mm_set1_ps(load_scale(a.scales, a.scale_type, g0)));
  alignas(32) float s[8];
  const int lanes = 8 / per_block;
  for (int i = 0; i < 8; ++i) s[i] = load_scale(a.scales, a.scale_type, g0 + i / lanes);
  return _mm256_load_ps(s);
}

// y[m, n] for a tile of rows: the accumulated scale * (q . x), plus sum_g bias_g * sum(x_g).
inline void store(const QmmArgs& a, const __m256* acc, int tile, int m0, int n,
                  const float* xsum) {
  const int groups = a.K / a.group_size;
  const long g_row = static_cast<long>(n) * groups;
  for (int t = 0; t < tile; ++t) {
    const int m = m0 + t;
    a.y[static_cast<long>(m) * a.N + n] =
        hsum(acc[t]) + bias_dot(a, g_row, xsum + m * groups, groups);
  }
}

template <int BITS, int TILE>
inline void row_tile(const QmmArgs& a, const float* xp, const float* xsum, int n, int m0) {
  constexpr int VPW = 32 / BITS, VALUES = 8 * VPW;
  const int blocks = a.K / VALUES, shift = group_shift(a.group_size);
  const int per_block = VALUES > a.group_size ? VALUES / a.group_size : 1;
  const uint32_t* wr = a.w + static_cast<long>(n) * (a.K / VPW);
  const long g_row = static_cast<long>(n) * (a.K / a.group_size);
  const __m256i mask = _mm256_set1_epi32((1u << BITS) - 1);
  __m256 acc[TILE];
  for (int t = 0; t < TILE; ++t) acc[t] = _mm256_setzero_ps();
  if (TILE <= 2 && m0 == 0) prefetch_ahead<BITS>(a, n);
  for (int b = 0; b < blocks; ++b) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + b * 8));
    __m256 v[VPW];
    for (int j = 0; j < VPW; ++j)
      v[j] = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(wv, BITS * j), mask));
    const __m256 s = lane_scales(a, g_row, b, per_block, shift);
    for (int t = 0; t < TILE; ++t) {
      const float* xb = xp + (static_cast<long>(m0 + t) * blocks + b) * VALUES;
      __m256 dot = _mm256_mul_ps(v[0], _mm256_loadu_ps(xb));
      for (int j = 1; j < VPW; ++j) dot = _mm256_fmadd_ps(v[j], _mm256_loadu_ps(xb + 8 * j), dot);
      acc[t] = _mm256_fmadd_ps(dot, s, acc[t]);
    }
  }
  store(a, acc, TILE, m0, n, xsum);
}

template <int BITS>
void rows(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1) {
  for_rows(a.M, n0, n1, [&]<int TILE>(int n, int m0) { row_tile<BITS, TILE>(a, xp, xsum, n, m0); });
}

// 3, 5 and 6 bits: values cross word boundaries, so each chunk of 8 values (`BITS` bytes) is
// read as one 64-bit word and shifted in 64-bit lanes: values 0-3 in one register, 4-7 in
// another, interleaved into 32-bit lanes as [0, 4, 1, 5, 2, 6, 3, 7] (x is permuted to match).
template <int BITS>
inline __m256 chunk(const uint8_t* p) {
  uint64_t u = 0;
  std::memcpy(&u, p, BITS);  // exactly the chunk: never past the end of the matrix
  const __m256i w = _mm256_set1_epi64x(static_cast<long long>(u));
  const __m256i lo = _mm256_srlv_epi64(w, _mm256_setr_epi64x(0, BITS, 2 * BITS, 3 * BITS));
  const __m256i hi = _mm256_srlv_epi64(w, _mm256_setr_epi64x(4 * BITS, 5 * BITS, 6 * BITS,
                                                             7 * BITS));
  const __m256i both = _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi64x(0xffffffff)),
                                       _mm256_slli_epi64(hi, 32));
  return _mm256_cvtepi32_ps(_mm256_and_si256(both, _mm256_set1_epi32((1 << BITS) - 1)));
}

template <int BITS, int TILE>
inline void stream_tile(const QmmArgs& a, const float* xp, const float* xsum, int n, int m0) {
  const int groups = a.K / a.group_size, chunks = a.group_size / 8;
  const uint8_t* row = reinterpret_cast<const uint8_t*>(a.w) + n * (static_cast<long>(a.K) * BITS / 8);
  const long g_row = static_cast<long>(n) * groups;
  __m256 v[16];  // the chunks of one group (group_size <= 128)
  __m256 acc[TILE];
  for (int t = 0; t < TILE; ++t) acc[t] = _mm256_setzero_ps();
  for (int g = 0; g < groups; ++g) {
    const uint8_t* gp = row + static_cast<long>(g) * chunks * BITS;
    for (int c = 0; c < chunks; ++c) v[c] = chunk<BITS>(gp + c * BITS);
    const __m256 s = _mm256_set1_ps(load_scale(a.scales, a.scale_type, g_row + g));
    for (int t = 0; t < TILE; ++t) {
      const float* xg = xp + static_cast<long>(m0 + t) * a.K + g * a.group_size;
      __m256 dot = _mm256_mul_ps(v[0], _mm256_loadu_ps(xg));
      for (int c = 1; c < chunks; ++c) dot = _mm256_fmadd_ps(v[c], _mm256_loadu_ps(xg + 8 * c), dot);
      acc[t] = _mm256_fmadd_ps(dot, s, acc[t]);
    }
  }
  store(a, acc, TILE, m0, n, xsum);
}

template <int BITS>
void stream_rows(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1) {
  for_rows(a.M, n0, n1, [&]<int TILE>(int n, int m0) { stream_tile<BITS, TILE>(a, xp, xsum, n, m0); });
}

}  // namespace

void permute_x_avx2(const QmmArgs& a, float* xp) {
  if (a.bits != 2 && a.bits != 4 && a.bits != 8) {  // the chunk order of stream_rows
    static const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (long i = 0; i < static_cast<long>(a.M) * a.K; i += 8)
      for (int lane = 0; lane < 8; ++lane) xp[i + lane] = a.x[i + order[lane]];
    return;
  }
  const int vpw = 32 / a.bits, values = 8 * vpw;
  for (int m = 0; m < a.M; ++m) {
    const float* xr = a.x + static_cast<long>(m) * a.K;
    float* out = xp + static_cast<long>(m) * a.K;
    for (int b = 0; b < a.K / values; ++b)
      for (int j = 0; j < vpw; ++j)
        for (int i = 0; i < 8; ++i) out[b * values + 8 * j + i] = xr[b * values + vpw * i + j];
  }
}

void qmm_rows_avx2(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1) {
  switch (a.bits) {
    case 2: return rows<2>(a, xp, xsum, n0, n1);
    case 4: return rows<4>(a, xp, xsum, n0, n1);
    case 8: return rows<8>(a, xp, xsum, n0, n1);
    case 3: return stream_rows<3>(a, xp, xsum, n0, n1);
    case 5: return stream_rows<5>(a, xp, xsum, n0, n1);
    case 6: return stream_rows<6>(a, xp, xsum, n0, n1);
    default: return generic_rows(a, xsum, n0, n1);
  }
}

}  // namespace gemma_cpu
#else
#include "qmm_generic.h"

namespace gemma_cpu {
void qmm_rows_avx2(const QmmArgs& a, const float*, const float* xsum, int n0, int n1) {
  generic_rows(a, xsum, n0, n1);
}
void permute_x_avx2(const QmmArgs&, float*) {}
}  // namespace gemma_cpu
#endif
