// CPU emulation of the Metal Shading Language subset our kernels use (see README.md).
// GPU threads are cooperative fibers (ucontext) of one OS thread; threadgroups run one after
// another; barriers and simd_* operations are rendezvous points that also detect divergence;
// threadgroup memory is poisoned (0xFF bytes: NaN for floats) at the start of every group.
#pragma once
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

// ---------------------------------------------------------------------------- types
typedef unsigned int uint;
typedef _Float16 half;
typedef _Float16 float16_t;

struct bfloat16_t {
  uint16_t bits;
  bfloat16_t() = default;
  bfloat16_t(float f) {  // round to nearest even, as Metal's conversion does
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = uint16_t((u >> 16) | 0x40);
    } else {
      bits = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
  }
  bfloat16_t(double f) : bfloat16_t(float(f)) {}
  bfloat16_t(int i) : bfloat16_t(float(i)) {}
  bfloat16_t(_Float16 h) : bfloat16_t(float(h)) {}
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};
typedef bfloat16_t bfloat;

template <class T> struct vec2 { T x, y; };
template <class T> struct vec3 { T x, y, z; };
template <class T> struct vec4 { T x, y, z, w; };
typedef vec2<uint> uint2;
typedef vec3<uint> uint3;
typedef vec2<int> int2;
typedef vec3<int> int3;
typedef vec2<float> float2;
typedef vec4<float> float4;

// address spaces and attributes have no meaning on the CPU
#define device
#define constant
#define thread
#define threadgroup
#define MLX_MTL_PRAGMA_UNROLL

namespace msl {

struct Ids {
  uint3 thread_position_in_grid, thread_position_in_threadgroup, threadgroup_position_in_grid;
  uint3 threads_per_threadgroup, dispatch_threads_per_threadgroup, threadgroups_per_grid;
  uint3 threads_per_grid;
  uint thread_index_in_threadgroup, thread_index_in_simdgroup, simdgroup_index_in_threadgroup;
  uint simdgroups_per_threadgroup;
  uint threads_per_simdgroup = 32, thread_execution_width = 32;
};

enum State { RUNNABLE, WAIT_TG, WAIT_SIMD, DONE };
constexpr int SIMD = 32;
constexpr int MAX_THREADS = 1024;
constexpr size_t STACK = 128 * 1024;
constexpr size_t TG_LIMIT = 32 * 1024;

struct Slot {
  unsigned char value[16];
  int op;
};

struct Fiber {
  ucontext_t ctx;
  State state;
  Ids ids;
  long barriers;
  Slot slot;
};

struct Runtime {
  ucontext_t main;
  std::vector<Fiber> fibers;
  std::vector<char*> stacks;
  int n = 0, current = -1;
  std::string error;
  std::function<void(const Ids&)> body;
  // simd rendezvous snapshot per simdgroup: values and the mask of participating lanes
  std::vector<Slot> snapshot;
  std::vector<uint64_t> mask;
  // threadgroup memory: registered arrays, poisoned at each group start
  std::vector<std::pair<void*, size_t>> tg_arrays;
  size_t tg_bytes = 0;
};

inline Runtime& rt() {
  static Runtime r;
  return r;
}

inline void fail(const std::string& msg) {
  Runtime& r = rt();
  if (r.error.empty()) r.error = msg;
  Fiber& f = r.fibers[r.current];
  f.state = DONE;
  swapcontext(&f.ctx, &r.main);  // never resumed: the launch is abandoned
}

inline Fiber& self() { return rt().fibers[rt().current]; }

inline void block(State s) {
  Fiber& f = self();
  f.state = s;
  swapcontext(&f.ctx, &rt().main);
}

template <class T, int ID> T& tg_var() {
  static T storage;
  static bool registered = false;
  if (!registered) {
    registered = true;
    Runtime& r = rt();
    r.tg_bytes += sizeof(T);
    if (r.tg_bytes > TG_LIMIT) fail("threadgroup memory over 32 KiB");
    std::memset(&storage, 0xFF, sizeof(T));
    r.tg_arrays.push_back({&storage, sizeof(T)});
  }
  return storage;
}

// ---------------------------------------------------------------------------- simd ops
enum Op { SUM = 1, MAX, MIN, PREFIX_EXCL, SHUFFLE, SHUFFLE_DOWN, SHUFFLE_UP, SHUFFLE_XOR,
          BROADCAST_FIRST, ANY, ALL, SIMD_BARRIER };

inline uint lane() { return self().ids.thread_index_in_simdgroup; }
inline uint group() { return self().ids.simdgroup_index_in_threadgroup; }

// Deposit `v` with `op`, wait for every live lane of the simdgroup, then read the snapshot.
template <class T> inline void rendezvous(T v, int op) {
  static_assert(sizeof(T) <= 16, "simd value too large");
  Fiber& f = self();
  std::memcpy(f.slot.value, &v, sizeof(T));
  f.slot.op = op;
  block(WAIT_SIMD);
}

template <class T> inline T lane_value(uint l) {
  T v;
  std::memcpy(&v, rt().snapshot[group() * SIMD + l].value, sizeof(T));
  return v;
}

inline bool active(uint l) { return (rt().mask[group()] >> l) & 1u; }

template <class T> inline T reduce(T v, int op) {
  rendezvous(v, op);
  T iacc{};
  bool first = true;
  for (uint l = 0; l < SIMD; l++) {
    if (!active(l)) continue;
    T x = lane_value<T>(l);
    if (first) { iacc = x; first = false; continue; }
    if (op == SUM) iacc = T(iacc + x);
    else if (op == MAX) iacc = x > iacc ? x : iacc;
    else iacc = x < iacc ? x : iacc;
  }
  return iacc;
}

template <class T> inline T from_lane(T v, int op, int src) {
  rendezvous(v, op);
  if (src < 0 || src >= SIMD || !active(uint(src))) return v;  // undefined on Metal
  return lane_value<T>(uint(src));
}

}  // namespace msl

template <class T> inline T simd_sum(T v) { return msl::reduce(v, msl::SUM); }
template <class T> inline T simd_max(T v) { return msl::reduce(v, msl::MAX); }
template <class T> inline T simd_min(T v) { return msl::reduce(v, msl::MIN); }
template <class T> inline T simd_prefix_exclusive_sum(T v) {
  msl::rendezvous(v, msl::PREFIX_EXCL);
  T acc = T(0);
  for (uint l = 0; l < msl::lane(); l++)
    if (msl::active(l)) acc = T(acc + msl::lane_value<T>(l));
  return acc;
}
template <class T> inline T simd_shuffle(T v, uint src) { return msl::from_lane(v, msl::SHUFFLE, int(src)); }
template <class T> inline T simd_broadcast(T v, uint src) { return msl::from_lane(v, msl::SHUFFLE, int(src)); }
template <class T> inline T simd_shuffle_down(T v, uint d) {
  return msl::from_lane(v, msl::SHUFFLE_DOWN, int(msl::lane() + d));
}
template <class T> inline T simd_shuffle_up(T v, uint d) {
  return msl::from_lane(v, msl::SHUFFLE_UP, int(msl::lane()) - int(d));
}
template <class T> inline T simd_shuffle_xor(T v, uint m) {
  return msl::from_lane(v, msl::SHUFFLE_XOR, int(msl::lane() ^ m));
}
template <class T> inline T simd_broadcast_first(T v) {
  msl::rendezvous(v, msl::BROADCAST_FIRST);
  for (uint l = 0; l < msl::SIMD; l++)
    if (msl::active(l)) return msl::lane_value<T>(l);
  return v;
}
inline bool simd_any(bool b) { return msl::reduce<int>(b ? 1 : 0, msl::MAX) != 0; }
inline bool simd_all(bool b) { return msl::reduce<int>(b ? 1 : 0, msl::MIN) != 0; }

// ---------------------------------------------------------------------------- barriers
enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
inline mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(int(a) | int(b)); }
inline void threadgroup_barrier(mem_flags = mem_flags::mem_none) {
  msl::self().barriers++;
  msl::block(msl::WAIT_TG);
}
inline void simdgroup_barrier(mem_flags = mem_flags::mem_none) {
  msl::rendezvous(0, msl::SIMD_BARRIER);
}

// ---------------------------------------------------------------------------- math
namespace metal {
inline float exp(float x) { return std::exp(x); }
inline float exp2(float x) { return std::exp2(x); }
inline float log(float x) { return std::log(x); }
inline float log2(float x) { return std::log2(x); }
inline float sqrt(float x) { return std::sqrt(x); }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float tanh(float x) { return std::tanh(x); }
inline float abs(float x) { return std::fabs(x); }
inline int abs(int x) { return x < 0 ? -x : x; }
inline float fabs(float x) { return std::fabs(x); }
inline float fma(float a, float b, float c) { return std::fma(a, b, c); }
inline bool isinf(float x) { return std::isinf(x); }
inline bool isnan(float x) { return std::isnan(x); }
template <class T> inline T max(T a, T b) { return a > b ? a : b; }
template <class T> inline T min(T a, T b) { return a < b ? a : b; }
template <class T> inline T clamp(T x, T lo, T hi) { return min(max(x, lo), hi); }
template <class T> inline T select(T a, T b, bool c) { return c ? b : a; }
namespace fast { using metal::exp; using metal::exp2; using metal::log; using metal::rsqrt; }
namespace precise { using metal::exp; using metal::exp2; using metal::log; using metal::rsqrt; }
template <class T> struct numeric_limits {
  static constexpr T infinity() { return std::numeric_limits<T>::infinity(); }
  static constexpr T lowest() { return std::numeric_limits<T>::lowest(); }
  static constexpr T max() { return std::numeric_limits<T>::max(); }
  static constexpr T min() { return std::numeric_limits<T>::min(); }
};
}  // namespace metal
using namespace metal;

// MLX's utils.h helpers that kernels may use
template <class T> struct Limits {
  static constexpr T max = std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity()
                                                               : std::numeric_limits<T>::max();
  static constexpr T min = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                               : std::numeric_limits<T>::lowest();
  static constexpr T finite_max = std::numeric_limits<T>::max();
  static constexpr T finite_min = std::numeric_limits<T>::lowest();
};
template <class T, class U> inline T ceildiv(T n, U d) { return (n + d - 1) / d; }

template <class T> struct atomic { T value; };
enum memory_order { memory_order_relaxed };
template <class T, class U> inline T atomic_fetch_add_explicit(device atomic<T>* a, U v, memory_order) {
  T old = a->value;  // one OS thread runs every fiber: trivially atomic
  a->value = T(old + v);
  return old;
}
template <class T, class U> inline void atomic_store_explicit(device atomic<T>* a, U v, memory_order) {
  a->value = T(v);
}
template <class T> inline T atomic_load_explicit(device atomic<T>* a, memory_order) { return a->value; }

// ---------------------------------------------------------------------------- scheduler
namespace msl {

inline void trampoline() {
  Runtime& r = rt();
  r.body(r.fibers[r.current].ids);
  r.fibers[r.current].state = DONE;
  swapcontext(&r.fibers[r.current].ctx, &r.main);
}

// Release waiting fibers where a rendezvous is complete; false if none could be released.
inline bool release() {
  Runtime& r = rt();
  bool any = false, all_tg = true;
  int live = 0;
  for (int i = 0; i < r.n; i++) {
    if (r.fibers[i].state == DONE) continue;
    live++;
    if (r.fibers[i].state != WAIT_TG) all_tg = false;
  }
  if (live && all_tg) {
    for (int i = 0; i < r.n; i++) if (r.fibers[i].state == WAIT_TG) r.fibers[i].state = RUNNABLE;
    return true;
  }
  for (int g = 0; g * SIMD < r.n; g++) {
    bool complete = true, waiting = false;
    int op = 0;
    for (int i = g * SIMD; i < r.n && i < (g + 1) * SIMD; i++) {
      State s = r.fibers[i].state;
      if (s == DONE) continue;
      if (s != WAIT_SIMD) { complete = false; break; }
      if (waiting && r.fibers[i].slot.op != op) {
        r.error = "divergent simd operations in simdgroup " + std::to_string(g);
        return false;
      }
      waiting = true;
      op = r.fibers[i].slot.op;
    }
    if (!complete || !waiting) continue;
    r.mask[g] = 0;
    for (int i = g * SIMD; i < r.n && i < (g + 1) * SIMD; i++) {
      if (r.fibers[i].state != WAIT_SIMD) continue;
      r.snapshot[i] = r.fibers[i].slot;
      r.mask[g] |= uint64_t(1) << (i - g * SIMD);
      r.fibers[i].state = RUNNABLE;
    }
    any = true;
  }
  return any;
}

inline bool run_group(const std::vector<Ids>& ids) {
  Runtime& r = rt();
  r.n = int(ids.size());
  for (auto& a : r.tg_arrays) std::memset(a.first, 0xFF, a.second);
  for (int i = 0; i < r.n; i++) {
    Fiber& f = r.fibers[i];
    f.state = RUNNABLE;
    f.ids = ids[i];
    f.barriers = 0;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = r.stacks[i];
    f.ctx.uc_stack.ss_size = STACK;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, trampoline, 0);
  }
  for (;;) {
    bool ran = false;
    for (int i = 0; i < r.n; i++) {
      if (r.fibers[i].state != RUNNABLE) continue;
      r.current = i;
      swapcontext(&r.main, &r.fibers[i].ctx);
      ran = true;
      if (!r.error.empty()) return false;
    }
    bool done = true;
    for (int i = 0; i < r.n; i++) done = done && r.fibers[i].state == DONE;
    if (done) break;
    if (!release() && !ran) {
      if (r.error.empty()) r.error = "deadlock: threads wait at different barriers or simd "
                                     "operations (divergent control flow)";
      return false;
    }
    if (!r.error.empty()) return false;
  }
  for (int i = 1; i < r.n; i++) {
    if (r.fibers[i].barriers != r.fibers[0].barriers) {
      r.error = "non-uniform threadgroup_barrier: thread 0 passed " +
                std::to_string(r.fibers[0].barriers) + ", thread " + std::to_string(i) +
                " passed " + std::to_string(r.fibers[i].barriers) + " (divergent barrier)";
      return false;
    }
  }
  return true;
}

inline uint3 u3(uint x, uint y, uint z) { return uint3{x, y, z}; }

// MLX dispatches dispatch_threads(grid, min(tg, grid)): edge threadgroups are smaller.
inline int launch(const int* grid, const int* tgs, std::function<void(const Ids&)> body,
                  char* err, int errlen) {
  Runtime& r = rt();
  r.error.clear();
  r.body = std::move(body);
  uint tg[3], groups[3];
  for (int d = 0; d < 3; d++) {
    tg[d] = uint(std::min(tgs[d], grid[d]));
    groups[d] = (uint(grid[d]) + tg[d] - 1) / tg[d];
  }
  if (tg[0] * tg[1] * tg[2] > uint(MAX_THREADS)) {
    std::snprintf(err, errlen, "threadgroup of %u threads exceeds %d", tg[0] * tg[1] * tg[2],
                  MAX_THREADS);
    return -1;
  }
  while (int(r.stacks.size()) < MAX_THREADS) r.stacks.push_back((char*)std::malloc(STACK));
  r.fibers.resize(MAX_THREADS);
  r.snapshot.resize(MAX_THREADS);
  r.mask.resize(MAX_THREADS / SIMD);
  std::vector<Ids> ids;
  for (uint gz = 0; gz < groups[2]; gz++)
    for (uint gy = 0; gy < groups[1]; gy++)
      for (uint gx = 0; gx < groups[0]; gx++) {
        uint g[3] = {gx, gy, gz}, size[3];
        for (int d = 0; d < 3; d++) size[d] = std::min(tg[d], uint(grid[d]) - g[d] * tg[d]);
        ids.clear();
        uint count = size[0] * size[1] * size[2];
        for (uint z = 0; z < size[2]; z++)
          for (uint y = 0; y < size[1]; y++)
            for (uint x = 0; x < size[0]; x++) {
              Ids t;
              t.thread_position_in_threadgroup = u3(x, y, z);
              t.threadgroup_position_in_grid = u3(gx, gy, gz);
              t.thread_position_in_grid = u3(gx * tg[0] + x, gy * tg[1] + y, gz * tg[2] + z);
              t.threads_per_threadgroup = u3(size[0], size[1], size[2]);
              t.dispatch_threads_per_threadgroup = u3(tg[0], tg[1], tg[2]);
              t.threadgroups_per_grid = u3(groups[0], groups[1], groups[2]);
              t.threads_per_grid = u3(grid[0], grid[1], grid[2]);
              t.thread_index_in_threadgroup = x + size[0] * (y + size[1] * z);
              t.thread_index_in_simdgroup = t.thread_index_in_threadgroup % SIMD;
              t.simdgroup_index_in_threadgroup = t.thread_index_in_threadgroup / SIMD;
              t.simdgroups_per_threadgroup = (count + SIMD - 1) / SIMD;
              ids.push_back(t);
            }
        if (!run_group(ids)) {
          std::snprintf(err, errlen, "threadgroup (%u, %u, %u): %s", gx, gy, gz,
                        r.error.c_str());
          return -2;
        }
      }
  return 0;
}

}  // namespace msl
