// Shared helpers for the benchmark binaries: timing, allocation counting,
// memory reading, argument parsing and the one-line JSON result format that
// bench/run_bench.py collects.
//
// Every binary takes: [--smoke] [--only <workload>] and prints one line per
// result: {"impl": ..., "workload": ..., "metric": ..., "value": ..., "unit": ...}
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>

namespace bench {

inline std::atomic<long> g_allocations{0};

struct Args {
  bool smoke = false;
  std::string only;
  bool wants(const char* workload) const { return only.empty() || only == workload; }
  long scale(long full, long smoke_n) const { return smoke ? smoke_n : full; }
};

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--smoke"))
      a.smoke = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc)
      a.only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--smoke] [--only WORKLOAD]\n", argv[0]);
      std::exit(2);
    }
  }
  return a;
}

inline double now_ns() {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/// Resident set size in bytes, from /proc/self/statm.
inline long rss_bytes() {
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return pages_resident * 4096;
}

inline void report(const char* impl, const char* workload, const char* metric, double value, const char* unit) {
  std::printf("{\"impl\": \"%s\", \"workload\": \"%s\", \"metric\": \"%s\", \"value\": %.4f, \"unit\": \"%s\"}\n",
              impl, workload, metric, value, unit);
  std::fflush(stdout);
}

}  // namespace bench

// Counting allocator for the whole binary: every operator new form counts.
#define BENCH_COUNT_ALLOCATIONS()                                                                       \
  void* operator new(std::size_t n) {                                                                  \
    bench::g_allocations.fetch_add(1, std::memory_order_relaxed);                                      \
    if (void* p = std::malloc(n ? n : 1)) return p;                                                    \
    throw std::bad_alloc();                                                                            \
  }                                                                                                    \
  void* operator new[](std::size_t n) { return ::operator new(n); }                                    \
  void* operator new(std::size_t n, const std::nothrow_t&) noexcept {                                  \
    bench::g_allocations.fetch_add(1, std::memory_order_relaxed);                                      \
    return std::malloc(n ? n : 1);                                                                     \
  }                                                                                                    \
  void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); } \
  void operator delete(void* p) noexcept { std::free(p); }                                             \
  void operator delete(void* p, std::size_t) noexcept { std::free(p); }                                \
  void operator delete[](void* p) noexcept { std::free(p); }                                           \
  void operator delete[](void* p, std::size_t) noexcept { std::free(p); }                              \
  void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }                      \
  void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
