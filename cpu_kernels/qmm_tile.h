// Tiles of activation rows as compile-time sizes, shared by the vector kernels.
#pragma once

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

// log2 of a group size (32, 64 or 128: qmm() checks), so the block loops shift, not divide.
inline int group_shift(int group_size) { return __builtin_ctz(static_cast<unsigned>(group_size)); }

}  // namespace gemma_cpu
