// simd_* operations and barriers as rendezvous of the live lanes of a simdgroup.
#pragma once
#include "msl_sched.h"

namespace msl_emu {
enum SimdOp {
  OP_SUM, OP_PRODUCT, OP_MAX, OP_MIN, OP_AND, OP_OR, OP_XOR, OP_PREFIX_EXCL_SUM,
  OP_PREFIX_INCL_SUM, OP_PREFIX_EXCL_PRODUCT, OP_PREFIX_INCL_PRODUCT, OP_SHUFFLE,
  OP_SHUFFLE_DOWN, OP_SHUFFLE_UP, OP_SHUFFLE_XOR, OP_ROTATE_DOWN, OP_ROTATE_UP, OP_FILL_DOWN,
  OP_FILL_UP, OP_BROADCAST, OP_BROADCAST_FIRST, OP_ANY, OP_ALL, OP_BALLOT, OP_ACTIVE_MASK,
  OP_IS_FIRST, OP_BARRIER, OP_COUNT
};
inline const char* simd_op_name(int op) {
  static const char* names[OP_COUNT] = {
      "simd_sum", "simd_product", "simd_max", "simd_min", "simd_and", "simd_or", "simd_xor",
      "simd_prefix_exclusive_sum", "simd_prefix_inclusive_sum",
      "simd_prefix_exclusive_product", "simd_prefix_inclusive_product", "simd_shuffle",
      "simd_shuffle_down", "simd_shuffle_up", "simd_shuffle_xor", "simd_shuffle_rotate_down",
      "simd_shuffle_rotate_up", "simd_shuffle_and_fill_down", "simd_shuffle_and_fill_up",
      "simd_broadcast", "simd_broadcast_first", "simd_any", "simd_all", "simd_ballot",
      "simd_active_threads_mask", "simd_is_first", "simdgroup_barrier"};
  return op >= 0 && op < OP_COUNT ? names[op] : "?";
}

// The values every active lane brought to one rendezvous, read after the release.
template <class T>
struct Snap {
  const SimdGroup* g;
  int lane;
  uint32_t mask;
  bool active(int l) const { return l >= 0 && l < kSimd && (mask >> l & 1u); }
  T at(int l) const {
    T v;
    memcpy(&v, g->snap[l], sizeof(T));
    return v;
  }
  // A lane that is inactive (exited) or out of range has no value: poison (NaN / -1).
  T src(int l) const {
    if (active(l)) return at(l);
    T v;
    memset(&v, 0xFF, sizeof(T));
    return v;
  }
  int first() const { return __builtin_ctz(mask); }
};

template <class T>
inline Snap<T> simd_arrive(Site site, int op, const T& v) {
  static_assert(sizeof(T) <= 16, "simd value larger than 16 bytes");
  Runtime& r = rt();
  Fiber& f = r.f[r.cur];
  SimdGroup& g = r.sg[f.sg];
  memcpy(g.slot[f.lane], &v, sizeof(T));
  if (g.wait == 0) {
    g.line = site.line;
    g.op = op;
    g.size = int(sizeof(T));
  } else if (g.line != site.line || g.op != op) {
    fail("non-uniform simd operation (divergent control flow): lanes of simdgroup %d wait at "
         "%s (line %d) and %s (line %d)", f.sg, simd_op_name(g.op), g.line,
         simd_op_name(op), site.line);
  }
  g.wait++;
  g.waitmask |= 1u << f.lane;
  if (g.wait == g.live) {
    release_simd(f.sg);
  } else {
    f.state = WAIT_SIMD;
    run_next(f.ctx);
  }
  return Snap<T>{&g, f.lane, g.snapmask};
}

// A reduction's result is the same for every lane: the first lane computes it, the rest copy.
template <class T, class F>
inline T tree_reduce(const Snap<T>& s, T identity, F combine) {
  SimdGroup& g = const_cast<SimdGroup&>(*s.g);
  T v[kSimd];
  if (g.cached_gen == g.gen) {
    memcpy(&v[0], g.cached, sizeof(T));
    return v[0];
  }
  for (int l = 0; l < kSimd; l++) v[l] = s.active(l) ? s.at(l) : identity;
  for (int w = kSimd / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; l++) v[l] = combine(v[l], v[l + w]);
  memcpy(g.cached, &v[0], sizeof(T));
  g.cached_gen = g.gen;
  return v[0];
}
template <class T, class F>
inline T fold(const Snap<T>& s, int upto, T init, F combine) {
  T acc = init;
  for (int l = 0; l < upto; l++)
    if (s.active(l)) acc = combine(acc, s.at(l));
  return acc;
}
template <class T>
struct Pair {
  T a, b;
};
}  // namespace msl_emu

namespace metal {
using msl_emu::Site;
enum class mem_flags {
  mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4,
  mem_threadgroup_imageblock = 8, mem_object_data = 16
};
constexpr mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(int(a) | int(b)); }

inline void threadgroup_barrier(Site s, mem_flags = mem_flags::mem_none) {
  msl_emu::threadgroup_barrier_at(s.line);
}
inline void simdgroup_barrier(Site s, mem_flags = mem_flags::mem_none) {
  msl_emu::Runtime& r = msl_emu::rt();
  r.f[r.cur].sg_bars++;
  msl_emu::simd_arrive(s, msl_emu::OP_BARRIER, 0);
}

#define MSL_SIMD_REDUCE(name, OP, ident, expr)                         \
  template <class T>                                                  \
  inline T name(Site site, T x) {                                     \
    auto s = msl_emu::simd_arrive(site, msl_emu::OP, x);              \
    return msl_emu::tree_reduce<T>(s, T(ident), [](T a, T b) { return T(expr); }); \
  }
MSL_SIMD_REDUCE(simd_sum, OP_SUM, 0, a + b)
MSL_SIMD_REDUCE(simd_product, OP_PRODUCT, 1, a * b)
MSL_SIMD_REDUCE(simd_and, OP_AND, ~T(0), a & b)
MSL_SIMD_REDUCE(simd_or, OP_OR, 0, a | b)
MSL_SIMD_REDUCE(simd_xor, OP_XOR, 0, a ^ b)
MSL_SIMD_REDUCE(simd_max, OP_MAX, s.at(s.first()), metal::max(a, b))
MSL_SIMD_REDUCE(simd_min, OP_MIN, s.at(s.first()), metal::min(a, b))

#define MSL_SIMD_PREFIX(name, OP, ident, incl, expr)                                 \
  template <class T>                                                                \
  inline T name(Site site, T x) {                                                   \
    auto s = msl_emu::simd_arrive(site, msl_emu::OP, x);                            \
    return msl_emu::fold<T>(s, s.lane + incl, T(ident), [](T a, T b) { return T(expr); }); \
  }
MSL_SIMD_PREFIX(simd_prefix_exclusive_sum, OP_PREFIX_EXCL_SUM, 0, 0, a + b)
MSL_SIMD_PREFIX(simd_prefix_inclusive_sum, OP_PREFIX_INCL_SUM, 0, 1, a + b)
MSL_SIMD_PREFIX(simd_prefix_exclusive_product, OP_PREFIX_EXCL_PRODUCT, 1, 0, a * b)
MSL_SIMD_PREFIX(simd_prefix_inclusive_product, OP_PREFIX_INCL_PRODUCT, 1, 1, a * b)

// Shuffles: a source lane outside the simdgroup leaves the value unchanged (down/up/xor);
// an exited source lane gives poison.
#define MSL_SIMD_SHUFFLE(name, OP, src_expr, keep_expr)           \
  template <class T>                                              \
  inline T name(Site site, T x, uint n) {                         \
    auto s = msl_emu::simd_arrive(site, msl_emu::OP, x);          \
    int l = s.lane;                                               \
    (void)l;                                                      \
    int src = int(src_expr);                                      \
    return (keep_expr) ? x : s.src(src);                          \
  }
MSL_SIMD_SHUFFLE(simd_shuffle, OP_SHUFFLE, n, false)
MSL_SIMD_SHUFFLE(simd_broadcast, OP_BROADCAST, n, false)
MSL_SIMD_SHUFFLE(simd_shuffle_down, OP_SHUFFLE_DOWN, l + int(n), src >= msl_emu::kSimd)
MSL_SIMD_SHUFFLE(simd_shuffle_up, OP_SHUFFLE_UP, l - int(n), src < 0)
MSL_SIMD_SHUFFLE(simd_shuffle_xor, OP_SHUFFLE_XOR, l ^ int(n), src >= msl_emu::kSimd)
MSL_SIMD_SHUFFLE(simd_shuffle_rotate_down, OP_ROTATE_DOWN, (l + int(n)) % 32, false)
MSL_SIMD_SHUFFLE(simd_shuffle_rotate_up, OP_ROTATE_UP, ((l - int(n)) % 32 + 32) % 32, false)

template <class T>
inline T simd_shuffle_and_fill_down(Site site, T x, T fill, uint n) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_FILL_DOWN, msl_emu::Pair<T>{x, fill});
  int src = s.lane + int(n);
  return src < msl_emu::kSimd ? s.src(src).a : s.src(src - msl_emu::kSimd).b;
}
template <class T>
inline T simd_shuffle_and_fill_up(Site site, T x, T fill, uint n) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_FILL_UP, msl_emu::Pair<T>{x, fill});
  int src = s.lane - int(n);
  return src >= 0 ? s.src(src).a : s.src(src + msl_emu::kSimd).b;
}
template <class T>
inline T simd_broadcast_first(Site site, T x) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_BROADCAST_FIRST, x);
  return s.at(s.first());
}
inline bool simd_any(Site site, bool x) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_ANY, x);
  return msl_emu::fold<bool>(s, msl_emu::kSimd, false, [](bool a, bool b) { return a || b; });
}
inline bool simd_all(Site site, bool x) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_ALL, x);
  return msl_emu::fold<bool>(s, msl_emu::kSimd, true, [](bool a, bool b) { return a && b; });
}
inline bool simd_is_first(Site site) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_IS_FIRST, 0);
  return s.lane == s.first();
}

struct simd_vote {
  typedef uint64_t vote_t;
  vote_t v;
  explicit constexpr simd_vote(vote_t x = 0) : v(x) {}
  explicit constexpr operator vote_t() const { return v; }
  constexpr bool any() const { return v != 0; }
};
inline simd_vote simd_ballot(Site site, bool x) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_BALLOT, x);
  uint64_t v = 0;
  for (int l = 0; l < msl_emu::kSimd; l++) v |= uint64_t(s.active(l) && s.at(l)) << l;
  return simd_vote(v);
}
inline simd_vote simd_active_threads_mask(Site site) {
  auto s = msl_emu::simd_arrive(site, msl_emu::OP_ACTIVE_MASK, 0);
  return simd_vote(s.mask);
}
}  // namespace metal
