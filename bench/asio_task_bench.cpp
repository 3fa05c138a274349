// Boost.Asio side of the task benchmarks: co_spawn of C++20 awaitables
// (W2), and the fastest hand-off between two awaitable coroutines that
// Boost 1.74 offers without channels (W3): the waiting side parks its
// completion handler in a slot, the other side posts it (a minimal
// one-shot event written with async_initiate). A steady_timer used as an
// event (cancel_one) is measured too; the better of the two is "Asio's
// best hand-off".
#include <utility>  // Boost 1.74's asio needs it first with g++ 12

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <optional>

#include "bench_common.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
BENCH_COUNT_ALLOCATIONS()

namespace asio = boost::asio;

namespace {

asio::awaitable<void> trivial(long* done) {
  ++*done;
  co_return;
}

void task_spawn(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  constexpr long kBatch = 1000;
  asio::io_context ctx(1);
  long done = 0;
  auto run_batches = [&](long total) {
    for (long b = 0; b < total / kBatch; ++b) {
      for (long i = 0; i < kBatch; ++i) asio::co_spawn(ctx, trivial(&done), asio::detached);
      ctx.run();
      ctx.restart();
    }
  };
  run_batches(kBatch * 10);
  done = 0;
  const long allocs_before = bench::g_allocations.load();
  const double t0 = bench::now_ns();
  run_batches(n);
  const double t1 = bench::now_ns();
  if (done != n) std::abort();
  bench::report("asio", "task_spawn", "ns_per_task", (t1 - t0) / n, "ns");
  bench::report("asio", "task_spawn", "allocs_per_task", double(bench::g_allocations.load() - allocs_before) / n,
                "allocs");
}

// A one-shot value slot: wait() parks the handler, set() posts it.
struct Slot {
  asio::io_context& ctx;
  std::function<void(long)> waiter;
  std::optional<long> value;

  auto wait() {
    return asio::async_initiate<decltype(asio::use_awaitable), void(long)>(
        [this](auto handler) {
          if (value) {
            long v = *value;
            value.reset();
            asio::post(ctx, [h = std::move(handler), v]() mutable { h(v); });
          } else {
            waiter = [this, h = std::make_shared<decltype(handler)>(std::move(handler))](long v) mutable {
              asio::post(ctx, [h, v]() mutable { (*h)(v); });
            };
          }
        },
        asio::use_awaitable);
  }
  void set(long v) {
    if (waiter) {
      auto w = std::move(waiter);
      waiter = nullptr;
      w(v);
    } else {
      value = v;
    }
  }
};

asio::awaitable<void> player_a(Slot& to_a, Slot& to_b, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    to_b.set(i);
    long v = co_await to_a.wait();
    if (v != i) std::abort();
  }
}

asio::awaitable<void> player_b(Slot& to_a, Slot& to_b, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    long v = co_await to_b.wait();
    to_a.set(v);
  }
}

void ping_pong_slot(const bench::Args& args) {
  const long hops = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  auto run = [&](long rounds) {
    Slot to_a{ctx, {}, {}}, to_b{ctx, {}, {}};
    asio::co_spawn(ctx, player_b(to_a, to_b, rounds), asio::detached);
    asio::co_spawn(ctx, player_a(to_a, to_b, rounds), asio::detached);
    ctx.run();
    ctx.restart();
  };
  run(1000);
  const long allocs_before = bench::g_allocations.load();
  const double t0 = bench::now_ns();
  run(hops / 2);
  const double t1 = bench::now_ns();
  bench::report("asio", "ping_pong_future", "ns_per_hop", (t1 - t0) / hops, "ns");
  bench::report("asio", "ping_pong_future", "allocs_per_hop", double(bench::g_allocations.load() - allocs_before) / hops,
                "allocs");
}

asio::awaitable<void> timer_a(asio::steady_timer& to_a, asio::steady_timer& to_b, long& box, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    box = i;
    to_b.cancel_one();
    boost::system::error_code ec;
    co_await to_a.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> timer_b(asio::steady_timer& to_a, asio::steady_timer& to_b, long& box, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    boost::system::error_code ec;
    co_await to_b.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (box != i) std::abort();
    to_a.cancel_one();
  }
}

void ping_pong_timer(const bench::Args& args) {
  const long hops = args.scale(1'000'000, 10'000);
  asio::io_context ctx(1);
  auto run = [&](long rounds) {
    asio::steady_timer to_a(ctx, asio::steady_timer::time_point::max());
    asio::steady_timer to_b(ctx, asio::steady_timer::time_point::max());
    long box = -1;
    asio::co_spawn(ctx, timer_b(to_a, to_b, box, rounds), asio::detached);
    asio::co_spawn(ctx, timer_a(to_a, to_b, box, rounds), asio::detached);
    ctx.run();
    ctx.restart();
  };
  run(1000);
  const double t0 = bench::now_ns();
  run(hops / 2);
  const double t1 = bench::now_ns();
  bench::report("asio", "ping_pong_timer_event", "ns_per_hop", (t1 - t0) / hops, "ns");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("task_spawn")) task_spawn(args);
  if (args.wants("ping_pong_future")) ping_pong_slot(args);
  if (args.wants("ping_pong_timer_event")) ping_pong_timer(args);
  return 0;
}
