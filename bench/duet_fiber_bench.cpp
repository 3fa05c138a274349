// Fiber tasks beside coroutine tasks (issue: a fiber hop <= 2x the
// coroutine hop), and a raw Boost.Context switch as this machine's floor.
// Neither Asio nor libuv has stackful tasks here (Asio's spawn needs
// Boost.Coroutine); the peers' figures are in the other binaries.
#include <optional>

#include <boost/context/fiber.hpp>

#include <duet/duet.hpp>
#include <duet/fiber.hpp>

#include "bench_common.hpp"

namespace {

struct Mailboxes {
  std::optional<duet::Future<long>> to_a, to_b;
};

void fiber_a(duet::Loop& loop, Mailboxes& m, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    m.to_a.emplace(loop);
    m.to_b->set_result(i);
    duet::Future<long> answer = *m.to_a;
    if (duet::await(answer) != i) std::abort();
  }
}

void fiber_b(duet::Loop& loop, Mailboxes& m, long rounds) {
  for (long i = 0; i < rounds; ++i) {
    duet::Future<long> mine = *m.to_b;
    long v = duet::await(mine);
    m.to_b.emplace(loop);
    m.to_a->set_result(v);
  }
}

void ping_pong(const bench::Args& args) {
  const long hops = args.scale(1'000'000, 10'000);
  auto loop = duet::native::new_event_loop();
  auto run = [&](long rounds) {
    Mailboxes m;
    m.to_b.emplace(*loop);
    auto b = loop->create_task(duet::fiber(64 * 1024, fiber_b, std::ref(*loop), std::ref(m), rounds));
    auto a = loop->create_task(duet::fiber(64 * 1024, fiber_a, std::ref(*loop), std::ref(m), rounds));
    loop->run_until_complete(duet::Future<void>(a));
    loop->run_until_complete(duet::Future<void>(b));
  };
  run(1000);  // warm-up
  const double t0 = bench::now_ns();
  run(hops / 2);
  const double t1 = bench::now_ns();
  bench::report("duet", "fiber_ping_pong", "ns_per_hop", (t1 - t0) / hops, "ns");
}

void spawn(const bench::Args& args) {
  const long n = args.scale(200'000, 2'000);
  auto loop = duet::native::new_event_loop();
  long done = 0;
  auto round = [&](long count) {
    std::vector<duet::Task<void>> tasks;
    tasks.reserve(1000);
    for (long i = 0; i < count; i += 1000) {
      tasks.clear();
      for (long j = 0; j < 1000; ++j) tasks.push_back(loop->create_task(duet::fiber(64 * 1024, [&done] { ++done; })));
      loop->run_until_complete(duet::Future<void>(tasks.back()));
      for (auto& t : tasks) loop->run_until_complete(duet::Future<void>(t));
    }
  };
  round(2000);  // warm-up: fills the stack pool
  const double t0 = bench::now_ns();
  round(n);
  const double t1 = bench::now_ns();
  bench::report("duet", "fiber_spawn", "ns_per_fiber_task", (t1 - t0) / n, "ns");
}

// The physical floor: switching into a Boost.Context fiber and back.
void raw_switch(const bench::Args& args) {
  namespace ctx = boost::context;
  const long n = args.scale(10'000'000, 100'000);
  long count = 0;
  ctx::fiber f([&count](ctx::fiber&& main) {
    for (;;) {
      ++count;
      main = std::move(main).resume();
    }
    return std::move(main);
  });
  f = std::move(f).resume();
  const double t0 = bench::now_ns();
  for (long i = 0; i < n; ++i) f = std::move(f).resume();
  const double t1 = bench::now_ns();
  if (count != n + 1) std::abort();
  bench::report("boost.context", "fiber_switch", "ns_per_round_trip", (t1 - t0) / n, "ns");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("fiber_ping_pong")) ping_pong(args);
  if (args.wants("fiber_spawn")) spawn(args);
  if (args.wants("fiber_switch")) raw_switch(args);
  return 0;
}
