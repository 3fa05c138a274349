// Boost.Asio side of the loop benchmarks: asio::post for call_soon,
// steady_timer for timers. io_context is created with concurrency hint 1
// (single-threaded use), Asio's fastest configuration for this work.
#include <utility>  // Boost 1.74's asio needs it first with g++ 12

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <random>
#include <vector>

#include "bench_common.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
BENCH_COUNT_ALLOCATIONS()

namespace asio = boost::asio;

namespace {

void post_batch(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  long count = 0;
  for (int round = 0; round < 2; ++round) {
    count = 0;
    const long allocs_before = bench::g_allocations.load();
    const double t0 = bench::now_ns();
    asio::post(ctx, [&] {
      for (long i = 0; i < n; ++i) asio::post(ctx, [&count] { ++count; });
    });
    ctx.run();
    ctx.restart();
    const double t1 = bench::now_ns();
    if (round == 1) {
      bench::report("asio", "call_soon_batch", "ns_per_callback", (t1 - t0) / n, "ns");
      bench::report("asio", "call_soon_batch", "allocs_per_callback",
                    double(bench::g_allocations.load() - allocs_before) / n, "allocs");
    }
  }
  if (count != n) std::abort();
}

struct ChainLink {
  asio::io_context* ctx;
  long* left;
  void operator()() const {
    if (--*left > 0) asio::post(*ctx, ChainLink{ctx, left});
  }
};

void post_chain(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  for (int round = 0; round < 2; ++round) {
    long left = n;
    const long allocs_before = bench::g_allocations.load();
    const double t0 = bench::now_ns();
    asio::post(ctx, ChainLink{&ctx, &left});
    ctx.run();
    ctx.restart();
    const double t1 = bench::now_ns();
    if (round == 1) {
      bench::report("asio", "call_soon_chain", "ns_per_callback", (t1 - t0) / n, "ns");
      bench::report("asio", "call_soon_chain", "allocs_per_callback",
                    double(bench::g_allocations.load() - allocs_before) / n, "allocs");
    }
  }
}

void timers(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  std::mt19937 rng(42);
  std::uniform_int_distribution<long> delay_us(0, 100'000);
  std::vector<long> delays(n);
  for (auto& d : delays) d = delay_us(rng);
  std::vector<asio::steady_timer> timers;
  timers.reserve(n);
  long fired = 0, aborted = 0;

  const long rss0 = bench::rss_bytes();
  const double t0 = bench::now_ns();
  for (long i = 0; i < n; ++i) {
    timers.emplace_back(ctx, std::chrono::microseconds(delays[i]));
    timers.back().async_wait([&](const boost::system::error_code& ec) { ec ? ++aborted : ++fired; });
  }
  const double t1 = bench::now_ns();
  const long rss1 = bench::rss_bytes();
  for (long i = 0; i < n; i += 2) timers[i].cancel();
  const double t2 = bench::now_ns();
  const double c0 = bench::cpu_ns();
  ctx.run();  // returns when every wait has completed or been aborted
  const double c1 = bench::cpu_ns();
  if (fired != n / 2) std::abort();

  bench::report("asio", "timers", "schedule_ns", (t1 - t0) / n, "ns");
  bench::report("asio", "timers", "cancel_ns", (t2 - t1) / (n / 2), "ns");
  bench::report("asio", "timers", "fire_cpu_ns", (c1 - c0) / (n / 2), "ns");
  bench::report("asio", "timers", "rss_bytes_per_timer", double(rss1 - rss0) / n, "B");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("call_soon_batch")) post_batch(args);
  if (args.wants("call_soon_chain")) post_chain(args);
  if (args.wants("timers")) timers(args);
  return 0;
}
