// call_soon_threadsafe: nothing lost, FIFO per producer, coalesced wakeups,
// and a safe race with close(). (asyncio: test_events.py
// test_call_soon_threadsafe, test_call_soon_threadsafe_same_thread; the
// libuv uv_async_send/uv_close use-after-free is the bug to avoid.)
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <vector>
#ifndef DUET_TEST_NO_THREADS
#include <thread>
#endif

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

TEST_CASE("call_soon_threadsafe from the loop's own thread behaves like call_soon "
          "(test_call_soon_threadsafe_same_thread)",
          "[threadsafe]") {
  TestLoop loop;
  std::vector<int> order;
  loop->call_soon([&] { order.push_back(1); });
  loop->call_soon_threadsafe([&] { order.push_back(2); });
  loop->call_soon_threadsafe([&](int x) { order.push_back(x); }, 3);
  loop->run_once();
  CHECK(order == std::vector<int>{1, 2, 3});
  // Not blocked in a poll: nothing was written to the wake primitive.
  CHECK(loop.backend->wake_count() == 0);
}

TEST_CASE("a thread-safe post made on the loop thread keeps its place before a later call_soon "
          "(asyncio appends both to _ready)",
          "[threadsafe]") {
  TestLoop loop;
  std::vector<int> order;
  loop->call_soon_threadsafe([&] { order.push_back(1); });
  loop->call_soon([&] { order.push_back(2); });
  loop->call_soon_threadsafe([&] { order.push_back(3); });
  loop->run_once();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("a thread-safe post makes a zero poll timeout", "[threadsafe]") {
  TestLoop loop;
  CHECK_FALSE(loop->poll_timeout().has_value());
  loop->call_soon_threadsafe([] {});
  CHECK(loop->poll_timeout() == 0ns);
}

#ifndef DUET_TEST_NO_THREADS
TEST_CASE("8 threads x 100k call_soon_threadsafe: none lost, FIFO per thread (test_call_soon_threadsafe)",
          "[threadsafe][threads]") {
  constexpr int kThreads = 8, kPerThread = 100'000;
  TestLoop loop;
  std::vector<int> next(kThreads, 0);  // loop-thread only
  long total = 0;
  bool in_order = true;
  std::vector<std::thread> producers;
  loop->call_soon([&] {
    for (int t = 0; t < kThreads; ++t)
      producers.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i)
          loop->call_soon_threadsafe([&, t, i] {
            if (next[t] != i) in_order = false;
            next[t] = i + 1;
            if (++total == long{kThreads} * kPerThread) loop->stop();
          });
      });
  });
  loop->run_forever();
  for (auto& p : producers) p.join();
  CHECK(total == long{kThreads} * kPerThread);
  CHECK(in_order);
  // Coalescing: at most one wake per sleep, and none while busy.
  auto stats = loop->statistics();
  CHECK(stats.wakeups <= loop.backend->wait_count());
  CHECK(stats.wakeups == loop.backend->wake_count());
}

TEST_CASE("a burst of posts while the loop sleeps costs exactly one wake", "[threadsafe][threads]") {
  TestLoop loop;
  std::vector<duet::IoEvent> events;
  // The loop's poll step may run on another thread (guest mode does that).
  std::thread poller([&] { loop->poll(std::nullopt, events); });
  while (loop.backend->wait_count() == 0) std::this_thread::yield();
  int ran = 0;
  for (int i = 0; i < 1000; ++i) loop->call_soon_threadsafe([&] { ++ran; });
  poller.join();
  CHECK(loop.backend->wake_count() == 1);
  loop->process_ready();
  CHECK(ran == 1000);
}

TEST_CASE("posts racing with close() either land before it or throw; nothing leaks or is touched after",
          "[threadsafe][threads][close]") {
  for (int round = 0; round < 5; ++round) {
    TestLoop loop;
    auto held = std::make_shared<int>(0);
    std::atomic<long> accepted{0}, refused{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> posters;
    // A poll blocked on another thread, so that posts take the wake path.
    std::vector<duet::IoEvent> events;
    std::thread poller([&] { loop->poll(std::nullopt, events); });
    while (loop.backend->wait_count() == 0) std::this_thread::yield();
    for (int t = 0; t < 4; ++t)
      posters.emplace_back([&] {
        ++ready;
        // Post until the loop refuses (bounded in time): both outcomes happen.
        const auto give_up = std::chrono::steady_clock::now() + 60s;
        while (std::chrono::steady_clock::now() < give_up) {
          try {
            loop->call_soon_threadsafe([held] {});
            ++accepted;
          } catch (const duet::RuntimeError&) {
            ++refused;
            return;
          }
        }
      });
    while (ready < 4 || accepted < 100) std::this_thread::yield();
    poller.join();  // woken by the first post
    loop->close();
    for (auto& p : posters) p.join();
    CHECK(accepted > 0);
    CHECK(refused == 4);
    CHECK(held.use_count() == 1);  // every accepted callback was released by close()
  }
}

TEST_CASE("close() is refused while another thread polls the loop", "[threadsafe][threads][close]") {
  TestLoop loop;
  std::vector<duet::IoEvent> events;
  std::thread poller([&] { loop->poll(std::nullopt, events); });
  while (loop.backend->wait_count() == 0) std::this_thread::yield();
  CHECK_THROWS_AS(loop->close(), duet::RuntimeError);
  loop->call_soon_threadsafe([] {});
  poller.join();
  loop->close();
  CHECK(loop->is_closed());
}
#endif
