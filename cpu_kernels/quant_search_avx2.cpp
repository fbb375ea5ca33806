// The search's lanes as AVX2 registers (compiled with -mavx2 -ffp-contract=off: every product
// and sum is rounded on its own, as in MLX's CPU code; called after a run-time CPU check).
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "quant_search_tile.h"

namespace gemma_cpu {
namespace {

struct Mask {
  __m256 m;
};
inline Mask operator|(Mask a, Mask b) { return {_mm256_or_ps(a.m, b.m)}; }

struct V {
  __m256 v;
  V() = default;
  explicit V(__m256 x) : v(x) {}
  explicit V(float x) : v(_mm256_set1_ps(x)) {}
  static V load(const float* p) { return V(_mm256_load_ps(p)); }
  void store(float* p) const { _mm256_store_ps(p, v); }
};

inline V operator+(V a, V b) { return V(_mm256_add_ps(a.v, b.v)); }
inline V operator-(V a, V b) { return V(_mm256_sub_ps(a.v, b.v)); }
inline V operator*(V a, V b) { return V(_mm256_mul_ps(a.v, b.v)); }
inline V operator/(V a, V b) { return V(_mm256_div_ps(a.v, b.v)); }
inline Mask operator<(V a, V b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline Mask operator>(V a, V b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline Mask operator==(V a, V b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
inline Mask isnan(V a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
inline V select(Mask m, V a, V b) { return V(_mm256_blendv_ps(b.v, a.v, m.m)); }
// min(max(t, 0), top) with NaN kept, in two instructions: maxps/minps return their second
// operand on NaN or equality, so only t = -0 differs from MLX (it stays -0, which is harmless).
inline V clip(V t, V top) {
  return V(_mm256_min_ps(top.v, _mm256_max_ps(_mm256_setzero_ps(), t.v)));
}
// Round half to even, as std::rint in the default rounding mode.
inline V rint(V a) { return V(_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }

}  // namespace

void search_tiles_avx2(const SearchArgs& a, long t0, long t1) { search_tiles<V>(a, t0, t1); }

}  // namespace gemma_cpu
#else
#include "quant_search.h"

namespace gemma_cpu {
void search_tiles_avx2(const SearchArgs& a, long t0, long t1) { search_tiles_portable(a, t0, t1); }
}  // namespace gemma_cpu
#endif
