// duet side of the memory workload (W7), each figure in a fresh process
// (run_bench.py runs this binary once per run) and measured as resident
// memory growth (RSS) over N objects, including what the caller keeps:
//   idle task   N tasks each waiting on an Event that is never set: the task
//               state, its coroutine frame (a trivial coroutine), the waiter,
//               the Task handle in a vector;
//   handle      N call_soon callbacks scheduled and not yet run, with their
//               Handles kept;
//   timer       N call_later timers pending, with their TimerHandles kept.
#include <chrono>
#include <duet/duet.hpp>
#include <vector>

#include "bench_common.hpp"
#include "fresh_process.hpp"

namespace {

duet::Coro<void> idle(duet::Event& never) {
  co_await never.wait();
}

void idle_tasks(const bench::Args& args) {
  const long n = args.scale(100'000, 1'000);
  auto loop = duet::native::new_event_loop();
  duet::Event never;  // binds to the loop on first use, as asyncio's
  std::vector<duet::Task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) tasks.push_back(loop->create_task(idle(never)));
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();  // every task has started and waits
  const long rss1 = bench::rss_bytes();
  bench::report("duet", "memory", "bytes_per_idle_task", double(rss1 - rss0) / n, "B");
  loop->call_soon([&] { never.set(); });
  for (int i = 0; i < 3; ++i) {  // set, then the tasks' steps, then their completion
    loop->call_soon([&] { loop->stop(); });
    loop->run_forever();
  }
  tasks.clear();
}

void handles(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  auto loop = duet::native::new_event_loop();
  std::vector<duet::Handle> kept;
  kept.reserve(static_cast<std::size_t>(n));
  long ran = 0;
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) kept.push_back(loop->call_soon([&ran] { ++ran; }));
  const long rss1 = bench::rss_bytes();
  bench::report("duet", "memory", "bytes_per_handle", double(rss1 - rss0) / n, "B");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  if (ran != n) std::abort();
}

void timers(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  auto loop = duet::native::new_event_loop();
  std::vector<duet::TimerHandle> kept;
  kept.reserve(static_cast<std::size_t>(n));
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i)
    kept.push_back(loop->call_later(std::chrono::hours(1) + std::chrono::microseconds(i), [] {}));
  const long rss1 = bench::rss_bytes();
  bench::report("duet", "memory", "bytes_per_timer", double(rss1 - rss0) / n, "B");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  // The vectors' own capacity is reserved before the first reading, so the
  // figures are the objects' cost plus the 8- or 16-byte handle kept.
  if (args.wants("memory")) {
    bench::in_fresh_process([&] { idle_tasks(args); });
    bench::in_fresh_process([&] { handles(args); });
    bench::in_fresh_process([&] { timers(args); });
  }
}
