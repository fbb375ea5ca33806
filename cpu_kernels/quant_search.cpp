// The search's portable lanes (plain arrays; compiled with -ffp-contract=off), the per-lane
// finish (the refit's decision, packing) and the dispatch over the pool.
#include <algorithm>
#include <cmath>

#include "qmm_kernel.h"
#include "quant_search_tile.h"

namespace gemma_cpu {
namespace {

struct Mask {
  bool m[LANES];
};
inline Mask operator|(Mask a, Mask b) {
  Mask r;
  for (int l = 0; l < LANES; ++l) r.m[l] = a.m[l] || b.m[l];
  return r;
}

struct V {
  float v[LANES];
  V() = default;
  explicit V(float x) { std::fill(v, v + LANES, x); }
  static V load(const float* p) {
    V r;
    std::copy(p, p + LANES, r.v);
    return r;
  }
  void store(float* p) const { std::copy(v, v + LANES, p); }
};

#define GEMMA_LANEWISE(TYPE, OP, EXPR)               \
  inline TYPE OP(V a, V b) {                         \
    TYPE r;                                          \
    for (int l = 0; l < LANES; ++l) r.EXPR;          \
    return r;                                        \
  }
GEMMA_LANEWISE(V, operator+, v[l] = a.v[l] + b.v[l])
GEMMA_LANEWISE(V, operator-, v[l] = a.v[l] - b.v[l])
GEMMA_LANEWISE(V, operator*, v[l] = a.v[l] * b.v[l])
GEMMA_LANEWISE(V, operator/, v[l] = a.v[l] / b.v[l])
GEMMA_LANEWISE(Mask, operator<, m[l] = a.v[l] < b.v[l])
GEMMA_LANEWISE(Mask, operator>, m[l] = a.v[l] > b.v[l])
GEMMA_LANEWISE(Mask, operator==, m[l] = a.v[l] == b.v[l])
#undef GEMMA_LANEWISE

inline Mask isnan(V a) {
  Mask r;
  for (int l = 0; l < LANES; ++l) r.m[l] = std::isnan(a.v[l]);
  return r;
}
inline V select(Mask m, V a, V b) {
  V r;
  for (int l = 0; l < LANES; ++l) r.v[l] = m.m[l] ? a.v[l] : b.v[l];
  return r;
}
// The same as the AVX2 clip: 0 > t ? 0 : t, then top < t ? top : t (NaN stays NaN).
inline V clip(V t, V top) {
  V r;
  for (int l = 0; l < LANES; ++l) {
    const float m = 0.0f > t.v[l] ? 0.0f : t.v[l];
    r.v[l] = top.v[l] < m ? top.v[l] : m;
  }
  return r;
}
inline V rint(V a) {
  V r;
  for (int l = 0; l < LANES; ++l) r.v[l] = std::rint(a.v[l]);
  return r;
}

// Read at run time, so that the compiler cannot turn pow(d, 2) into d * d.
volatile float two = 2.0f;

// The refit's error as the Python code sums it: MLX's uncompiled x ** 2 is powf(x, 2), which
// can differ from x * x in the last bit. Two such sums of n <= 128 non-negative terms differ
// by less than (2 (n - 1) 2^-24 + 2^-22) ~ 2e-5 of their size (plus n 2^-148 where squares
// are subnormal), so the cheap d * d sum decides `err2 < best` whenever it is farther than
// 1e-3 of best (best > 1e-30, both finite); closer calls are summed again with powf.
float refit_error(float cheap, float best, const float* d2, int lane, int n) {
  if (std::isfinite(cheap) && std::isfinite(best) && best > 1e-30f &&
      std::fabs(cheap - best) > 1e-3f * best)
    return cheap;
  const float p = two;
  float e = 0.0f;
  for (int i = 0; i < n; ++i) e = e + std::pow(d2[LANES * i + lane], p);
  return e;
}

// Levels q[i][lane] as MLX's bit stream; NaN (a group with an infinite scale) becomes 0, as
// MLX's astype(uint8) makes it on x86 and arm64.
void pack(const float* q, int lane, int n, int bits, uint32_t* out) {
  uint64_t acc = 0;
  int filled = 0;
  for (int i = 0; i < n; ++i) {
    const float v = q[LANES * i + lane];
    acc |= static_cast<uint64_t>(std::isnan(v) ? 0u : static_cast<uint32_t>(v)) << filled;
    filled += bits;
    if (filled >= 32) {
      *out++ = static_cast<uint32_t>(acc);
      acc >>= 32;
      filled -= 32;
    }
  }
}

constexpr long SERIAL_TILES = 64;  // below this a pooled thread's wake-up costs more than it saves

}  // namespace

void search_tiles_portable(const SearchArgs& a, long t0, long t1) { search_tiles<V>(a, t0, t1); }

void load_tile(const SearchArgs& a, long g0, int lanes, float* xt) {
  const int n = a.group_size;
  for (int l = 0; l < LANES; ++l) {
    const float* row = a.g + (g0 + std::min(l, lanes - 1)) * n;
    for (int i = 0; i < n; ++i) xt[LANES * i + l] = row[i];
  }
}

void finish_tile(const SearchArgs& a, long g0, int lanes, const float (*v)[LANES],
                 const float* q, const float* q2, const float* d2) {
  const int n = a.group_size, words = n * a.bits / 32;
  for (int l = 0; l < lanes; ++l) {
    const float best = v[0][l], s2 = v[3][l];
    const bool better = refit_error(v[5][l], best, d2, l, n) < best && s2 > 0.0f;
    a.scales[g0 + l] = better ? s2 : v[1][l];
    a.biases[g0 + l] = better ? v[4][l] : v[2][l];
    pack(better ? q2 : q, l, n, a.bits, a.packed + (g0 + l) * words);
  }
}

bool quant_search(const SearchArgs& a, bool portable) {
  const bool bits_ok = a.bits >= 2 && a.bits <= 8 && a.bits != 7;
  if (!bits_ok || a.group_size % 32 || a.group_size < 32 || a.group_size > MAX_GROUP ||
      a.spans < 1 || a.spans >= (1 << a.bits) || a.groups < 0)
    return false;
  const long tiles = (a.groups + LANES - 1) / LANES;
  const bool fast = !portable && avx2_available();
  const int parts = tiles < SERIAL_TILES ? 1 : static_cast<int>(
                                                   std::min<long>(pool_threads(), tiles));
  const long chunk = (tiles + parts - 1) / parts;
  pool_run(parts, [&](int part) {
    const long t0 = part * chunk, t1 = std::min(tiles, t0 + chunk);
    if (t0 >= t1) return;
    if (fast) {
      search_tiles_avx2(a, t0, t1);
    } else {
      search_tiles_portable(a, t0, t1);
    }
  });
  return true;
}

}  // namespace gemma_cpu
