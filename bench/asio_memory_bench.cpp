// Boost.Asio side of the memory workload (W7), as duet_memory_bench.cpp:
//   idle task   N co_spawn'd awaitable coroutines each waiting on one shared
//               steady_timer that never expires (Asio's nearest to a task
//               waiting on an event);
//   handle      N asio::post'ed handlers not yet run;
//   timer       N steady_timers with a pending async_wait.
// clang-format off
#include <utility>  // Boost 1.74's asio needs it first with g++ 12
// clang-format on

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "bench_common.hpp"
#include "fresh_process.hpp"

namespace asio = boost::asio;

namespace {

asio::awaitable<void> idle(asio::steady_timer& never) {
  boost::system::error_code ec;
  co_await never.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void idle_tasks(const bench::Args& args) {
  const long n = args.scale(100'000, 1'000);
  asio::io_context ctx(1);
  asio::steady_timer never(ctx, asio::steady_timer::time_point::max());
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) asio::co_spawn(ctx, idle(never), asio::detached);
  ctx.poll();  // every coroutine has started and waits
  const long rss1 = bench::rss_bytes();
  bench::report("asio", "memory", "bytes_per_idle_task", double(rss1 - rss0) / n, "B");
  never.cancel();
  ctx.run();
}

void handles(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  long ran = 0;
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) asio::post(ctx, [&ran] { ++ran; });
  const long rss1 = bench::rss_bytes();
  bench::report("asio", "memory", "bytes_per_handle", double(rss1 - rss0) / n, "B");
  ctx.run();
  if (ran != n) std::abort();
}

void timers(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  std::vector<std::unique_ptr<asio::steady_timer>> kept;
  kept.reserve(static_cast<std::size_t>(n));
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) {
    kept.push_back(std::make_unique<asio::steady_timer>(ctx, std::chrono::hours(1) + std::chrono::microseconds(i)));
    kept.back()->async_wait([](const boost::system::error_code&) {});
  }
  const long rss1 = bench::rss_bytes();
  bench::report("asio", "memory", "bytes_per_timer", double(rss1 - rss0) / n, "B");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("memory")) {
    bench::in_fresh_process([&] { idle_tasks(args); });
    bench::in_fresh_process([&] { handles(args); });
    bench::in_fresh_process([&] { timers(args); });
  }
}
