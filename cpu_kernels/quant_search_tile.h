// The search on tiles of 8 groups, one group per lane of V (8 floats: __m256 in
// quant_search_avx2.cpp, a plain array in quant_search.cpp). Lanes hold groups, not elements,
// so every sum runs over a group's elements in order, as MLX's CPU reduction does. V provides
// V(float), load, store, + - * /, < > ==, select, isnan, rint and clip; its Mask provides |.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "quant_search.h"

namespace gemma_cpu {

inline constexpr int LANES = 8;
inline constexpr int MAX_GROUP = 128;

// quant_search.cpp: group g0 + l of `a` into lane l of xt [group_size][8] (missing lanes
// repeat the last group), and per lane the refit's decision, scale, bias and packed levels.
// v holds best, bs, bb, s2, b2, err2 (8 lanes each).
void load_tile(const SearchArgs& a, long g0, int lanes, float* xt);
void finish_tile(const SearchArgs& a, long g0, int lanes, const float (*v)[LANES],
                 const float* q, const float* q2, const float* d2);

namespace {

// MLX's maximum: a if a is NaN, else a > b ? a : b (so +0 against -0 is b).
template <class V> V mlx_max(V a, V b) { return select(isnan(a) | (a > b), a, b); }

// mx.clip(mx.round((x - b) / s), 0, levels) as MLX evaluates it, but for the sign of a zero
// level, which V's clip may leave at -0: no output depends on it (q * s + b - x and its square,
// the sums from +0 of the fit, and the packed integer are all the same for -0 and +0).
template <class V> V level(V x, V b, V s, V top) { return clip(rint((x - b) / s), top); }

// The group's min and max as MLX reduces them: in order, the first of equal values, NaN sticks.
template <class V> void min_max(const float* xt, int n, V& lo, V& hi) {
  lo = hi = V::load(xt);
  for (int i = 1; i < n; ++i) {
    const V x = V::load(xt + LANES * i);
    lo = select(isnan(x) | (x < lo), x, lo);
    hi = select(isnan(x) | (x > hi), x, hi);
  }
}

// Squared errors of the grids (s, b0) and (s, b1): _grid_error, ((q * s + b) - x) ** 2 summed.
template <class V> void grid_errors(const float* xt, int n, V s, V b0, V b1, V top, V& e0,
                                    V& e1) {
  e0 = e1 = V(0.0f);
  for (int i = 0; i < n; ++i) {
    const V x = V::load(xt + LANES * i);
    const V d0 = level(x, b0, s, top) * s + b0 - x;
    const V d1 = level(x, b1, s, top) * s + b1 - x;
    e0 = e0 + d0 * d0;
    e1 = e1 + d1 * d1;
  }
}

template <class V> void keep_better(V e, V s, V b, V& best, V& bs, V& bb) {
  const auto m = e < best;
  best = select(m, e, best);
  bs = select(m, s, bs);
  bb = select(m, b, bb);
}

// The candidate loop of _search: spans levels down, each anchored at the min, then the max.
template <class V> void best_grid(const float* xt, int n, int levels, int spans, V& best,
                                  V& bs, V& bb) {
  V lo, hi;
  min_max(xt, n, lo, hi);
  const V top(static_cast<float>(levels));
  const V width = mlx_max(hi - lo, V(static_cast<float>(1e-12)));  // Python's 1e-12 as f32
  for (int span = levels; span > levels - spans; --span) {
    const V s = width / V(static_cast<float>(span));
    const V b1 = hi - top * s;
    V e0, e1;
    grid_errors(xt, n, s, lo, b1, top, e0, e1);
    if (span == levels) {
      best = e0, bs = s, bb = lo;
    } else {
      keep_better(e0, s, lo, best, bs, bb);
    }
    keep_better(e1, s, b1, best, bs, bb);
  }
}

// The best grid's levels q, their least-squares (s2, b2) as _fit computes them, the refit's
// levels q2 and residuals d2 = q2 * s2 + b2 - x, and err2 summed from d2 * d2.
template <class V> void refit(const float* xt, int n, V top, V bs, V bb, float* q, float* q2,
                              float* d2, V& s2, V& b2, V& err2) {
  const V zero(0.0f), one(1.0f), count(static_cast<float>(n));
  V sq = zero, sg = zero, sqq = zero, sqg = zero;
  for (int i = 0; i < n; ++i) {
    const V x = V::load(xt + LANES * i), qi = level(x, bb, bs, top);
    qi.store(q + LANES * i);
    sq = sq + qi, sg = sg + x, sqq = sqq + qi * qi, sqg = sqg + qi * x;
  }
  const V det = count * sqq - sq * sq;
  const auto ok = det > zero;
  s2 = select(ok, (count * sqg - sq * sg) / select(ok, det, one), zero);
  b2 = select(ok, (sg - s2 * sq) / count, sg / count);
  const V den = select(s2 == zero, one, s2);
  err2 = zero;
  for (int i = 0; i < n; ++i) {
    const V x = V::load(xt + LANES * i), qi = level(x, b2, den, top);
    const V d = qi * s2 + b2 - x;
    qi.store(q2 + LANES * i);
    d.store(d2 + LANES * i);
    err2 = err2 + d * d;
  }
}

template <class V> void search_tiles(const SearchArgs& a, long t0, long t1) {
  const int n = a.group_size, levels = (1 << a.bits) - 1;
  alignas(32) float xt[MAX_GROUP * LANES], q[MAX_GROUP * LANES], q2[MAX_GROUP * LANES],
      d2[MAX_GROUP * LANES], v[6][LANES];
  for (long t = t0; t < t1; ++t) {
    const long g0 = t * LANES;
    const int lanes = static_cast<int>(std::min<long>(LANES, a.groups - g0));
    load_tile(a, g0, lanes, xt);
    V best, bs, bb, s2, b2, err2;
    best_grid(xt, n, levels, a.spans, best, bs, bb);
    refit(xt, n, V(static_cast<float>(levels)), bs, bb, q, q2, d2, s2, b2, err2);
    best.store(v[0]), bs.store(v[1]), bb.store(v[2]), s2.store(v[3]), b2.store(v[4]);
    err2.store(v[5]);
    finish_tile(a, g0, lanes, v, q, q2, d2);
  }
}

}  // namespace
}  // namespace gemma_cpu
