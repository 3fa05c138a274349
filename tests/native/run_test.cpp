// duet::run, as asyncio.run (Lib/test/test_asyncio/test_runners.py; named
// per case), on the real backend and clock.
#include <catch2/catch.hpp>
#include <duet/duet.hpp>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using duet::Coro;

namespace {
struct Counted {
  static inline int alive = 0;
  Counted() { ++alive; }
  ~Counted() { --alive; }
};
}  // namespace

TEST_CASE("run returns main's result (test_asyncio_run_return)", "[run]") {
  auto main_coro = []() -> Coro<int> {
    co_await duet::sleep(1ms);
    co_return 42;
  };
  CHECK(duet::run(main_coro()) == 42);
}

TEST_CASE("run rethrows main's exception (test_asyncio_run_raises)", "[run]") {
  auto main_coro = []() -> Coro<void> {
    co_await duet::sleep(0s);
    throw std::domain_error("spam");
  };
  CHECK_THROWS_AS(duet::run(main_coro()), std::domain_error);
}

TEST_CASE(
    "run cancels the tasks left over, lets them finish, and no frame outlives it "
    "(test_asyncio_run_cancel_hanging_tasks)",
    "[run]") {
  Counted::alive = 0;
  bool cleanup_ran = false;
  auto leftover = [&]() -> Coro<void> {
    Counted c;
    try {
      co_await duet::sleep(1h);
    } catch (const duet::CancelledError&) {
      cleanup_ran = true;
      throw;
    }
  };
  auto main_coro = [&]() -> Coro<int> {
    duet::create_task(leftover());
    duet::create_task(leftover());
    co_await duet::sleep(1ms);
    CHECK(Counted::alive == 2);
    co_return 1;
  };
  CHECK(duet::run(main_coro()) == 1);
  CHECK(cleanup_ran);
  CHECK(Counted::alive == 0);
}

TEST_CASE(
    "a leftover task that fails during shutdown is reported, not thrown "
    "(test_asyncio_run_cancel_hanging_tasks_2)",
    "[run]") {
  std::string reported;
  auto stubborn = []() -> Coro<void> {
    try {
      co_await duet::sleep(1h);
    } catch (const duet::CancelledError&) {
    }
    throw std::runtime_error("failed while shutting down");
  };
  auto main_coro = [&]() -> Coro<void> {
    duet::get_running_loop().set_exception_handler(
        [&](duet::Loop&, const duet::ExceptionContext& ctx) { reported = ctx.message; });
    duet::create_task(stubborn());
    co_await duet::sleep(1ms);
  };
  duet::run(main_coro());
  CHECK(reported == "unhandled exception during duet::run() shutdown");
}

TEST_CASE("run cannot be called from a running loop (test_asyncio_run_from_running_loop)", "[run]") {
  auto inner = []() -> Coro<int> { co_return 1; };
  auto main_coro = [&]() -> Coro<bool> {
    try {
      duet::run(inner());
    } catch (const duet::RuntimeError& e) {
      co_return std::string(e.what()).find("cannot be called from a running event loop") != std::string::npos;
    }
    co_return false;
  };
  CHECK(duet::run(main_coro()));
}

TEST_CASE("a thousand sleepers on the real clock: none wakes before its deadline, all finish", "[run]") {
  auto main_coro = []() -> Coro<int> {
    int early = 0, finished = 0;
    std::vector<duet::Future<void>> tasks;
    for (int i = 0; i < 1000; ++i) {
      auto sleeper = [](int k, int& early_count, int& done) -> Coro<void> {
        auto& loop = duet::get_running_loop();
        const auto delay = std::chrono::microseconds((1000 - k) * 5);
        const auto start = loop.time();
        co_await duet::sleep(delay);
        if (loop.time() - start < delay) ++early_count;
        ++done;
      };
      tasks.push_back(duet::create_task(sleeper(i, early, finished)));
    }
    co_await duet::gather(tasks);
    co_return early == 0 ? finished : -early;
  };
  CHECK(duet::run(main_coro()) == 1000);
}
