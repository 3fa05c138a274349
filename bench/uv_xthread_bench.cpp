// libuv side of the cross-thread workload (W5). libuv has no
// call_soon_threadsafe: what libuv programs write is a mutex-protected
// queue of (function, data) pairs plus uv_async_send (which coalesces
// wakeups itself), drained by the async callback. That hand-made queue is
// what is measured.
#include <uv.h>

#include <mutex>
#include <vector>

#include "xthread_common.hpp"

namespace {

struct PostQueue {
  using Fn = void (*)(void*);
  struct Item {
    Fn fn;
    void* data;
  };
  uv_async_t async;
  std::mutex mutex;
  std::vector<Item> items, running;

  explicit PostQueue(uv_loop_t* loop) {
    uv_async_init(loop, &async, &PostQueue::drain);
    async.data = this;
  }
  void post(Fn fn, void* data) {  // from any thread
    {
      std::lock_guard lock(mutex);
      items.push_back({fn, data});
    }
    uv_async_send(&async);
  }
  static void drain(uv_async_t* h) {
    auto& q = *static_cast<PostQueue*>(h->data);
    {
      std::lock_guard lock(q.mutex);
      q.running.swap(q.items);
    }
    for (const Item& it : q.running) it.fn(it.data);
    q.running.clear();
  }
};

struct RttPost {
  bench::RoundTrip* rt;
  int i;
};

void round_trip(const bench::Args& args, bool same_cpu) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  PostQueue q(&loop);
  bench::RoundTrip rt;
  std::vector<RttPost> posts(static_cast<std::size_t>(args.scale(10'000, 200)) + 1);
  bench::measure_round_trip(
      "libuv", args, same_cpu, rt,
      [&](int i) {
        posts[static_cast<std::size_t>(i)] = {&rt, i};
        q.post(
            [](void* d) {
              auto* p = static_cast<RttPost*>(d);
              p->rt->done(p->i);
            },
            &posts[static_cast<std::size_t>(i)]);
      },
      [&] { uv_run(&loop, UV_RUN_DEFAULT); },
      [&] {
        q.post([](void* d) { uv_close(reinterpret_cast<uv_handle_t*>(&static_cast<PostQueue*>(d)->async), nullptr); },
               &q);
      });
  uv_loop_close(&loop);
}

struct TpState {
  bench::Throughput tp;
  PostQueue* q;
};

void throughput(const bench::Args& args) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  PostQueue q(&loop);
  TpState s{{}, &q};
  bench::measure_throughput(
      "libuv", args, s.tp,
      [&] {
        q.post(
            [](void* d) {
              auto* st = static_cast<TpState*>(d);
              if (st->tp.counted()) uv_close(reinterpret_cast<uv_handle_t*>(&st->q->async), nullptr);
            },
            &s);
      },
      [&] { uv_run(&loop, UV_RUN_DEFAULT); });
  uv_loop_close(&loop);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("xthread_rtt_cross_cpu")) round_trip(args, false);
  if (args.wants("xthread_rtt_same_cpu")) round_trip(args, true);
  if (args.wants("xthread_throughput")) throughput(args);
}
