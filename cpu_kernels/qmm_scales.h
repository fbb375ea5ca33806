// Scales and biases in float32, float16 or bfloat16, read as float32.
#pragma once

#include <cstdint>
#include <cstring>

#include "qmm_kernel.h"

namespace gemma_cpu {

static inline float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static inline float load_scale(const void* p, ScaleType t, long i) {
  if (t == ScaleType::F32) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  if (t == ScaleType::F16) return half_to_float(h);
  const uint32_t bits = static_cast<uint32_t>(h) << 16;  // bfloat16: the top half of a float
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace gemma_cpu
