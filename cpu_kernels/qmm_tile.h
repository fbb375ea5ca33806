// Tiles of activation rows as compile-time sizes, shared by the vector kernels.
#pragma once

#include <algorithm>

namespace gemma_cpu {

constexpr int MAX_TILE = 8;  // activation rows sharing one unpacked weight block

// f.template operator()<T>() with T = tile (1 to MAX_TILE) a constant. With a run-time tile
// the compiler kept a kernel's accumulators on the stack, a store-to-load chain on every
// block that held the AVX-512 kernel to half its speed.
template <class F>
inline void with_tile(int tile, F&& f) {
  switch (tile) {
    case 1: return f.template operator()<1>();
    case 2: return f.template operator()<2>();
    case 3: return f.template operator()<3>();
    case 4: return f.template operator()<4>();
    case 5: return f.template operator()<5>();
    case 6: return f.template operator()<6>();
    case 7: return f.template operator()<7>();
    default: return f.template operator()<8>();
  }
}

// tile_fn.template operator()<T>(n, m0) for every weight row n in [n0, n1) and every tile of
// x rows from m0. Above MAX_TILE rows of x, the weight rows go in runs of 16 that stay in L1
// for every tile. (The tile size dispatched once outside the row loop made 8 rows ~15%
// slower: the compiler then hoisted more into registers than the tile leaves free.) With
// STEP = 2, tile_fn.template operator()<T, R>(n, m0) takes R = 2 weight rows from n where
// two remain, R = 1 for the last odd one.
template <int STEP = 1, class F>
inline void for_rows(int M, int n0, int n1, F&& tile_fn) {
  auto call = [&]<int T>(int n, int m0, int end) {
    if constexpr (STEP == 1) {
      tile_fn.template operator()<T>(n, m0);
    } else if (n + 1 < end) {
      tile_fn.template operator()<T, 2>(n, m0);
    } else {
      tile_fn.template operator()<T, 1>(n, m0);
    }
  };
  // Rows by STEP: the pairs a kernel's small tiles take one row at a time are still called
  // in STEP-row strides, so a kernel given STEP = 2 covers both rows in its tile.
  if (M <= MAX_TILE) {
    for (int n = n0; n < n1; n += STEP)
      with_tile(M, [&]<int T>() { call.template operator()<T>(n, 0, n1); });
    return;
  }
  for (int c0 = n0; c0 < n1; c0 += 16)
    for (int m0 = 0; m0 < M; m0 += MAX_TILE)
      with_tile(std::min(MAX_TILE, M - m0), [&]<int T>() {
        const int end = std::min(n1, c0 + 16);
        for (int n = c0; n < end; n += STEP) call.template operator()<T>(n, m0, end);
      });
}

// log2 of a group size (32, 64 or 128: qmm() checks), so the block loops shift, not divide.
inline int group_shift(int group_size) { return __builtin_ctz(static_cast<unsigned>(group_size)); }

}  // namespace gemma_cpu
