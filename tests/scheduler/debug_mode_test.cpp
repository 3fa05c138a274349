// Debug mode: slow-callback warnings and cross-thread checks.
// Ported from CPython's test_base_events.py: test_set_debug,
// test_log_slow_callbacks, test_env_var_debug, test_check_thread.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#ifndef DUET_TEST_NO_THREADS
#include <thread>
#endif

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

namespace {
void set_env(const char* name, const char* value) {
#ifdef _WIN32
  _putenv_s(name, value ? value : "");
#else
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
#endif
}
}  // namespace

TEST_CASE("set_debug / get_debug (test_set_debug)", "[debug]") {
  TestLoop loop;
  loop->set_debug(true);
  CHECK(loop->get_debug());
  loop->set_debug(false);
  CHECK_FALSE(loop->get_debug());
}

TEST_CASE("DUET_DEBUG=1 turns debug mode on unless the options say otherwise (test_env_var_debug)", "[debug]") {
  set_env("DUET_DEBUG", "1");
  {
    duet::Loop env_loop(std::make_unique<duet::testing::FakeBackend>(), std::make_unique<duet::ManualClock>());
    CHECK(env_loop.get_debug());
    duet::Loop explicit_loop(std::make_unique<duet::testing::FakeBackend>(), std::make_unique<duet::ManualClock>(),
                             {.debug = false});
    CHECK_FALSE(explicit_loop.get_debug());
  }
  set_env("DUET_DEBUG", "0");
  {
    duet::Loop env_loop(std::make_unique<duet::testing::FakeBackend>(), std::make_unique<duet::ManualClock>());
    CHECK_FALSE(env_loop.get_debug());
  }
  set_env("DUET_DEBUG", nullptr);
}

TEST_CASE("in debug mode a callback slower than slow_callback_duration is logged (test_log_slow_callbacks)",
          "[debug]") {
  TestLoop loop({.debug = true});
  CHECK(loop->slow_callback_duration() == 100ms);
  struct StopLoopCb {
    TestLoop* loop;
    void operator()() const {
      loop->clock->advance(150ms);  // the callback "takes" 150 ms of loop time
      loop->loop->stop();
    }
  };
  loop->call_soon(StopLoopCb{&loop});
  loop->call_soon([] {});  // fast: not logged
  loop->run_forever();
  REQUIRE(loop.logged.size() == 1);
  CHECK(loop.logged[0].rfind("Executing <Handle", 0) == 0);
  CHECK(loop.logged[0].find("StopLoopCb") != std::string::npos);
  CHECK(loop.logged[0].find("took 0.150 seconds") != std::string::npos);

  loop->set_slow_callback_duration(200ms);
  loop->call_soon(StopLoopCb{&loop});
  loop->run_forever();
  CHECK(loop.logged.size() == 1);
}

TEST_CASE("slow callbacks are not timed outside debug mode", "[debug]") {
  TestLoop loop;
  loop->call_soon([&] { loop.clock->advance(10s); });
  loop->run_once();
  CHECK(loop.logged.empty());
}

#ifndef DUET_TEST_NO_THREADS
// asyncio only checks in debug mode; outside it the same calls are a data
// race in C++ (no GIL), so only the checking mode is exercised here.
TEST_CASE("in debug mode, loop-thread methods called from another thread raise (test_check_thread)",
          "[debug][threads]") {
  TestLoop loop({.debug = true});
  std::string errors;
  int accepted = 0;
  std::thread other;
  loop->call_soon([&] {
    other = std::thread([&] {
      auto attempt = [&](auto&& schedule) {
        try {
          schedule();
          ++accepted;
        } catch (const duet::RuntimeError& e) {
          errors += e.what();
          errors += '\n';
        }
      };
      attempt([&] { loop->call_soon([] {}); });
      attempt([&] { loop->call_later(60s, [] {}); });
      attempt([&] { loop->call_at(loop->time() + 60s, [] {}); });
      loop->call_soon_threadsafe([&] { loop->stop(); });  // always allowed
    });
  });
  loop->run_forever();
  other.join();
  CHECK(accepted == 0);
  CHECK(errors.find("Non-thread-safe operation invoked on an event loop other than the current one") !=
        std::string::npos);
}
#endif
