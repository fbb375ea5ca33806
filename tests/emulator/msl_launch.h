// The launch: guarded buffer copies, MLX's non-uniform grid, per-group scheduling and checks.
#pragma once
#include "msl_sched.h"

namespace msl_emu {
const char* simd_op_name(int op);

inline size_t page_size() {
  static size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}
inline void add_guard(char* lo, const char* what, char* data, size_t size) {
  Runtime& r = rt();
  if (r.n_guards < 128)
    r.guards[r.n_guards++] = Region{lo, lo + page_size(), what, data, data + size};
}

// Fiber stacks come from one pool per process (runtime.py maps it once, shared by every kernel
// .so): slot i is a PROT_NONE guard page followed by the stack of the group's thread i.
struct StackPool {
  char* base = nullptr;
  size_t slot = 0;
};
inline StackPool& stack_pool() {
  static StackPool p;
  return p;
}
inline char* fiber_stack(int i) {
  return stack_pool().base + size_t(i) * stack_pool().slot + page_size();
}
inline size_t fiber_stack_bytes() { return stack_pool().slot - page_size(); }

// A copy of a buffer that ends exactly at a PROT_NONE page, with another one before it.
struct Guarded {
  char* map = nullptr;
  size_t map_len = 0;
  char* data = nullptr;
};
inline bool make_guarded(Guarded& g, const void* src, size_t size, size_t align,
                         const char* what) {
  size_t ps = page_size();
  size_t body = (size + align - 1) / align * align;
  size_t pages = (body + ps - 1) / ps;
  g.map_len = (pages + 2) * ps;
  void* p = mmap(nullptr, g.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  g.map = static_cast<char*>(p);
  mprotect(g.map, ps, PROT_NONE);
  mprotect(g.map + (pages + 1) * ps, ps, PROT_NONE);
  g.data = g.map + (pages + 1) * ps - body;
  memcpy(g.data, src, size);
  add_guard(g.map, what, g.data, size);
  add_guard(g.map + (pages + 1) * ps, what, g.data, size);
  return true;
}

inline void on_fault(int sig, siginfo_t* si, void*) {
  Runtime& r = rt();
  char* a = static_cast<char*>(si->si_addr);
  r.failed = true;
  snprintf(r.err, sizeof(r.err), "%s at address %p", sig == SIGFPE ? "SIGFPE (integer "
           "division by zero?)" : sig == SIGBUS ? "SIGBUS" : "SIGSEGV", (void*)a);
  for (int i = 0; sig != SIGFPE && i < r.n_guards; i++) {
    const Region& g = r.guards[i];
    if (a >= g.lo && a < g.hi) {
      bool after = a >= g.data_end;
      append_err(": byte %zu %s buffer '%s'", after ? size_t(a - g.data_end) : size_t(g.data - a),
                 after ? "past the end of" : "before the start of", g.what);
    }
  }
  for (int i = 0; sig != SIGFPE && i < kMaxThreads; i++) {
    char* s = fiber_stack(i);
    if (a >= s - page_size() && a < s) append_err(": fiber stack overflow");
  }
  if (r.cur >= 0) {
    append_err(" [");
    describe_thread(r.cur);
    append_err("]");
  }
  siglongjmp(r.jmp, 1);
}

inline void fill_ids(Ids& d, const uint g[3], const uint tg[3], const uint gid[3],
                     const uint size[3], int lin) {
  uint lx = lin % size[0], ly = lin / size[0] % size[1], lz = lin / (size[0] * size[1]);
  uint count = size[0] * size[1] * size[2], nominal = tg[0] * tg[1] * tg[2];
  d.thread_position_in_threadgroup = uint3(lx, ly, lz);
  d.threadgroup_position_in_grid = uint3(gid[0], gid[1], gid[2]);
  d.thread_position_in_grid =
      uint3(gid[0] * tg[0] + lx, gid[1] * tg[1] + ly, gid[2] * tg[2] + lz);
  d.threads_per_threadgroup = uint3(size[0], size[1], size[2]);
  d.dispatch_threads_per_threadgroup = uint3(tg[0], tg[1], tg[2]);
  d.threadgroups_per_grid = uint3((g[0] + tg[0] - 1) / tg[0], (g[1] + tg[1] - 1) / tg[1],
                                  (g[2] + tg[2] - 1) / tg[2]);
  d.threads_per_grid = d.grid_size = uint3(g[0], g[1], g[2]);
  d.grid_origin = uint3(0u);
  d.thread_index_in_threadgroup = lin;
  d.simdgroup_index_in_threadgroup = lin / kSimd;
  d.thread_index_in_simdgroup = lin % kSimd;
  d.simdgroups_per_threadgroup = (count + kSimd - 1) / kSimd;
  d.dispatch_simdgroups_per_threadgroup = (nominal + kSimd - 1) / kSimd;
  d.quadgroup_index_in_threadgroup = lin / 4;
  d.thread_index_in_quadgroup = lin % 4;
  d.quadgroups_per_threadgroup = (count + 3) / 4;
  d.dispatch_quadgroups_per_threadgroup = (nominal + 3) / 4;
  d.thread_execution_width = d.threads_per_simdgroup = kSimd;
}

inline void describe_deadlock() {
  Runtime& r = rt();
  snprintf(r.err, sizeof(r.err), "deadlock: %d of %d threads still live, none runnable;", r.live,
           r.n);
  if (r.tg_wait) append_err(" %d wait at threadgroup_barrier (line %d);", r.tg_wait, r.tg_line);
  for (int s = 0; s < r.nsg; s++) {
    const SimdGroup& g = r.sg[s];
    if (g.wait)
      append_err(" simdgroup %d: %d of %d live lanes wait at %s (line %d), the others elsewhere "
                 "(divergent simd op or barrier);", s, g.wait, g.live, simd_op_name(g.op), g.line);
  }
  append_err(" in threadgroup (%u, %u, %u)", r.f[0].ids.threadgroup_position_in_grid.x,
             r.f[0].ids.threadgroup_position_in_grid.y, r.f[0].ids.threadgroup_position_in_grid.z);
}

// Barrier counts must agree across the group (tg) and across each simdgroup (simd barriers).
inline bool check_uniform() {
  Runtime& r = rt();
  for (int i = 1; i < r.n; i++) {
    const Fiber& a = r.f[0];
    const Fiber& b = r.f[i];
    const Fiber& s = r.f[b.sg * kSimd];
    if (a.tg_bars == b.tg_bars && s.sg_bars == b.sg_bars) continue;
    bool tg = a.tg_bars != b.tg_bars;
    const Fiber& o = tg ? a : s;
    snprintf(r.err, sizeof(r.err), "non-uniform %s (divergent control flow): thread %u passed %u, "
             "thread %u passed %u, in threadgroup (%u, %u, %u)",
             tg ? "threadgroup_barrier" : "simdgroup_barrier", o.ids.thread_index_in_threadgroup,
             tg ? o.tg_bars : o.sg_bars, b.ids.thread_index_in_threadgroup,
             tg ? b.tg_bars : b.sg_bars, b.ids.threadgroup_position_in_grid.x,
             b.ids.threadgroup_position_in_grid.y, b.ids.threadgroup_position_in_grid.z);
    return false;
  }
  return true;
}

// One threadgroup: fresh fibers, poisoned threadgroup memory, run until nothing is runnable.
inline bool run_group(const uint g[3], const uint tg[3], const uint gid[3]) {
  Runtime& r = rt();
  uint size[3];
  for (int k = 0; k < 3; k++) size[k] = std::min(tg[k], g[k] - gid[k] * tg[k]);
  r.n = int(size[0] * size[1] * size[2]);
  r.nsg = (r.n + kSimd - 1) / kSimd;
  r.live = r.n;
  r.tg_wait = 0;
  r.qhead = r.qcount = 0;
  for (int i = 0; i < r.n_tg; i++) memset(r.tg_regions[i], 0xFF, r.tg_sizes[i]);
  for (int s = 0; s < r.nsg; s++) {
    r.sg[s].live = std::min(kSimd, r.n - s * kSimd);
    r.sg[s].wait = 0;
    r.sg[s].waitmask = 0;
  }
  for (int i = 0; i < r.n; i++) {
    Fiber& f = r.f[i];
    f.stack = fiber_stack(i);
    ctx_init(f.ctx, f.stack, fiber_stack_bytes(), fiber_entry);
    f.state = RUNNABLE;
    f.sg = i / kSimd;
    f.lane = i % kSimd;
    f.tg_bars = f.sg_bars = 0;
    fill_ids(f.ids, g, tg, gid, size, i);
    push(i);
  }
  r.cur = pop();
  ctx_swap(r.main, r.f[r.cur].ctx);
  if (r.failed) return false;
  if (r.live > 0) {
    describe_deadlock();
    return false;
  }
  return check_uniform();
}

inline int launch(void (*body)(void**), void** host, const size_t* sizes, const size_t* aligns,
                  int nbuf, const char* const* names, const uint grid[3], const uint tg[3],
                  char* stacks, size_t stack_slot, char* err, int errlen) {
  Runtime& r = rt();
  stack_pool() = StackPool{stacks, stack_slot};
  r.failed = false;
  r.err[0] = 0;
  r.n_guards = 0;
  r.body = body;
  uint t[3];
  for (int k = 0; k < 3; k++) t[k] = std::max(1u, std::min(tg[k], grid[k]));
  Guarded gb[64];
  void* dev[64];
  bool ok = nbuf <= 64;
  for (int i = 0; ok && i < nbuf; i++) {
    ok = make_guarded(gb[i], host[i], sizes[i], aligns[i], names[i]);
    dev[i] = gb[i].data;
  }
  r.bufs = dev;
  if (!ok) snprintf(r.err, sizeof(r.err), "could not map the buffers");
  struct sigaction sa = {}, old[3];
  const int sigs[3] = {SIGSEGV, SIGBUS, SIGFPE};
  static char alt[64 * 1024];
  stack_t ss = {}, old_ss;
  ss.ss_sp = alt;
  ss.ss_size = sizeof(alt);
  sigaltstack(&ss, &old_ss);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int k = 0; k < 3; k++) sigaction(sigs[k], &sa, &old[k]);
  if (ok && sigsetjmp(r.jmp, 1) == 0) {
    uint ng[3];
    for (int k = 0; k < 3; k++) ng[k] = grid[k] == 0 ? 0 : (grid[k] + t[k] - 1) / t[k];
    uint gid[3];
    for (gid[2] = 0; ok && gid[2] < ng[2]; gid[2]++)
      for (gid[1] = 0; ok && gid[1] < ng[1]; gid[1]++)
        for (gid[0] = 0; ok && gid[0] < ng[0]; gid[0]++) ok = run_group(grid, t, gid);
  } else {
    ok = false;
  }
  for (int k = 0; k < 3; k++) sigaction(sigs[k], &old[k], nullptr);
  sigaltstack(&old_ss, nullptr);
  for (int i = 0; i < nbuf; i++) {
    if (!gb[i].map) continue;
    if (ok) memcpy(host[i], gb[i].data, sizes[i]);
    munmap(gb[i].map, gb[i].map_len);
  }
  r.cur = -1;
  snprintf(err, size_t(errlen), "%s", r.err);
  return ok ? 0 : -1;
}
}  // namespace msl_emu
