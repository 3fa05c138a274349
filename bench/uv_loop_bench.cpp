// libuv side of the loop benchmarks.
//
// libuv has no call_soon. What libuv programs write instead is a queue of
// (function, data) pairs drained from a uv_idle_t (uv_idle keeps the loop
// polling with a zero timeout while the queue is non-empty), so that is what
// is measured: a std::vector-based FIFO of plain function pointers, with no
// type erasure and no handles, i.e. a lower bound for a real libuv program.
// Timers are uv_timer_t: uv_timer_start to schedule (millisecond
// granularity), uv_timer_stop to cancel.
#include <uv.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "bench_common.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
BENCH_COUNT_ALLOCATIONS()

namespace {

struct SoonQueue {
  using Fn = void (*)(SoonQueue&, void*);
  struct Item {
    Fn fn;
    void* data;
  };
  uv_loop_t* loop;
  uv_idle_t idle;
  std::vector<Item> current, next;

  explicit SoonQueue(uv_loop_t* l) : loop(l) {
    uv_idle_init(loop, &idle);
    idle.data = this;
  }
  void push(Fn fn, void* data) {
    if (next.empty() && current.empty()) uv_idle_start(&idle, &SoonQueue::drain);
    next.push_back({fn, data});
  }
  static void drain(uv_idle_t* h) {
    auto& q = *static_cast<SoonQueue*>(h->data);
    q.current.swap(q.next);  // run exactly what was queued before this turn
    for (const Item& it : q.current) it.fn(q, it.data);
    q.current.clear();
    if (q.next.empty()) uv_idle_stop(&q.idle);
  }
};

void soon_batch(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  uv_loop_t loop;
  uv_loop_init(&loop);
  SoonQueue q(&loop);
  long count = 0;
  for (int round = 0; round < 2; ++round) {
    count = 0;
    const long allocs_before = bench::g_allocations.load();
    const double t0 = bench::now_ns();
    q.push([](SoonQueue& q2, void* d) {
             auto* c = static_cast<long*>(d);
             for (long i = 0, m = *c; i < m; ++i) q2.push([](SoonQueue&, void* d2) { ++*static_cast<long*>(d2); }, d);
             *c = 0;
           },
           &count);
    count = n;  // read by the batch callback as the batch size, then reused as the counter
    uv_run(&loop, UV_RUN_DEFAULT);
    const double t1 = bench::now_ns();
    if (round == 1) {
      bench::report("libuv", "call_soon_batch", "ns_per_callback", (t1 - t0) / n, "ns");
      bench::report("libuv", "call_soon_batch", "allocs_per_callback",
                    double(bench::g_allocations.load() - allocs_before) / n, "allocs");
    }
  }
  if (count != n) std::abort();
  uv_close(reinterpret_cast<uv_handle_t*>(&q.idle), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

void chain_link(SoonQueue& q, void* d) {
  auto* left = static_cast<long*>(d);
  if (--*left > 0) q.push(&chain_link, d);
}

void soon_chain(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  uv_loop_t loop;
  uv_loop_init(&loop);
  SoonQueue q(&loop);
  for (int round = 0; round < 2; ++round) {
    long left = n;
    const long allocs_before = bench::g_allocations.load();
    const double t0 = bench::now_ns();
    q.push(&chain_link, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    const double t1 = bench::now_ns();
    if (round == 1) {
      bench::report("libuv", "call_soon_chain", "ns_per_callback", (t1 - t0) / n, "ns");
      bench::report("libuv", "call_soon_chain", "allocs_per_callback",
                    double(bench::g_allocations.load() - allocs_before) / n, "allocs");
    }
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&q.idle), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

long g_fired = 0;

void timers(const bench::Args& args) {
  const long n = args.scale(1'000'000, 10'000);
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::mt19937 rng(42);
  std::uniform_int_distribution<long> delay_us(0, 100'000);
  std::vector<long> delays(n);
  for (auto& d : delays) d = delay_us(rng);
  const long rss0 = bench::rss_bytes();
  std::vector<uv_timer_t> timers(n);  // counted in the RSS: libuv's per-timer memory is the caller's
  const double t0 = bench::now_ns();
  for (long i = 0; i < n; ++i) {
    uv_timer_init(&loop, &timers[i]);
    // libuv takes whole milliseconds; round up like duet does.
    uv_timer_start(&timers[i], [](uv_timer_t*) { ++g_fired; }, (delays[i] + 999) / 1000, 0);
  }
  const double t1 = bench::now_ns();
  const long rss1 = bench::rss_bytes();
  for (long i = 0; i < n; i += 2) uv_timer_stop(&timers[i]);
  const double t2 = bench::now_ns();
  const double c0 = bench::cpu_ns();
  uv_run(&loop, UV_RUN_DEFAULT);
  const double c1 = bench::cpu_ns();
  if (g_fired != n / 2) std::abort();

  bench::report("libuv", "timers", "schedule_ns", (t1 - t0) / n, "ns");
  bench::report("libuv", "timers", "cancel_ns", (t2 - t1) / (n / 2), "ns");
  bench::report("libuv", "timers", "fire_cpu_ns", (c1 - c0) / (n / 2), "ns");
  bench::report("libuv", "timers", "rss_bytes_per_timer", double(rss1 - rss0) / n, "B");
  for (auto& t : timers) uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("call_soon_batch")) soon_batch(args);
  if (args.wants("call_soon_chain")) soon_chain(args);
  if (args.wants("timers")) timers(args);
  return 0;
}
