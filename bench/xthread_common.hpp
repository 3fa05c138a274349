// Shared by the cross-thread benchmarks (W5): CPU pinning, percentiles, and
// the round-trip driver every implementation uses, so that only the post
// differs between them.
//
// Round trip: a foreign thread records the time, posts a callback to the
// loop (blocked in its poll when idle), and sleeps on a futex (C++20
// atomic wait) until the callback stores the sequence number and wakes it.
// 10,000 times (smoke: 200); p50 and p99. Once with the loop and the
// foreign thread pinned to different CPUs, once to the same CPU.
//
// Throughput: the foreign thread posts 1e6 (smoke: 10,000) callbacks as
// fast as it can; the last one to run stops the clock: ns per post.
#pragma once

#if defined(_WIN32)
#include <windows.h>
#include <synchapi.h>
#else
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace bench {

/// Pins the calling thread to `cpu`, or unpins it (every CPU) with -1.
inline void pin_to(int cpu) {
#if defined(_WIN32)
  // Windows (run under Wine here: issue 9's indicative figures).
  DWORD_PTR mask = 0;
  if (cpu < 0) {
    DWORD_PTR system = 0;
    ::GetProcessAffinityMask(::GetCurrentProcess(), &mask, &system);
  } else {
    mask = DWORD_PTR{1} << cpu;
  }
  ::SetThreadAffinityMask(::GetCurrentThread(), mask);
#else
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu < 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
  } else {
    CPU_SET(cpu, &set);
  }
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
#endif
}

/// Raw futex calls: a sleeping thread is woken by the kernel, never found
/// by spinning, so the floor and the loops are measured the same way.
#if defined(_WIN32)
// Windows' futex: WaitOnAddress / WakeByAddressSingle.
inline void futex_wait(std::atomic<int>& word, int expected) {
  ::WaitOnAddress(reinterpret_cast<volatile int*>(&word), &expected, sizeof expected, INFINITE);
}
inline void futex_wake(std::atomic<int>& word) { ::WakeByAddressSingle(reinterpret_cast<int*>(&word)); }
#else
inline void futex_wait(std::atomic<int>& word, int expected) {
  syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
inline void futex_wake(std::atomic<int>& word) {
  syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}
#endif
static_assert(sizeof(std::atomic<int>) == sizeof(int));

inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * (v.size() - 1))];
}

/// Signals a round trip back to the foreign thread (the loop side calls it).
struct RoundTrip {
  std::atomic<int> seq{0};
  void done(int i) {
    seq.store(i, std::memory_order_release);
    futex_wake(seq);
  }
  void wait_for(int i) {
    int v;
    while ((v = seq.load(std::memory_order_acquire)) != i) futex_wait(seq, v);
  }
};

/// The round-trip measurement. post(i) must schedule RoundTrip::done(i) on
/// the loop; run_loop() runs the loop on this thread until stop() (posted by
/// the foreign thread at the end) makes it return.
inline void measure_round_trip(const char* impl, const Args& args, bool same_cpu, RoundTrip& rt,
                               const std::function<void(int)>& post, const std::function<void()>& run_loop,
                               const std::function<void()>& stop) {
  const int n = static_cast<int>(args.scale(10'000, 200));
  std::vector<double> samples(static_cast<std::size_t>(n));
  rt.seq.store(0);
  pin_to(0);
  std::thread foreign([&] {
    pin_to(same_cpu ? 0 : 1);
    for (int i = 1; i <= n; ++i) {
      const double t0 = now_ns();
      post(i);
      rt.wait_for(i);
      samples[static_cast<std::size_t>(i - 1)] = now_ns() - t0;
    }
    stop();
  });
  run_loop();
  foreign.join();
  pin_to(-1);
  const char* workload = same_cpu ? "xthread_rtt_same_cpu" : "xthread_rtt_cross_cpu";
  report(impl, workload, "p50_ns", percentile(samples, 0.50), "ns");
  report(impl, workload, "p99_ns", percentile(samples, 0.99), "ns");
}

/// The throughput measurement. post() schedules one counting callback;
/// the loop side calls `counted()` from it and stops the loop at n.
struct Throughput {
  long n = 0;
  long count = 0;
  std::atomic<double> start{0};
  double end = 0;
  bool counted() {  // on the loop's thread; true when the last one ran
    if (++count < n) return false;
    end = now_ns();
    return true;
  }
};

inline void measure_throughput(const char* impl, const Args& args, Throughput& tp, const std::function<void()>& post,
                               const std::function<void()>& run_loop) {
  tp.n = args.scale(1'000'000, 10'000);
  tp.count = 0;
  pin_to(0);
  std::thread foreign([&] {
    pin_to(1);
    tp.start = now_ns();
    for (long i = 0; i < tp.n; ++i) post();
  });
  run_loop();
  foreign.join();
  pin_to(-1);
  if (tp.count != tp.n) std::abort();
  report(impl, "xthread_throughput", "ns_per_post", (tp.end - tp.start) / double(tp.n), "ns");
}

}  // namespace bench
