// duet side of the task benchmarks (W2 task spawn, W3 future ping-pong).
#include <optional>

#include <duet/duet.hpp>

#include "bench_common.hpp"
#include "duet_loop_factory.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
BENCH_COUNT_ALLOCATIONS()

namespace {

duet::Coro<void> trivial(long* done) {
  ++*done;
  co_return;
}

void task_spawn(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  constexpr long kBatch = 1000;
  auto loop = bench::new_duet_loop();
  long done = 0;
  auto run_batches = [&](long total) {
    for (long b = 0; b < total / kBatch; ++b) {
      for (long i = 0; i < kBatch; ++i) loop->create_task(trivial(&done));
      loop->call_soon([&] { loop->stop(); });
      loop->run_forever();  // one iteration runs every first (and last) step
    }
  };
  run_batches(kBatch * 10);  // warm-up: fills the frame and node pools
  done = 0;
  const long allocs_before = bench::g_allocations.load();
  const double t0 = bench::now_ns();
  run_batches(n);
  const double t1 = bench::now_ns();
  if (done != n) std::abort();
  bench::report("duet", "task_spawn", "ns_per_task", (t1 - t0) / n, "ns");
  bench::report("duet", "task_spawn", "allocs_per_task", double(bench::g_allocations.load() - allocs_before) / n,
                "allocs");
  // Scheduler overhead per task, frame excluded: the task state (a future
  // plus the driving fields) and the 24-byte ready-queue entry of a step.
  bench::report("duet", "task_spawn", "overhead_bytes_per_task",
                double(sizeof(duet::detail::TaskState<void>) + 24), "B");
}

struct Mailboxes {
  std::optional<duet::Future<long>> to_a, to_b;
};

duet::Coro<void> player_a(duet::Loop& loop, Mailboxes& m, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    m.to_a.emplace(loop);        // where the answer will come
    m.to_b->set_result(i);       // hop: A -> B
    long v = co_await *m.to_a;   // hop: B -> A
    if (v != i) std::abort();
  }
}

duet::Coro<void> player_b(duet::Loop& loop, Mailboxes& m, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    duet::Future<long> mine = *m.to_b;
    long v = co_await mine;
    m.to_b.emplace(loop);        // ready for the next value before answering
    m.to_a->set_result(v);
  }
}

void ping_pong(const bench::Args& args) {
  const long hops = args.scale(1'000'000, 10'000);
  auto loop = bench::new_duet_loop();
  auto run = [&](long rounds) {
    Mailboxes m;
    m.to_b.emplace(*loop);
    auto b = loop->create_task(player_b(*loop, m, rounds));
    auto a = loop->create_task(player_a(*loop, m, rounds));
    loop->run_until_complete(duet::Future<void>(a));
    loop->run_until_complete(duet::Future<void>(b));
  };
  run(1000);  // warm-up
  const long allocs_before = bench::g_allocations.load();
  const double t0 = bench::now_ns();
  run(hops / 2);
  const double t1 = bench::now_ns();
  bench::report("duet", "ping_pong_future", "ns_per_hop", (t1 - t0) / hops, "ns");
  bench::report("duet", "ping_pong_future", "allocs_per_hop", double(bench::g_allocations.load() - allocs_before) / hops,
                "allocs");
}

// W3's queue variant: the same hand-off through two unbounded Queues.
duet::Coro<void> queue_player_a(duet::Queue<long>& to_b, duet::Queue<long>& to_a, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    co_await to_b.put(i);
    long v = co_await to_a.get();
    if (v != i) std::abort();
  }
}

duet::Coro<void> queue_player_b(duet::Queue<long>& to_b, duet::Queue<long>& to_a, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    long v = co_await to_b.get();
    co_await to_a.put(v);
  }
}

void ping_pong_queue(const bench::Args& args) {
  const long hops = args.scale(1'000'000, 10'000);
  auto loop = bench::new_duet_loop();
  duet::Queue<long> to_a, to_b;
  auto run = [&](long rounds) {
    auto b = loop->create_task(queue_player_b(to_b, to_a, rounds));
    auto a = loop->create_task(queue_player_a(to_b, to_a, rounds));
    loop->run_until_complete(duet::Future<void>(a));
    loop->run_until_complete(duet::Future<void>(b));
  };
  run(1000);  // warm-up
  const long allocs_before = bench::g_allocations.load();
  const double t0 = bench::now_ns();
  run(hops / 2);
  const double t1 = bench::now_ns();
  bench::report("duet", "ping_pong_queue", "ns_per_hop", (t1 - t0) / hops, "ns");
  bench::report("duet", "ping_pong_queue", "allocs_per_hop", double(bench::g_allocations.load() - allocs_before) / hops,
                "allocs");
}

// An uncontended Lock: acquire + release in one task, no other task around.
duet::Coro<void> lock_loop(duet::Lock& lock, long n) {
  for (long i = 0; i < n; ++i) {
    co_await lock.acquire();
    lock.release();
  }
}

void lock_uncontended(const bench::Args& args) {
  const long n = args.scale(20'000'000, 100'000);
  auto loop = bench::new_duet_loop();
  duet::Lock lock;
  loop->run_until_complete(lock_loop(lock, 1000));  // warm-up
  const double t0 = bench::now_ns();
  loop->run_until_complete(lock_loop(lock, n));
  const double t1 = bench::now_ns();
  bench::report("duet", "lock_uncontended", "ns_per_acquire_release", (t1 - t0) / n, "ns");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("task_spawn")) task_spawn(args);
  if (args.wants("ping_pong_future")) ping_pong(args);
  if (args.wants("ping_pong_queue")) ping_pong_queue(args);
  if (args.wants("lock_uncontended")) lock_uncontended(args);
  return 0;
}
