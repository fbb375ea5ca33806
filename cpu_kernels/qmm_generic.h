// Any bit width (2, 3, 4, 5, 6, 8) read as a little-endian bit stream per weight row: each
// group is decoded to floats, then dotted with every activation row. Included by the AVX2
// translation unit (the compiler vectorises the loops there) and by the portable one.
#pragma once

#include "qmm_kernel.h"
#include "qmm_scales.h"

namespace gemma_cpu {

static inline void decode_group(const uint8_t* row, int start, int count, int bits,
                                float* out) {
  const uint32_t mask = (1u << bits) - 1;
  for (int k = 0; k < count; ++k) {
    const long bit = static_cast<long>(start + k) * bits;
    const int shift = static_cast<int>(bit % 8);
    uint32_t window = row[bit / 8];
    if (shift + bits > 8) window |= static_cast<uint32_t>(row[bit / 8 + 1]) << 8;  // bits <= 8
    out[k] = static_cast<float>((window >> shift) & mask);
  }
}

static inline void generic_rows(const QmmArgs& a, const float* xsum, int n0, int n1) {
  const int groups = a.K / a.group_size;
  const long row_bytes = static_cast<long>(a.K) * a.bits / 8;
  float q[128];
  for (int n = n0; n < n1; ++n) {
    const uint8_t* row = reinterpret_cast<const uint8_t*>(a.w) + n * row_bytes;
    for (int m = 0; m < a.M; ++m) a.y[static_cast<long>(m) * a.N + n] = 0.0f;
    for (int g = 0; g < groups; ++g) {
      decode_group(row, g * a.group_size, a.group_size, a.bits, q);
      const float s = load_scale(a.scales, a.scale_type, static_cast<long>(n) * groups + g);
      const float b = load_scale(a.biases, a.scale_type, static_cast<long>(n) * groups + g);
      for (int m = 0; m < a.M; ++m) {
        const float* xr = a.x + static_cast<long>(m) * a.K + g * a.group_size;
        float dot = 0.0f;
        for (int k = 0; k < a.group_size; ++k) dot += q[k] * xr[k];
        a.y[static_cast<long>(m) * a.N + n] += s * dot + b * xsum[m * groups + g];
      }
    }
  }
}

}  // namespace gemma_cpu
