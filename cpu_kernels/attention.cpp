// Decode attention: a few queries per head (a decode step, speculative verification, a batch
// of sequences) over keys and values read in place, strided, in two passes (scores, then the
// weighted sum of values) for all the query heads of a KV head at once: no packing copies as
// in BLAS's GEMM, whose M of 1-16 rows MLX's CPU attention pays for. A long context is split
// over the thread pool and merged by log-sum-exp. Compiled with -mavx2 -mfma on x86, and
// called there only when the CPU has them.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "qmm_kernel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "qmm_simd.h"
#define GEMMA_AVX2 1
#endif

namespace gemma_cpu {

namespace {

inline float dot(const float* a, const float* b, int n) {
  int i = 0;
  float s = 0.0f;
#ifdef GEMMA_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  s = hsum(_mm256_add_ps(s0, s1));
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float p, const float* x, float* y, int n) {
  int i = 0;
#ifdef GEMMA_AVX2
  const __m256 pv = _mm256_set1_ps(p);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += p * x[i];
}

// Keys [s0, s1) of one (batch row, KV head) for its R = rep * Lq query rows: per row the
// running max m, the sum of exp(score - m) l, and the unnormalised output o [D].
void partial(const AttentionArgs& a, int b, int h, int s0, int s1, float* m, float* l, float* o) {
  const int rep = a.Hq / a.Hkv, R = rep * a.Lq, n = s1 - s0;
  auto q_row = [&](int r) {  // row r: query head h * rep + r / Lq, query r % Lq
    return a.q + b * a.q_strides[0] + (h * rep + r / a.Lq) * a.q_strides[1] +
           (r % a.Lq) * a.q_strides[2];
  };
  const float* k = a.k + b * a.k_strides[0] + h * a.k_strides[1];
  const float* v = a.v + b * a.v_strides[0] + h * a.v_strides[1];
  const bool* mask = a.mask ? a.mask + b * a.mask_b_stride : nullptr;
  std::vector<float> p(static_cast<size_t>(R) * n);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int s = 0; s < n; ++s) {
    const float* ks = k + (s0 + s) * a.k_strides[2];
    for (int r = 0; r < R; ++r) {
      const bool on = !mask || mask[static_cast<long>(r % a.Lq) * a.S + s0 + s];
      p[static_cast<size_t>(r) * n + s] = on ? a.scale * dot(q_row(r), ks, a.D)
                                             : neg_inf;
    }
  }
  for (int r = 0; r < R; ++r) {
    float* pr = p.data() + static_cast<size_t>(r) * n;
    float mr = neg_inf, lr = 0.0f;
    for (int s = 0; s < n; ++s) mr = std::max(mr, pr[s]);
    for (int s = 0; s < n; ++s) {
      pr[s] = mr == neg_inf ? 0.0f : std::exp(pr[s] - mr);
      lr += pr[s];
    }
    m[r] = mr;
    l[r] = lr;
  }
  std::fill(o, o + static_cast<long>(R) * a.D, 0.0f);
  for (int s = 0; s < n; ++s) {
    const float* vs = v + (s0 + s) * a.v_strides[2];
    for (int r = 0; r < R; ++r) {
      const float w = p[static_cast<size_t>(r) * n + s];
      if (w != 0.0f) axpy(w, vs, o + static_cast<long>(r) * a.D, a.D);
    }
  }
}

// Below this many multiply-adds per (row, KV head) one thread does all of its keys.
constexpr long SPLIT_WORK = 1 << 19;

}  // namespace

void decode_attention(const AttentionArgs& a) {
  const int rep = a.Hq / a.Hkv, R = rep * a.Lq, pairs = a.B * a.Hkv;
  const int threads = pool_threads();
  const long work = static_cast<long>(R) * a.S * a.D;
  const int parts = pairs >= threads || work < SPLIT_WORK ? 1 : std::min(threads, a.S);
  const int tasks = pairs * parts, span = (a.S + parts - 1) / parts;
  std::vector<float> m(static_cast<size_t>(tasks) * R), l(m.size()),
      o(m.size() * static_cast<size_t>(a.D));
  auto run = [&](int task) {
    const int pair = task / parts, part = task % parts;
    const int s0 = part * span, s1 = std::min(a.S, s0 + span);
    float* mt = m.data() + static_cast<size_t>(task) * R;
    float* lt = l.data() + static_cast<size_t>(task) * R;
    float* ot = o.data() + static_cast<size_t>(task) * R * a.D;
    if (s0 >= s1) {
      std::fill(mt, mt + R, -std::numeric_limits<float>::infinity());
      std::fill(lt, lt + R, 0.0f);
      std::fill(ot, ot + static_cast<long>(R) * a.D, 0.0f);
      return;
    }
    partial(a, pair / a.Hkv, pair % a.Hkv, s0, s1, mt, lt, ot);
  };
  const int workers = std::min(threads, tasks);
  const bool serial = workers <= 1 || static_cast<long>(pairs) * work < SPLIT_WORK;
  if (serial) {
    for (int t = 0; t < tasks; ++t) run(t);
  } else {
    pool_run(workers, [&](int w) {
      for (int t = w; t < tasks; t += workers) run(t);
    });
  }
  for (int pair = 0; pair < pairs; ++pair)
    for (int r = 0; r < R; ++r) {
      float mx = -std::numeric_limits<float>::infinity();
      for (int part = 0; part < parts; ++part)
        mx = std::max(mx, m[(static_cast<size_t>(pair) * parts + part) * R + r]);
      float total = 0.0f;
      float* out = a.out + ((static_cast<long>(pair) * rep) * a.Lq + r) * a.D;
      // row r of the pair: query head pair_h * rep + r / Lq, query r % Lq; rows of one pair
      // are contiguous in [B, Hq, Lq, D] because its query heads are.
      std::fill(out, out + a.D, 0.0f);
      for (int part = 0; part < parts; ++part) {
        const size_t at = (static_cast<size_t>(pair) * parts + part) * R + r;
        if (l[at] == 0.0f) continue;
        const float w = std::exp(m[at] - mx);
        total += w * l[at];
        axpy(w, o.data() + at * a.D, out, a.D);
      }
      const float inv = total > 0.0f ? 1.0f / total : 0.0f;
      for (int d = 0; d < a.D; ++d) out[d] *= inv;
    }
}

}  // namespace gemma_cpu
