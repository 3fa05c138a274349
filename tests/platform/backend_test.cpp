// The platform's default backend and clock, for real: run_forever blocks
// in the OS and wakes for thread-safe calls and timers.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <vector>
#ifndef DUET_TEST_NO_THREADS
#include <thread>
#endif
#if defined(__linux__)
#include <pthread.h>
#include <signal.h>
#endif

#include "duet/loop.hpp"
#include "duet/platform/platform.hpp"

using namespace std::chrono_literals;

namespace {
std::unique_ptr<duet::Loop> real_loop() {
  return std::make_unique<duet::Loop>(duet::platform::make_default_backend(),
                                      std::make_unique<duet::platform::SteadyClock>(), duet::LoopOptions{.debug = false});
}
}  // namespace

TEST_CASE("the steady clock is monotonic", "[platform][clock]") {
  duet::platform::SteadyClock clock;
  auto a = clock.now();
  auto b = clock.now();
  CHECK(b >= a);
}

TEST_CASE("timers on the real clock never run before their deadline, and the loop does not spin waiting",
          "[platform][timer]") {
  auto loop = real_loop();
  std::vector<std::pair<duet::TimePoint, duet::TimePoint>> seen;  // (deadline, ran at)
  const auto t0 = loop->time();
  for (duet::Duration delay : {duet::Duration(1500us), duet::Duration(2ms), duet::Duration(2100us), duet::Duration(3ms), duet::Duration(5ms)}) {
    const auto when = t0 + delay;
    loop->call_at(when, [&seen, &loop, when] { seen.emplace_back(when, loop->time()); });
  }
  loop->call_at(t0 + 6ms, [&] { loop->stop(); });
  loop->run_forever();
  REQUIRE(seen.size() == 5);
  for (auto& [when, ran] : seen) CHECK(ran >= when);
#ifndef __EMSCRIPTEN__
  // A loop woken early by a rounded-down timeout would iterate thousands of
  // times in 6 ms; a blocking one needs about one iteration per timer.
  CHECK(loop->statistics().iterations < 100);
#endif
}

#ifndef DUET_TEST_NO_THREADS
TEST_CASE("run_forever blocks with nothing to do and wakes for a thread-safe call", "[platform][wakeup]") {
  auto loop = real_loop();
  std::atomic<bool> started{false};
  loop->call_soon([&] { started = true; });
  std::thread other([&] {
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // let the loop block in its poll
    loop->call_soon_threadsafe([&] { loop->stop(); });
  });
  loop->run_forever();
  other.join();
  // At most one wake, for the one post — none if a busy machine kept the
  // loop from reaching its poll within the 20 ms (run_forever returning at
  // all shows the post was seen either way).
  CHECK(loop->statistics().wakeups <= 1);
  // Blocked, not spinning: a handful of iterations.
  CHECK(loop->statistics().iterations < 10);
}

TEST_CASE("a wake() before the wait makes the next wait return at once", "[platform][wakeup]") {
  auto backend = duet::platform::make_default_backend();
  backend->wake();
  std::vector<duet::IoEvent> events;
  backend->wait(std::chrono::hours(1), events);  // returns at once, or the test times out
  CHECK(events.empty());                          // the wakeup itself is not an event
}
#endif

#if defined(__linux__)
namespace {
void on_sigusr1(int) {}
}  // namespace

TEST_CASE("epoll: a signal during the wait does not end it early (EINTR is retried with the time left)",
          "[platform][epoll]") {
  struct sigaction sa {};
  sa.sa_handler = on_sigusr1;  // no SA_RESTART: epoll_wait returns EINTR
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
  auto backend = duet::platform::make_default_backend();
  duet::platform::SteadyClock clock;
  pthread_t waiter = pthread_self();
  std::thread killer([waiter] {
    std::this_thread::sleep_for(20ms);
    pthread_kill(waiter, SIGUSR1);
  });
  std::vector<duet::IoEvent> events;
  const auto start = clock.now();
  backend->wait(100ms, events);
  const auto waited = clock.now() - start;
  killer.join();
  sigaction(SIGUSR1, &old, nullptr);
  CHECK(waited >= 100ms);
}
#endif

#ifdef __EMSCRIPTEN__
TEST_CASE("wasm: a wait with nothing scheduled is an error, not a hang", "[platform][wasm]") {
  auto loop = real_loop();
  CHECK_THROWS_AS(loop->run_once(), duet::RuntimeError);
}
#endif
