// The int8-activation kernel with AVX-VNNI (vpdpbusd: 4 and 8 bits, no intermediate
// saturation). Compiled with -mavx2 -mfma -mavxvnni; called only when the CPU has it.
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define GEMMA_DOT(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
#define GEMMA_DOT2(u0, s0, u1, s1) \
  _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u0, s0), u1, s1)
#include "qmm_int8.h"

namespace gemma_cpu {
void qmm_int8_rows_vnni(const QmmArgs& a, const Int8X& x, const float* xsum, int n0, int n1) {
  if (a.bits == 4) return rows<4>(a, x, xsum, n0, n1);
  rows<8>(a, x, xsum, n0, n1);
}
}  // namespace gemma_cpu
#else
#include "qmm_kernel.h"
namespace gemma_cpu {
void qmm_int8_rows_vnni(const QmmArgs&, const Int8X&, const float*, int, int) {}
}  // namespace gemma_cpu
#endif
