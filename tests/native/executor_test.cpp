// The thread-pool executor and its loop side, as asyncio's
// run_in_executor / to_thread (test_threads.py, named per case).
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <duet/duet.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using duet::Coro;
using namespace duet::native;

TEST_CASE("to_thread runs the function on another thread and returns its result (test_to_thread)", "[executor]") {
  auto main_coro = []() -> Coro<void> {
    const auto loop_thread = std::this_thread::get_id();
    auto where = co_await to_thread([] { return std::this_thread::get_id(); });
    CHECK(where != loop_thread);
    int sum = co_await to_thread([](int a, int b) { return a + b; }, 2, 3);
    CHECK(sum == 5);
    co_await to_thread([] {});
  };
  duet::run(main_coro());
}

TEST_CASE("to_thread raises the function's exception (test_to_thread_exception)", "[executor]") {
  auto main_coro = []() -> Coro<void> {
    bool raised = false;
    try {
      co_await to_thread([]() -> int { throw std::invalid_argument("bad"); });
    } catch (const std::invalid_argument& e) {
      raised = std::string(e.what()) == "bad";
    }
    CHECK(raised);
  };
  duet::run(main_coro());
}

TEST_CASE("to_thread copies the caller's context to the thread (test_to_thread_contextvars)", "[executor][context]") {
  static duet::ContextVar<std::string> request_id("request_id");
  auto main_coro = []() -> Coro<void> {
    request_id.set("abc");
    std::string seen = co_await to_thread([] { return request_id.get(); });
    CHECK(seen == "abc");
    // What the thread sets stays in its copy.
    co_await to_thread([] { request_id.set("changed"); });
    CHECK(request_id.get() == "abc");
  };
  duet::run(main_coro());
}

TEST_CASE("cancelling the future does not stop the function; its result is dropped", "[executor][cancel]") {
  auto main_coro = []() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    std::atomic<bool> release{false}, finished{false};
    duet::Future<int> f = run_in_executor(loop, nullptr, [&] {
      while (!release) std::this_thread::sleep_for(1ms);
      finished = true;
      return 7;
    });
    CHECK(f.cancel());
    release = true;
    while (!finished) co_await duet::sleep(1ms);
    co_await duet::sleep(5ms);  // the result arrives and is dropped
    CHECK(f.cancelled());
  };
  duet::run(main_coro());
}

TEST_CASE("a custom executor runs jobs on its own workers, refuses jobs after shutdown", "[executor]") {
  ThreadPoolExecutor pool(2);
  CHECK(pool.max_workers() == 2);
  auto main_coro = [&pool]() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    std::vector<duet::Future<int>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(run_in_executor(loop, &pool, [i] { return i * i; }));
    int total = 0;
    for (auto& f : futures) {
      int v = co_await f;
      total += v;
    }
    CHECK(total == 2470);
  };
  duet::run(main_coro());
  pool.shutdown();
  CHECK_THROWS_AS(pool.submit([] {}), duet::RuntimeError);
}

TEST_CASE("run() shuts the default executor down: jobs in flight finish and no worker outlives it", "[executor][run]") {
  static std::atomic<bool> finished{false};
  finished = false;
  auto main_coro = []() -> Coro<void> {
    // Not awaited: main returns while the job still runs.
    (void)run_in_executor(duet::get_running_loop(), nullptr, [] {
      std::this_thread::sleep_for(50ms);
      finished = true;
    });
    co_return;
  };
  duet::run(main_coro());
  CHECK(finished);
}

TEST_CASE("two jobs submitted while one worker is idle run at the same time (a second worker starts)", "[executor]") {
  ThreadPoolExecutor pool(2);
  auto main_coro = [&pool]() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    co_await run_in_executor(loop, &pool, [] {});  // one worker, now idle
    std::atomic<bool> b_ran{false};
    // A finishes only once B has run: with one worker for both, A would
    // give up after 5 s and report false.
    duet::Future<bool> a = run_in_executor(loop, &pool, [&b_ran] {
      for (int i = 0; i < 5000 && !b_ran; ++i) std::this_thread::sleep_for(1ms);
      return b_ran.load();
    });
    duet::Future<void> b = run_in_executor(loop, &pool, [&b_ran] { b_ran = true; });
    bool a_saw_b = co_await a;
    co_await b;
    CHECK(a_saw_b);
  };
  duet::run(main_coro());
}

TEST_CASE("shutdown(wait=false) cancels the futures of jobs that never started", "[executor][cancel]") {
  ThreadPoolExecutor pool(1);
  auto main_coro = [&pool]() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    std::atomic<bool> release{false};
    duet::Future<int> running = run_in_executor(loop, &pool, [&release] {
      while (!release) std::this_thread::sleep_for(1ms);
      return 1;
    });
    duet::Future<int> queued = run_in_executor(loop, &pool, [] { return 2; });
    co_await duet::sleep(5ms);
    pool.shutdown(false);
    release = true;
    int first = co_await running;
    CHECK(first == 1);
    bool cancelled = false;
    try {
      co_await queued;
    } catch (const duet::CancelledError&) {
      cancelled = true;
    }
    CHECK(cancelled);
  };
  duet::run(main_coro());
}

// asyncio drops a concurrent future's result when its loop is closed
// (futures._chain_future: `if dest_loop.is_closed(): return`); duet must
// also free the job and its future, with no leak for LeakSanitizer.
TEST_CASE("a plain loop closed while a job runs: the late result is dropped, nothing leaks", "[executor][close]") {
  ThreadPoolExecutor pool(1);
  auto token = std::make_shared<int>(7);  // the job's result holds a copy
  std::atomic<bool> started{false}, release{false};
  {
    auto loop = duet::native::new_event_loop();
    duet::Future<std::shared_ptr<int>> f = run_in_executor(*loop, &pool, [&] {
      started = true;
      started.notify_one();
      release.wait(false);
      return token;
    });
    started.wait(false);
    loop->close();
    release = true;
    release.notify_one();
    pool.shutdown(true);  // the result has now been sent to the closed loop
    CHECK_FALSE(f.done());
  }
  CHECK(token.use_count() == 1);
}

TEST_CASE("a plain loop closed while a default-executor job runs: close() waits, the result is dropped",
          "[executor][close]") {
  auto token = std::make_shared<int>(7);
  std::atomic<bool> started{false}, release{false};
  {
    auto loop = duet::native::new_event_loop();
    duet::Future<std::shared_ptr<int>> f = run_in_executor(*loop, nullptr, [&] {
      started = true;
      started.notify_one();
      release.wait(false);
      return token;
    });
    started.wait(false);
    // close() joins the default executor's workers; the job is released
    // only once the loop is marked closed, so its result comes too late.
    std::thread releaser([&] {
      while (!loop->is_closed()) std::this_thread::yield();
      release = true;
      release.notify_one();
    });
    loop->close();
    releaser.join();
    CHECK_FALSE(f.done());
  }
  CHECK(token.use_count() == 1);
}
