// libuv side of the memory workload (W7), as duet_memory_bench.cpp. libuv
// has no tasks (no idle-task figure) and no call_soon: the handle figure
// is the hand-made (function, data) queue of uv_loop_bench.cpp, 16 bytes
// per entry, i.e. a lower bound. Timers are uv_timer_t started, each
// allocated on its own as a program that cancels them would keep them.
#include <uv.h>

#include <memory>
#include <vector>

#include "bench_common.hpp"
#include "fresh_process.hpp"

namespace {

struct Item {
  void (*fn)(void*);
  void* data;
};

void handles(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  std::vector<Item> queue;
  queue.reserve(static_cast<std::size_t>(n));  // reserved, not yet touched: RSS grows as entries are written
  long ran = 0;
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) queue.push_back({[](void* d) { ++*static_cast<long*>(d); }, &ran});
  const long rss1 = bench::rss_bytes();
  bench::report("libuv", "memory", "bytes_per_handle", double(rss1 - rss0) / n, "B");
  for (const Item& it : queue) it.fn(it.data);
  if (ran != n) std::abort();
}

void timers(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::unique_ptr<uv_timer_t>> kept;
  kept.reserve(static_cast<std::size_t>(n));
  const long rss0 = bench::rss_bytes();
  for (long i = 0; i < n; ++i) {
    kept.push_back(std::make_unique<uv_timer_t>());
    uv_timer_init(&loop, kept.back().get());
    uv_timer_start(
        kept.back().get(), [](uv_timer_t*) {}, 3'600'000 + static_cast<uint64_t>(i / 1000), 0);
  }
  const long rss1 = bench::rss_bytes();
  bench::report("libuv", "memory", "bytes_per_timer", double(rss1 - rss0) / n, "B");
  for (auto& t : kept) uv_close(reinterpret_cast<uv_handle_t*>(t.get()), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("memory")) {
    bench::in_fresh_process([&] { handles(args); });
    bench::in_fresh_process([&] { timers(args); });
  }
}
