// Unix signals as loop callbacks (asyncio's add_signal_handler,
// test_unix_events.SelectorEventLoopSignalTests) and run()'s SIGINT
// handling (test_runners.test_signal_install_not_supported_ok and
// KeyboardInterrupt on Ctrl+C, as asyncio.Runner).
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <duet/duet.hpp>
#include <string>

using namespace std::chrono_literals;
using duet::Coro;
using namespace duet::native;

TEST_CASE("a signal handler runs as a loop callback, once per signal received", "[signals]") {
  auto main_coro = []() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    int calls = 0;
    bool in_loop = false;
    add_signal_handler(loop, SIGUSR1, [&] {
      ++calls;
      // A loop callback, not signal context: the running loop is there and
      // scheduling works.
      in_loop = duet::running_loop() == &loop;
      loop.call_soon([] {});
    });
    ::raise(SIGUSR1);
    co_await duet::sleep(5ms);
    CHECK(calls == 1);
    CHECK(in_loop);
    ::raise(SIGUSR1);
    co_await duet::sleep(5ms);
    CHECK(calls == 2);
    CHECK(remove_signal_handler(loop, SIGUSR1));
    CHECK_FALSE(remove_signal_handler(loop, SIGUSR1));
  };
  duet::run(main_coro());
}

TEST_CASE("removing the handler restores the previous disposition", "[signals]") {
  static std::atomic<int> previous_calls{0};
  struct sigaction mine {};
  mine.sa_handler = [](int) { ++previous_calls; };
  sigemptyset(&mine.sa_mask);
  struct sigaction saved {};
  ::sigaction(SIGUSR2, &mine, &saved);
  auto main_coro = []() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    int calls = 0;
    add_signal_handler(loop, SIGUSR2, [&] { ++calls; });
    ::raise(SIGUSR2);
    co_await duet::sleep(5ms);
    CHECK(calls == 1);
    CHECK(previous_calls == 0);
    remove_signal_handler(loop, SIGUSR2);
    ::raise(SIGUSR2);
    CHECK(previous_calls == 1);
  };
  duet::run(main_coro());
  ::sigaction(SIGUSR2, &saved, nullptr);
}

TEST_CASE("bad signal numbers are refused clearly", "[signals]") {
  auto main_coro = []() -> Coro<void> {
    duet::Loop& loop = duet::get_running_loop();
    CHECK_THROWS_AS(add_signal_handler(loop, 0, [] {}), duet::ValueError);
    CHECK_THROWS_AS(add_signal_handler(loop, 100000, [] {}), duet::ValueError);
    CHECK_THROWS_WITH(add_signal_handler(loop, SIGKILL, [] {}), Catch::Contains("cannot be caught"));
    CHECK_THROWS_AS(add_signal_handler(loop, SIGSTOP, [] {}), duet::RuntimeError);
    co_return;
  };
  duet::run(main_coro());
}

TEST_CASE("a signal handled by one loop is refused to another", "[signals]") {
  auto main_coro = []() -> Coro<void> {
    add_signal_handler(duet::get_running_loop(), SIGUSR1, [] {});
    auto other = new_event_loop();
    CHECK_THROWS_WITH(add_signal_handler(*other, SIGUSR1, [] {}), Catch::Contains("another event loop"));
    other->close();
    co_return;
  };
  duet::run(main_coro());
}

TEST_CASE("SIGINT during run() cancels main, whose cleanup runs, and run() raises KeyboardInterrupt",
          "[signals][run]") {
  static bool cleaned_up = false;
  cleaned_up = false;
  // Catch2 handles SIGINT itself; run() only takes over the default one.
  struct sigaction default_action {
  }, catch_action{};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(SIGINT, &default_action, &catch_action);
  auto main_coro = []() -> Coro<void> {
    duet::get_running_loop().call_later(5ms, [] { ::raise(SIGINT); });
    try {
      co_await duet::sleep(10s);
    } catch (const duet::CancelledError&) {
      cleaned_up = true;
      throw;
    }
  };
  bool interrupted = false;
  try {
    duet::run(main_coro());
  } catch (const duet::KeyboardInterrupt&) {
    interrupted = true;
  }
  CHECK(interrupted);
  CHECK(cleaned_up);
  // The default disposition is back.
  struct sigaction now {};
  ::sigaction(SIGINT, nullptr, &now);
  CHECK(now.sa_handler == SIG_DFL);
  ::sigaction(SIGINT, &catch_action, nullptr);
}

TEST_CASE("run() leaves SIGINT alone when the program installed its own handler", "[signals][run]") {
  static std::atomic<int> own_calls{0};
  struct sigaction mine {};
  mine.sa_handler = [](int) { ++own_calls; };
  sigemptyset(&mine.sa_mask);
  struct sigaction saved {};
  ::sigaction(SIGINT, &mine, &saved);
  auto main_coro = []() -> Coro<int> {
    ::raise(SIGINT);
    co_await duet::sleep(2ms);
    co_return 1;
  };
  CHECK(duet::run(main_coro()) == 1);
  CHECK(own_calls == 1);
  ::sigaction(SIGINT, &saved, nullptr);
}
