// duet demo: the loop at work on this machine's real backend.
//
//  * a countdown of timers that print in deadline order, ties in FIFO order;
//  * a callback chain, each link scheduling the next (one per iteration);
//  * a worker thread that posts results back with call_soon_threadsafe and
//    wakes the loop out of its blocking poll;
//  * a callback that throws: reported by the exception handler, the loop
//    goes on;
//  * a timer cancelled before it fires;
//  * stop() once everything is done, then the loop's statistics.
//
// Then the same loop machinery with coroutines (duet::run): tasks, gather,
// a timeout, a cancelled task and a TaskGroup.
//
// It exits by itself in under a second.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include <duet/duet.hpp>

using namespace std::chrono_literals;

namespace {

duet::Coro<int> square_later(int x, std::chrono::milliseconds delay) {
  co_await duet::sleep(delay);
  co_return x * x;
}

// A request id set per "request" task: every line it logs, and every
// callback it schedules, sees its own id, never a sibling's.
duet::ContextVar<std::string> request_id("request_id", "-");

duet::Coro<void> handle_request(std::string id, std::chrono::milliseconds work, std::string* log) {
  request_id.set(id);
  co_await duet::sleep(work);
  duet::get_running_loop().call_soon([log] { *log += " " + request_id.get(); });
  co_await duet::yield_now();
}

duet::Coro<void> coroutine_part() {
  auto& loop = duet::get_running_loop();
  const auto t0 = loop.time();
  auto ms = [&] { return std::chrono::duration<double, std::milli>(loop.time() - t0).count(); };

  auto [a, b, c] = co_await duet::gather(square_later(2, 30ms), square_later(3, 10ms), square_later(4, 20ms));
  std::printf("[%7.2f ms] gather of three tasks: %d %d %d (in argument order)\n", ms(), a, b, c);

  try {
    co_await duet::timeout(15ms, square_later(5, 1s));
  } catch (const duet::TimeoutError&) {
    std::printf("[%7.2f ms] timeout(15ms) around a 1 s task raised TimeoutError\n", ms());
  }

  auto doomed = duet::create_task(square_later(6, 1s), "doomed");
  co_await duet::sleep(5ms);
  doomed.cancel("not needed any more");
  try {
    co_await doomed;
  } catch (const duet::CancelledError& e) {
    std::printf("[%7.2f ms] task '%s' cancelled: %s\n", ms(), doomed.name().c_str(), e.message().c_str());
  }

  std::string log;
  co_await duet::gather(handle_request("r1", 20ms, &log), handle_request("r2", 5ms, &log),
                        handle_request("r3", 10ms, &log));
  std::printf("[%7.2f ms] three requests logged their own ids:%s (the caller still sees '%s')\n", ms(), log.c_str(),
              request_id.get().c_str());

  try {
    co_await duet::task_group([&](duet::TaskGroup& tg) -> duet::Coro<void> {
      tg.create_task(square_later(7, 50ms));
      tg.create_task([]() -> duet::Coro<int> {
        co_await duet::sleep(5ms);
        throw std::runtime_error("a child failed");
      }());
      co_return;
    });
  } catch (const duet::ExceptionGroup& group) {
    std::printf("[%7.2f ms] TaskGroup cancelled the sibling and raised: %s\n", ms(), group.what());
  }
}

}  // namespace

int main() {
  auto loop = duet::native::new_event_loop();
  const auto t0 = loop->time();
  auto ms_since_start = [&] { return std::chrono::duration<double, std::milli>(loop->time() - t0).count(); };

  std::printf("duet demo — backend: %s\n", std::string(loop->backend().name()).c_str());

  // Timers: scheduled out of order, run in deadline order.
  for (int i : {3, 1, 2})
    loop->call_later(i * 100ms, [&, i] { std::printf("[%7.2f ms] timer %d fired (due at %d ms)\n", ms_since_start(), i, i * 100); });
  // Two timers with the same deadline run in the order they were scheduled.
  const auto tie = t0 + 150ms;
  loop->call_at(tie, [&] { std::printf("[%7.2f ms] tie A (scheduled first)\n", ms_since_start()); });
  loop->call_at(tie, [&] { std::printf("[%7.2f ms] tie B (scheduled second)\n", ms_since_start()); });

  // A timer that is cancelled never runs.
  auto doomed = loop->call_later(50ms, [] { std::puts("this never prints"); });
  loop->call_soon([&] {
    doomed.cancel();
    std::printf("[%7.2f ms] cancelled a timer: %s\n", ms_since_start(), doomed.describe().c_str());
  });

  // A chain: each link schedules the next, so each runs one iteration later.
  struct Link {
    duet::Loop* loop;
    int n;
    void operator()() const {
      if (n < 5) loop->call_soon(Link{loop, n + 1});
      else std::printf("           chain of 5 links done in %llu iterations\n",
                       static_cast<unsigned long long>(loop->statistics().iterations));
    }
  };
  loop->call_soon(Link{loop.get(), 1});

  // An exception escaping a callback goes to the handler; the loop lives on.
  loop->set_exception_handler([&](duet::Loop&, const duet::ExceptionContext& ctx) {
    std::printf("[%7.2f ms] exception handler: %s\n", ms_since_start(), duet::describe_exception(ctx.exception).c_str());
  });
  loop->call_later(20ms, [] { throw std::runtime_error("a callback failed"); });

  // A worker thread computes and posts its results back to the loop thread.
  std::thread worker([&] {
    long sum = 0;
    for (int step = 1; step <= 3; ++step) {
      std::this_thread::sleep_for(70ms);
      for (long i = 0; i < 1'000'000; ++i) sum += i % 7;
      loop->call_soon_threadsafe([&, step, sum] {
        std::printf("[%7.2f ms] worker result %d posted from another thread: %ld\n", ms_since_start(), step, sum);
      });
    }
  });

  loop->call_later(400ms, [&] {
    std::printf("[%7.2f ms] all done, stopping\n", ms_since_start());
    loop->stop();
  });
  loop->run_forever();
  worker.join();

  auto s = loop->statistics();
  std::printf("iterations: %llu, wakeups from other threads: %llu (the loop slept in %s between events)\n",
              static_cast<unsigned long long>(s.iterations), static_cast<unsigned long long>(s.wakeups),
              std::string(loop->backend().name()).c_str());
  loop->close();

  std::puts("-- coroutines: duet::run(coroutine_part())");
  duet::run(coroutine_part());
  return 0;
}
