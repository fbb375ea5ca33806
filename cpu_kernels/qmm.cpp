// Dispatch: per-group sums of x, the rearranged x for the AVX2 kernel, and the weight rows
// split over a persistent thread pool (threads are created once, not per call).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "qmm_generic.h"
#include "qmm_kernel.h"

namespace gemma_cpu {

namespace {

std::atomic<bool> avx512_on{true}, vnni_on{true};

// Tasks are claimed from a shared counter by the caller and whichever workers are awake, so
// a worker the scheduler has not run yet (2 cores, shared with the Python thread) delays
// nothing: the caller does the tasks itself and waits only for tasks a worker has begun.
// Workers spin a while between jobs (a decode step calls every 20-200 us; waking a sleeping
// thread costs ~70 us here), yielding as they spin so the Python thread gets the core.
class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    stop_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return n_; }

  // f(i) once for every i in [0, tasks). One job at a time.
  void run(int tasks, const std::function<void(int)>& f) {
    std::lock_guard<std::mutex> one(run_mu_);
    f_ = &f;
    tasks_ = tasks;
    next_ = 0;
    ++job_;
    open_ = true;  // seq_cst: a worker that sees it open sees f_, tasks_ and next_
    if (sleepers_ > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
    work();
    open_ = false;
    while (active_ > 0) pause();  // tasks begun by workers
  }

 private:
  static void pause() {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_ia32_pause();
#endif
  }

  void work() {
    for (int i; (i = next_.fetch_add(1)) < tasks_;) (*f_)(i);
  }

  void loop() {
    long seen = 0;
    while (!stop_) {
      int spin = 0;
      while (!(open_ && job_ != seen) && !stop_) {
        if (++spin < SPINS) {
          pause();
          if (spin % 64 == 0) std::this_thread::yield();
          continue;
        }
        std::unique_lock<std::mutex> lock(mu_);
        ++sleepers_;  // then the predicate: run() reads sleepers_ after opening the job
        cv_.wait(lock, [&] { return (open_ && job_ != seen) || stop_; });
        --sleepers_;
        spin = 0;
      }
      ++active_;  // then open_ again: run() closes the job before it waits for active_
      if (open_ && !stop_) {
        seen = job_;
        work();
      }
      --active_;
    }
  }

  static constexpr int SPINS = 1 << 15;
  int n_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_;
  const std::function<void(int)>* f_ = nullptr;
  int tasks_ = 0;
  std::atomic<int> next_{0}, active_{0}, sleepers_{0};
  std::atomic<long> job_{0};
  std::atomic<bool> open_{false}, stop_{false};
};

int default_threads() {
  if (const char* env = std::getenv("GEMMA_MLX_CPU_THREADS")) return std::max(1, std::atoi(env));
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

// Below this many multiply-adds one thread is faster (k and v of the 270M: 164K).
long SERIAL_WORK = 1 << 18;
// Rows per task: at least this many multiply-adds, a few microseconds.
constexpr long TASK_WORK = 1 << 16;

}  // namespace

int pool_threads() { return pool().size(); }

void pool_run(int parts, const std::function<void(int)>& f) {
  if (parts <= 1) return f(0);
  pool().run(parts, f);
}

void set_serial_work(long w) { SERIAL_WORK = w; }

bool avx2_available() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

void set_avx512(bool on) { avx512_on = on; }
void set_vnni(bool on) { vnni_on = on; }

bool vnni_available() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool ok = avx2_available() && __builtin_cpu_supports("avxvnni");
  return ok;
#else
  return false;
#endif
}

static float* align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

void qmm_rows_scalar(const QmmArgs& a, const float* xsum, int n0, int n1) {
  generic_rows(a, xsum, n0, n1);
}

bool qmm(const QmmArgs& a) {
  const bool bits_ok = a.bits == 2 || a.bits == 3 || a.bits == 4 || a.bits == 5 ||
                       a.bits == 6 || a.bits == 8;
  if (!bits_ok || a.group_size < 32 || a.group_size > 128 || a.K % a.group_size) return false;
  const int groups = a.K / a.group_size;
  // Per-call scratch, kept per thread (MLX's CPU stream calls from one): no malloc per call.
  thread_local std::vector<float> xsum, xp, xd;
  thread_local std::vector<int8_t> xq;
  float* xperm = nullptr;
  xsum.resize(static_cast<size_t>(a.M) * groups);
  for (int m = 0; m < a.M; ++m)
    for (int g = 0; g < groups; ++g) {
      float s = 0.0f;
      const float* xr = a.x + static_cast<long>(m) * a.K + g * a.group_size;
      for (int k = 0; k < a.group_size; ++k) s += xr[k];
      xsum[m * groups + g] = s;
    }
  const bool words = a.bits == 2 || a.bits == 4 || a.bits == 8;
  const bool vnni = vnni_on && vnni_available();
  const bool int8 = a.int8_x && a.K % (a.bits == 4 ? 64 : 32) == 0 &&
                    ((a.bits == 4 && avx2_available()) || (a.bits == 8 && vnni));
  const bool wide = !int8 && words && avx512_on && avx512_available() &&
                    a.K % (16 * (32 / a.bits)) == 0;
  const bool fast = !int8 && !wide && avx2_available() &&
                    a.K % (words ? 8 * (32 / a.bits) : 8) == 0;
  if (int8) {
    xq.resize(static_cast<size_t>(a.M) * a.K);
    xd.resize(static_cast<size_t>(a.M) * a.K / 4);
    quantize_x_avx2(a, xq.data(), xd.data());
  } else if (wide || fast) {
    // 64-byte aligned: the vector loads of x then never straddle two cache lines (malloc's
    // 16-byte alignment split three in four of the AVX-512 kernel's loads).
    xp.resize(static_cast<size_t>(a.M) * a.K + 16);
    xperm = align64(xp.data());
    if (wide) {
      permute_x_avx512(a, xperm);
    } else {
      permute_x_avx2(a, xperm);
    }
  }
  // Pointers, not the thread_local names: the pool's threads would read their own copies.
  const Int8X x8{xq.data(), xd.data()};
  const float* sums = xsum.data();
  // The int8 kernel does about a third of the float one's work per multiply-add.
  const long work = static_cast<long>(a.M) * a.N * a.K / (int8 ? 3 : 1);
  // Tasks of at least TASK_WORK multiply-adds. A big product takes at most 4 per thread,
  // each a long sequential read (finer tasks interleaved between the threads made the head
  // 1.5x slower: the prefetchers restart at every task); a small one keeps fine tasks, so a
  // worker preempted in one holds the caller up only briefly (coarse ones cost 5x there).
  const int per_thread = work < (1L << 24) ? 0 : (a.N + 4 * pool().size() - 1) /
                                                     (4 * pool().size());
  const int rows_per_task =
      work < SERIAL_WORK ? a.N
                         : std::max<long>({8, per_thread,
                                           TASK_WORK / (static_cast<long>(a.M) * a.K)});
  const int tasks = (a.N + rows_per_task - 1) / rows_per_task;
  auto rows = [&](int task) {
    const int n0 = task * rows_per_task, n1 = std::min(a.N, n0 + rows_per_task);
    if (int8) {
      if (vnni) {
        qmm_int8_rows_vnni(a, x8, sums, n0, n1);
      } else {
        qmm_int8_rows_avx2(a, x8, sums, n0, n1);
      }
    } else if (wide) {
      qmm_rows_avx512(a, xperm, sums, n0, n1);
    } else if (fast) {
      qmm_rows_avx2(a, xperm, sums, n0, n1);
    } else {
      qmm_rows_scalar(a, sums, n0, n1);
    }
  };
  if (tasks == 1) {
    rows(0);
  } else {
    pool().run(tasks, rows);
  }
  return true;
}

}  // namespace gemma_cpu
