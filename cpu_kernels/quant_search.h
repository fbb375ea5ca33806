// The least-error affine grid search of gemma_mlx.formats.quantize._search, per group of
// group_size float32 weights: spans levels, levels-1, ... (`spans` of them) anchored at the
// group's min or max, the least squared error kept, then a least-squares refit of scale and
// bias for the chosen levels, kept if better. Every value is computed with the same float32
// operations, in the same order, as MLX's CPU backend on Linux computes the Python version
// (sums run in element order, x**2 of the refit is powf), so the outputs are bit-identical.
#pragma once

#include <cstdint>

namespace gemma_cpu {

struct SearchArgs {
  const float* g;    // [groups, group_size], row-contiguous
  uint32_t* packed;  // [groups, group_size * bits / 32]: MLX's little-endian bit stream
  float* scales;     // [groups]
  float* biases;     // [groups]
  long groups;
  int group_size, bits, spans;
};

// Runs the search on the calling thread plus the pool (the portable lanes if asked or without
// AVX2); false if the arguments are not supported (bits 2-6 or 8, group_size 32, 64, 96 or
// 128, 1 <= spans < 2**bits).
bool quant_search(const SearchArgs& a, bool portable);

// Tiles (8 groups each) [t0, t1): 8-wide AVX2 lanes, or the portable version of the same code.
void search_tiles_avx2(const SearchArgs& a, long t0, long t1);
void search_tiles_portable(const SearchArgs& a, long t0, long t1);

}  // namespace gemma_cpu
