// GPU threads as cooperative fibers: one threadgroup at a time, barriers as rendezvous.
#pragma once
#include <algorithm>
#include <csetjmp>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <sys/mman.h>
#include <unistd.h>

#include "msl_types.h"

#if !defined(__x86_64__) || defined(MSL_EMU_UCONTEXT)
#define MSL_EMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace msl_emu {
constexpr int kMaxThreads = 1024;
constexpr int kSimd = 32;
constexpr size_t kThreadgroupBytes = 32 * 1024;

enum State : uint8_t { RUNNABLE, WAIT_TG, WAIT_SIMD, DONE };

// Values of the [[attribute]] kernel parameters, named as in the signature.
struct Ids {
  uint3 thread_position_in_grid, thread_position_in_threadgroup, threadgroup_position_in_grid,
      threads_per_threadgroup, dispatch_threads_per_threadgroup, threadgroups_per_grid,
      threads_per_grid, grid_size, grid_origin;
  uint thread_index_in_threadgroup, simdgroup_index_in_threadgroup, thread_index_in_simdgroup,
      simdgroups_per_threadgroup, dispatch_simdgroups_per_threadgroup,
      quadgroup_index_in_threadgroup, thread_index_in_quadgroup, quadgroups_per_threadgroup,
      dispatch_quadgroups_per_threadgroup, thread_execution_width, threads_per_simdgroup;
};

#if !defined(MSL_EMU_USE_UCONTEXT)
// Callee-saved registers on the fiber's own stack; a switch is a few pushes and pops.
struct Ctx {
  void* sp;
};
extern "C" void msl_emu_ctx_switch(void** save, void* to);
asm(R"(
.text
.p2align 4
.globl msl_emu_ctx_switch
.hidden msl_emu_ctx_switch
.type msl_emu_ctx_switch,@function
msl_emu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size msl_emu_ctx_switch, .-msl_emu_ctx_switch
)");
inline void ctx_init(Ctx& c, char* stack, size_t size, void (*entry)()) {
  uintptr_t top = (uintptr_t(stack) + size) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                        // fake return address of entry (never returns)
  *--sp = reinterpret_cast<void*>(entry);  // popped by `ret`
  for (int i = 0; i < 6; i++) *--sp = nullptr;
  c.sp = sp;
}
inline void ctx_swap(Ctx& from, Ctx& to) { msl_emu_ctx_switch(&from.sp, to.sp); }
#else
struct Ctx {
  ucontext_t uc;
};
inline void ctx_init(Ctx& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
inline void ctx_swap(Ctx& from, Ctx& to) { swapcontext(&from.uc, &to.uc); }
#endif

struct Fiber {
  Ctx ctx;
  State state;
  int sg, lane;
  uint32_t tg_bars, sg_bars;
  char* stack;  // pooled, guard page below
  Ids ids;
};

struct SimdGroup {
  int live, wait, line, op, size;
  uint32_t waitmask, snapmask;
  uint32_t gen, cached_gen;  // release count; a reduction computed once per release
  alignas(16) unsigned char cached[16];
  alignas(16) unsigned char slot[kSimd][16];
  alignas(16) unsigned char snap[kSimd][16];
};

struct Region {  // a guard page next to the buffer [data, data_end)
  char* lo;
  char* hi;
  const char* what;
  char* data;
  char* data_end;
};

struct Runtime {
  Fiber f[kMaxThreads];
  SimdGroup sg[kMaxThreads / kSimd];
  int queue[kMaxThreads];
  int n = 0, nsg = 0, cur = -1, qhead = 0, qcount = 0;
  int live = 0, tg_wait = 0, tg_line = 0;
  Ctx main;
  void (*body)(void**) = nullptr;
  void** bufs = nullptr;
  bool failed = false;
  char err[4096];
  void* tg_regions[64];
  size_t tg_sizes[64];
  int n_tg = 0;
  size_t tg_total = 0;
  Region guards[128];  // guard pages around buffers and stacks, to name a faulting address
  int n_guards = 0;
  sigjmp_buf jmp;
};
inline Runtime& rt() {
  static Runtime r;
  return r;
}
inline const Ids& ids() { return rt().f[rt().cur].ids; }

inline void push(int i) {
  Runtime& r = rt();
  r.queue[(r.qhead + r.qcount++) % kMaxThreads] = i;
}
inline int pop() {
  Runtime& r = rt();
  if (r.qcount == 0) return -1;
  int i = r.queue[r.qhead];
  r.qhead = (r.qhead + 1) % kMaxThreads;
  r.qcount--;
  return i;
}

// Switch from the current fiber to the next runnable one, or back to the scheduler.
inline void run_next(Ctx& save) {
  Runtime& r = rt();
  int nx = pop();
  r.cur = nx;
  ctx_swap(save, nx < 0 ? r.main : r.f[nx].ctx);
}

inline void append_err(const char* fmt, ...) {
  Runtime& r = rt();
  size_t len = strlen(r.err);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.err + len, sizeof(r.err) - len, fmt, ap);
  va_end(ap);
}

inline void describe_thread(int i) {
  const Ids& d = rt().f[i].ids;
  append_err("thread_position_in_grid (%u, %u, %u), thread_index_in_threadgroup %u",
             d.thread_position_in_grid.x, d.thread_position_in_grid.y,
             d.thread_position_in_grid.z, d.thread_index_in_threadgroup);
}

// Record an error for the current thread and abandon the launch.
[[noreturn]] inline void fail(const char* fmt, ...) {
  Runtime& r = rt();
  if (!r.failed) {
    r.failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.err, sizeof(r.err), fmt, ap);
    va_end(ap);
    if (r.cur >= 0) {
      append_err(" [");
      describe_thread(r.cur);
      append_err("]");
    }
  }
  Ctx dead;
  r.cur = -1;
  ctx_swap(dead, r.main);
  __builtin_unreachable();
}

// Every thread waiting at a threadgroup barrier becomes runnable (the caller goes on).
inline void release_tg() {
  Runtime& r = rt();
  for (int i = 0; i < r.n; i++) {
    if (r.f[i].state == WAIT_TG) {
      r.f[i].state = RUNNABLE;
      if (i != r.cur) push(i);
    }
  }
  r.tg_wait = 0;
}

inline void release_simd(int s) {
  Runtime& r = rt();
  SimdGroup& g = r.sg[s];
  g.snapmask = g.waitmask;
  g.gen++;
  for (int l = 0; l < kSimd; l++) {
    if (!(g.waitmask >> l & 1u)) continue;
    memcpy(g.snap[l], g.slot[l], g.size);
    int i = s * kSimd + l;
    r.f[i].state = RUNNABLE;
    if (i != r.cur) push(i);
  }
  g.wait = 0;
  g.waitmask = 0;
}

struct Site {
  int line;
};

inline void threadgroup_barrier_at(int line) {
  Runtime& r = rt();
  Fiber& f = r.f[r.cur];
  f.tg_bars++;
  if (r.tg_wait == 0) {
    r.tg_line = line;
  } else if (line != r.tg_line) {
    fail("non-uniform threadgroup_barrier (divergent control flow): threads wait at the "
         "barriers of line %d and line %d", r.tg_line, line);
  }
  if (++r.tg_wait == r.live) return release_tg();
  f.state = WAIT_TG;
  run_next(f.ctx);
}

inline void thread_exit() {
  Runtime& r = rt();
  Fiber& f = r.f[r.cur];
  f.state = DONE;
  r.live--;
  SimdGroup& g = r.sg[f.sg];
  g.live--;
  if (g.wait > 0 && g.wait == g.live) release_simd(f.sg);
  if (r.tg_wait > 0 && r.tg_wait == r.live) release_tg();
  Ctx dead;
  run_next(dead);
  __builtin_unreachable();
}

inline void fiber_entry() {
  Runtime& r = rt();
  r.body(r.bufs);
  thread_exit();
}

// Storage of one `threadgroup T x[N];` declaration, poisoned (0xFF) at each group start.
inline void register_tg(void* p, size_t size) {
  Runtime& r = rt();
  if (r.n_tg == 64) fail("more than 64 threadgroup variables");
  r.tg_regions[r.n_tg] = p;
  r.tg_sizes[r.n_tg++] = size;
  r.tg_total += size;
  if (r.tg_total > kThreadgroupBytes)
    fail("threadgroup memory of %zu bytes exceeds the 32 KiB limit", r.tg_total);
  memset(p, 0xFF, size);
}
template <class T, int ID>
inline T& tg_var() {
  alignas(16) static unsigned char storage[sizeof(T)];
  static bool registered = (register_tg(storage, sizeof(T)), true);
  (void)registered;
  return *reinterpret_cast<T*>(storage);
}
}  // namespace msl_emu
