// duet side of the loop benchmarks (W1 call_soon, W4 timers).
#include <random>
#include <vector>

#include <duet/duet.hpp>

#include "bench_common.hpp"
#include "duet_loop_factory.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
BENCH_COUNT_ALLOCATIONS()

namespace {

void call_soon_batch(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  auto loop = bench::new_duet_loop();
  long count = 0;
  // Warm-up round: fills the node pool and sizes the ready ring.
  for (int round = 0; round < 2; ++round) {
    count = 0;
    const long allocs_before = bench::g_allocations.load();
    const double t0 = bench::now_ns();
    loop->call_soon([&] {
      for (long i = 0; i < n; ++i) loop->call_soon([&count] { ++count; });
      loop->call_soon([&] { loop->stop(); });
    });
    loop->run_forever();
    const double t1 = bench::now_ns();
    if (round == 1) {
      bench::report("duet", "call_soon_batch", "ns_per_callback", (t1 - t0) / n, "ns");
      bench::report("duet", "call_soon_batch", "allocs_per_callback",
                    double(bench::g_allocations.load() - allocs_before) / n, "allocs");
    }
  }
  if (count != n) std::abort();
}

struct ChainLink {
  duet::Loop* loop;
  long* left;
  void operator()() const {
    if (--*left > 0)
      loop->call_soon(ChainLink{loop, left});
    else
      loop->stop();
  }
};

void call_soon_chain(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  auto loop = bench::new_duet_loop();
  for (int round = 0; round < 2; ++round) {
    long left = n;
    const long allocs_before = bench::g_allocations.load();
    const double t0 = bench::now_ns();
    loop->call_soon(ChainLink{loop.get(), &left});
    loop->run_forever();
    const double t1 = bench::now_ns();
    if (round == 1) {
      bench::report("duet", "call_soon_chain", "ns_per_callback", (t1 - t0) / n, "ns");
      bench::report("duet", "call_soon_chain", "allocs_per_callback",
                    double(bench::g_allocations.load() - allocs_before) / n, "allocs");
    }
  }
}

void timers(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  auto loop = bench::new_duet_loop();
  std::mt19937 rng(42);
  std::uniform_int_distribution<long> delay_us(0, 100'000);
  std::vector<long> delays(n);
  for (auto& d : delays) d = delay_us(rng);
  std::vector<duet::TimerHandle> handles;
  handles.reserve(n);
  long fired = 0;

  const long rss0 = bench::rss_bytes();
  const double t0 = bench::now_ns();
  for (long i = 0; i < n; ++i)
    handles.push_back(loop->call_later(std::chrono::microseconds(delays[i]), [&fired] { ++fired; }));
  const double t1 = bench::now_ns();
  const long rss1 = bench::rss_bytes();
  for (long i = 0; i < n; i += 2) handles[i].cancel();
  const double t2 = bench::now_ns();
  handles.clear();  // the loop keeps its own references
  const long expected = n / 2;
  const double c0 = bench::cpu_ns();
  loop->call_later(std::chrono::milliseconds(101), [&] { loop->stop(); });
  loop->run_forever();
  const double c1 = bench::cpu_ns();
  if (fired != expected) std::abort();

  bench::report("duet", "timers", "schedule_ns", (t1 - t0) / n, "ns");
  bench::report("duet", "timers", "cancel_ns", (t2 - t1) / (n / 2), "ns");
  bench::report("duet", "timers", "fire_cpu_ns", (c1 - c0) / expected, "ns");
  // Includes the 8-byte TimerHandle the caller keeps to cancel with, as the
  // peers' figures include their timer objects.
  bench::report("duet", "timers", "rss_bytes_per_timer", double(rss1 - rss0) / n, "B");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("call_soon_batch")) call_soon_batch(args);
  if (args.wants("call_soon_chain")) call_soon_chain(args);
  if (args.wants("timers")) timers(args);
  return 0;
}
