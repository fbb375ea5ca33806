// The AVX-512 float kernel for 2, 4 and 8 bits (values inside uint32 words): qmm_avx2.cpp's
// scheme on 16 lanes, so a block is 16 words = 16 * vpw values. Compiled with -mavx512f
// -mavx512bw -mavx512vl, called only after a run-time CPU check; where the cores have
// 512-bit FMA pipes (Zen 5, Intel server parts) it halves the instructions per value.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>

#include "qmm_kernel.h"
#include "qmm_scales.h"
#include "qmm_simd.h"
#include "qmm_tile.h"

namespace gemma_cpu {

namespace {

// The 16 lanes' scales of a block starting at group g0: `count` consecutive groups loaded
// under a mask (never past the buffer), spread by idx (lane i: group g0 + idx[i]).
inline __m512 lane_scales(const void* p, ScaleType t, long g0, int count, __m512i idx) {
  const __mmask16 m = static_cast<__mmask16>((1u << count) - 1);
  __m512 v;
  if (t == ScaleType::F32) {
    v = _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + g0);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + g0);
    v = t == ScaleType::F16
            ? _mm512_cvtph_ps(h)
            : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return _mm512_permutexvar_ps(idx, v);
}

// ROWS weight rows from n (2 only above 4 x rows) against TILE activation rows from m0:
// y[m0 + t, n + r].
template <int BITS, int TILE, int ROWS = 1>
inline void row_tile(const QmmArgs& a, const float* xp, const float* xsum, int n, int m0,
                     __m512i idx) {
  static_assert(ROWS == 1 || TILE > 4);
  constexpr int VPW = 32 / BITS, VALUES = 16 * VPW;
  const int blocks = a.K / VALUES, groups = a.K / a.group_size, shift = group_shift(a.group_size);
  const int count = std::max(1, VALUES / a.group_size);
  const long x_row = static_cast<long>(blocks) * VALUES, w_row = a.K / VPW;
  const uint32_t* wr = a.w + static_cast<long>(n) * w_row;
  const long g_row = static_cast<long>(n) * groups;
  // 4 bits: vpermps reads the low 4 bits of each lane, so a table of 0..15 turns a shifted
  // word into floats with no mask and no conversion (2 instructions a value vector, not 3).
  const __m512 levels = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i mask = _mm512_set1_epi32((1u << BITS) - 1);
  auto unpack = [&](__m512i wv, int j) {
    const __m512i q = j == 0 ? wv : _mm512_srli_epi32(wv, BITS * j);
    if constexpr (BITS == 4) return _mm512_permutexvar_ps(q, levels);
    return _mm512_cvtepi32_ps(j == VPW - 1 ? q : _mm512_and_si512(q, mask));
  };
  __m512 acc[ROWS][TILE];
  for (int r = 0; r < ROWS; ++r)
    for (int t = 0; t < TILE; ++t) acc[r][t] = _mm512_setzero_ps();
  if (TILE <= 2 && m0 == 0) prefetch_ahead<BITS>(a, n);
  for (int b = 0; b < blocks; ++b) {
    const float* xb = xp + (static_cast<long>(m0) * blocks + b) * VALUES;
    const long g = g_row + ((static_cast<long>(b) * VALUES) >> shift);
    if constexpr (TILE > 4) {
      // Scaled values against every x row in turn, each x vector loaded once for both weight
      // rows: at 8 x rows of K = 2560 (4B's hidden size, 80 KiB of x: past L1) 1.6x the
      // speed of a dot product per x row, equal at K = 640.
      __m512i wv[ROWS];
      __m512 s[ROWS];
      for (int r = 0; r < ROWS; ++r) {
        wv[r] = _mm512_loadu_si512(wr + r * w_row + b * 16);
        s[r] = lane_scales(a.scales, a.scale_type, g + r * groups, count, idx);
      }
#pragma GCC unroll 8  // constant shifts, and no branch on j
      for (int j = 0; j < VPW; ++j) {
        __m512 v[ROWS];
        for (int r = 0; r < ROWS; ++r) v[r] = _mm512_mul_ps(unpack(wv[r], j), s[r]);
        for (int t = 0; t < TILE; ++t) {
          __m512 x = _mm512_load_ps(xb + t * x_row + 16 * j);
          asm("" : "+v"(x));  // a register, not GCC's memory operand in each row's FMA
          for (int r = 0; r < ROWS; ++r) acc[r][t] = _mm512_fmadd_ps(v[r], x, acc[r][t]);
        }
      }
    } else {
      // Few x rows: a per-block dot product lets blocks overlap (each accumulator takes one
      // FMA a block), where one chain across blocks would bind a row to latency.
      const __m512i wv = _mm512_loadu_si512(wr + b * 16);
      const __m512 s = lane_scales(a.scales, a.scale_type, g, count, idx);
      __m512 v[VPW];
      for (int j = 0; j < VPW; ++j) v[j] = unpack(wv, j);
      for (int t = 0; t < TILE; ++t) {
        const float* xt = xb + t * x_row;
        __m512 dot = _mm512_mul_ps(v[0], _mm512_load_ps(xt));
        for (int j = 1; j < VPW; ++j) dot = _mm512_fmadd_ps(v[j], _mm512_load_ps(xt + 16 * j), dot);
        acc[0][t] = _mm512_fmadd_ps(dot, s, acc[0][t]);
      }
    }
  }
  // The bias term, sum_g bias[n, g] * xsum[m, g], enters the same accumulators 16 groups at
  // a time: one reduction a row instead of two (rows are short: K = 640 is 5 blocks).
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int g = 0; g < groups; g += 16) {
    const int c = std::min(16, groups - g);
    const __mmask16 gm = static_cast<__mmask16>((1u << c) - 1);
    for (int r = 0; r < ROWS; ++r) {
      const __m512 bias = lane_scales(a.biases, a.scale_type, g_row + r * groups + g, c, iota);
      for (int t = 0; t < TILE; ++t)
        acc[r][t] = _mm512_fmadd_ps(
            bias, _mm512_maskz_loadu_ps(gm, xsum + (m0 + t) * groups + g), acc[r][t]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int t = 0; t < TILE; ++t)
      a.y[static_cast<long>(m0 + t) * a.N + n + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <int BITS>
void rows(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1) {
  constexpr int VPW = 32 / BITS;
  alignas(64) int lane_group[16];
  for (int i = 0; i < 16; ++i) lane_group[i] = VPW * i / a.group_size;
  const __m512i idx = _mm512_load_si512(lane_group);
  for_rows<2>(a.M, n0, n1, [&]<int TILE, int ROWS>(int n, int m0) {
    // Up to 4 x rows, two weight rows a call were ~20% slower than one at a time.
    if constexpr (TILE > 4) {
      row_tile<BITS, TILE, ROWS>(a, xp, xsum, n, m0, idx);
    } else {
      for (int r = 0; r < ROWS; ++r) row_tile<BITS, TILE>(a, xp, xsum, n + r, m0, idx);
    }
  });
}

}  // namespace

bool avx512_available() {
  static const bool ok = avx2_available() && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return ok;
}

// xp[m][block][j][i] = x[m][block * 16 vpw + vpw i + j]: lane i of shift j, as rows() reads.
void permute_x_avx512(const QmmArgs& a, float* xp) {
  const int vpw = 32 / a.bits, values = 16 * vpw;
  for (int m = 0; m < a.M; ++m) {
    const float* xr = a.x + static_cast<long>(m) * a.K;
    float* out = xp + static_cast<long>(m) * a.K;
    for (int b = 0; b < a.K / values; ++b)
      for (int j = 0; j < vpw; ++j)
        for (int i = 0; i < 16; ++i) out[b * values + 16 * j + i] = xr[b * values + vpw * i + j];
  }
}

void qmm_rows_avx512(const QmmArgs& a, const float* xp, const float* xsum, int n0, int n1) {
  switch (a.bits) {
    case 2: return rows<2>(a, xp, xsum, n0, n1);
    case 4: return rows<4>(a, xp, xsum, n0, n1);
    default: return rows<8>(a, xp, xsum, n0, n1);
  }
}

}  // namespace gemma_cpu
#else
#include "qmm_kernel.h"

namespace gemma_cpu {
bool avx512_available() { return false; }
void permute_x_avx512(const QmmArgs&, float*) {}
void qmm_rows_avx512(const QmmArgs&, const float*, const float*, int, int) {}
}  // namespace gemma_cpu
#endif
