// Timeout scopes and wait_for. Ported from CPython's
// Lib/test/test_asyncio/test_timeouts.py and test_waitfor.py (3.11/3.12;
// the source test is named in each case), plus regression tests for the
// cancellation bugs CPython fixed (issue numbers in the names).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::Timeout;
using duet::test::TestLoop;

namespace {
Coro<int> slow_value(duet::Duration d, int v) {
  co_await duet::sleep(d);
  co_return v;
}
}  // namespace

TEST_CASE("timeout raises TimeoutError at the deadline (test_timeout_basic)", "[timeout]") {
  TestLoop loop;
  const auto t0 = loop->time();
  auto body = [&]() -> Coro<void> {
    {
      bool raised = co_await duet::test::raises<duet::TimeoutError>(duet::timeout(10ms, slow_value(10s, 1)));
      CHECK(raised);
    }
  };
  loop->run_until_complete(body());
  CHECK(loop->time() - t0 == 10ms);
}

TEST_CASE("timeout_at with a past deadline expires on the next iteration (test_timeout_at_basic)", "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    const auto deadline = loop->time() + 10ms;
    bool expired = false;
    try {
      co_await duet::timeout_at(deadline, [&](Timeout& t) -> Coro<void> {
        CHECK(t.when() == deadline);
        co_await duet::sleep(10s);
        expired = t.expired();
      });
    } catch (const duet::TimeoutError&) {
      expired = true;
    }
    CHECK(expired);
  };
  loop->run_until_complete(body());
}

TEST_CASE("a body that finishes in time returns its value; the scope is not expired (test_timeout_not_called)",
          "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    int v = co_await duet::timeout(1s, slow_value(10ms, 5));
    co_return v;
  };
  CHECK(loop->run_until_complete(body()) == 5);
  CHECK(loop->statistics().timers == loop->statistics().cancelled_timers);  // its timer is gone
}

TEST_CASE("no deadline means no timeout (test_timeout_disabled, test_timeout_at_disabled)", "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    int a = co_await duet::timeout(std::nullopt, slow_value(1h, 1));
    int b = co_await duet::timeout_at(std::nullopt, slow_value(1h, 2));
    co_return a + b;
  };
  CHECK(loop->run_until_complete(body()) == 3);
}

TEST_CASE("timeout(0) around sleep(0) times out (test_timeout_zero_sleep_zero, test_timeout_in_the_past_sleep_zero)",
          "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    {
      bool raised = co_await duet::test::raises<duet::TimeoutError>(duet::timeout(0s, duet::sleep(0s)));
      CHECK(raised);
    }
    {
      bool raised = co_await duet::test::raises<duet::TimeoutError>(duet::timeout(-11s, duet::sleep(0s)));
      CHECK(raised);
    }
  };
  loop->run_until_complete(body());
}

TEST_CASE("nested timeouts: the inner, earlier one fires and is caught inside (test_nested_timeouts)", "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    bool outer_expired = true, inner_expired = false;
    co_await duet::timeout(1s, [&](Timeout& outer) -> Coro<void> {
      try {
        co_await duet::timeout(10ms, [&](Timeout& inner) -> Coro<void> {
          try {
            co_await duet::sleep(10s);
          } catch (...) {
            inner_expired = inner.expired();
            throw;
          }
        });
      } catch (const duet::TimeoutError&) {
      }
      outer_expired = outer.expired();
    });
    CHECK(inner_expired);
    CHECK_FALSE(outer_expired);
  };
  loop->run_until_complete(body());
}

TEST_CASE("foreign exceptions pass through untouched, even on timeout (test_foreign_exception_passed, "
          "test_foreign_exception_on_timeout)",
          "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    {
      bool raised = co_await duet::test::raises<std::out_of_range>(duet::timeout(10ms, [](Timeout&) -> Coro<void> {
                      co_await duet::yield_now();
                      throw std::out_of_range("mine");
                    }));
      CHECK(raised);
    }
    {
      bool raised = co_await duet::test::raises<std::out_of_range>(duet::timeout(10ms, [](Timeout&) -> Coro<void> {
                      try {
                        co_await duet::sleep(1s);
                      } catch (const duet::CancelledError&) {
                      }
                      throw std::out_of_range("raised while being cancelled");
                    }));
      CHECK(raised);
    }
  };
  loop->run_until_complete(body());
}

TEST_CASE("a cancellation from outside is not turned into TimeoutError (test_foreign_cancel_doesnt_timeout_if_not_expired)",
          "[timeout][cancel]") {
  TestLoop loop;
  auto inner = [&]() -> Coro<void> { co_await duet::timeout(1h, duet::sleep(2h)); };
  auto t = loop->create_task(inner());
  loop->call_later(10ms, [t]() mutable { t.cancel(); });
  loop.run_until_idle();
  CHECK(t.cancelled());
}

TEST_CASE("an outer cancel arriving in the same iteration as the scope's own timeout stays a cancellation",
          "[timeout][cancel][regression]") {
  TestLoop loop;
  auto inner = [&]() -> Coro<void> { co_await duet::timeout(10ms, duet::sleep(1h)); };
  auto t = loop->create_task(inner());
  // Fires in the same iteration as the scope's own timer.
  loop->call_later(10ms, [t]() mutable { t.cancel("from outside"); });
  loop.run_until_idle();
  CHECK(t.cancelled());  // CancelledError, not TimeoutError
  try {
    t.result();
  } catch (const duet::CancelledError& e) {
    CHECK(e.message() == "from outside");
  }
}

TEST_CASE("the outer task is not left cancelled after a timeout (test_outer_task_is_not_cancelled)",
          "[timeout][cancel]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    try {
      co_await duet::timeout(1ms, duet::sleep(1h));
    } catch (const duet::TimeoutError&) {
    }
    CHECK(duet::current_task().cancelling() == 0);
    co_await duet::sleep(1s);  // still runs: not cancelled
    co_return 1;
  };
  CHECK(loop->run_until_complete(body()) == 1);
}

TEST_CASE("a cancellation swallowed by the body stays visible through cancelling()",
          "[timeout][cancel][regression]") {
  TestLoop loop;
  auto body = [&]() -> Coro<std::uint32_t> {
    std::uint32_t seen = 0;
    co_await duet::timeout(1h, [&](Timeout&) -> Coro<void> {
      try {
        co_await duet::sleep(2h);
      } catch (const duet::CancelledError&) {
        seen = duet::current_task().cancelling();  // swallowed here
      }
    });
    co_return seen;
  };
  auto t = loop->create_task(body());
  loop->call_later(1ms, [t]() mutable { t.cancel(); });
  loop.run_until_idle();
  CHECK(t.done());
  CHECK_FALSE(t.cancelled());
  CHECK(t.result() == 1);          // the outside request was seen
  CHECK(t.cancelling() == 1);      // and not silently withdrawn by the scope
}

TEST_CASE("reschedule moves the deadline; expired() tells whether it fired (test_reschedule)", "[timeout]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    const auto t0 = loop->time();
    try {
      co_await duet::timeout_at(std::nullopt, [&](Timeout& t) -> Coro<void> {
        CHECK_FALSE(t.when().has_value());
        t.reschedule(t0 + 50ms);
        co_await duet::sleep(20ms);
        t.reschedule(t0 + 100ms);  // pushed back
        CHECK_FALSE(t.expired());
        co_await duet::sleep(1h);
      });
      FAIL("no timeout");
    } catch (const duet::TimeoutError&) {
    }
    CHECK(loop->time() - t0 == 100ms);
  };
  loop->run_until_complete(body());
}

TEST_CASE("a Timeout used wrongly raises (test_timeout_not_entered, test_timeout_double_enter, test_timeout_without_task)",
          "[timeout][errors]") {
  TestLoop loop;
  Timeout lone(std::nullopt);
  CHECK_THROWS_WITH(lone.reschedule(loop->time()), "Timeout has not been entered");
  CHECK_THROWS_WITH(lone.enter(), "Timeout should be used inside a task");
  auto body = [&]() -> Coro<void> {
    co_await duet::timeout(1s, [&](Timeout& t) -> Coro<void> {
      CHECK_THROWS_WITH(t.enter(), "Timeout has already been entered");
      co_return;
    });
    co_await duet::timeout(1ms, [&](Timeout& t) -> Coro<void> {
      try {
        co_await duet::sleep(1s);
      } catch (const duet::CancelledError&) {
        CHECK_THROWS_AS(t.reschedule(std::nullopt), duet::RuntimeError);  // expiring
        throw;
      }
    });
  };
  CHECK_THROWS_AS(loop->run_until_complete(body()), duet::TimeoutError);
}

TEST_CASE("wait_for returns the result in time (test_wait_for)", "[wait_for]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    int v = co_await duet::wait_for(slow_value(10ms, 4), 1s);
    co_return v;
  };
  CHECK(loop->run_until_complete(body()) == 4);
}

TEST_CASE("wait_for cancels the inner task on timeout and waits for it (test_wait_for_waits_for_task_cancellation)",
          "[wait_for][cancel]") {
  TestLoop loop;
  bool inner_saw_cancel = false;
  bool inner_cleanup_done = false;
  auto inner_body = [&]() -> Coro<int> {
    try {
      co_await duet::sleep(1h);
    } catch (const duet::CancelledError&) {
      inner_saw_cancel = true;
    }
    // Cleanup that takes time (C++ allows no co_await inside a handler).
    co_await duet::sleep(5ms);
    inner_cleanup_done = true;
    throw duet::CancelledError();
  };
  auto body = [&]() -> Coro<void> {
    auto inner = duet::create_task(inner_body());
    {
      bool raised = co_await duet::test::raises<duet::TimeoutError>(duet::wait_for(duet::Future<int>(inner), 10ms));
      CHECK(raised);
    }
    CHECK(inner.cancelled());
  };
  loop->run_until_complete(body());
  CHECK(inner_saw_cancel);
  CHECK(inner_cleanup_done);
}

TEST_CASE("wait_for with timeout <= 0: a done future returns at once, else it is cancelled "
          "(test_wait_for_timeout_less_then_0_or_0*)",
          "[wait_for]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    duet::Future<int> ready(*loop);
    ready.set_result(9);
    int ready_value = co_await duet::wait_for(ready, 0s);
    CHECK(ready_value == 9);
    bool started = false;
    auto never = [&]() -> Coro<int> {
      started = true;
      co_return 1;
    };
    {
      bool raised = co_await duet::test::raises<duet::TimeoutError>(duet::wait_for(never(), -1s));
      CHECK(raised);
    }
    CHECK_FALSE(started);  // cancelled before its first step
  };
  loop->run_until_complete(body());
}

TEST_CASE("cancelling the task in wait_for cancels the inner task and raises CancelledError (test_cancel_wait_for)",
          "[wait_for][cancel]") {
  TestLoop loop;
  auto inner = loop->create_task(slow_value(1h, 1));
  auto outer_body = [&]() -> Coro<int> {
    int v = co_await duet::wait_for(duet::Future<int>(inner), 10h);
    co_return v;
  };
  auto outer = loop->create_task(outer_body());
  loop->call_later(1s, [outer]() mutable { outer.cancel(); });
  loop.run_until_idle();
  CHECK(outer.cancelled());
  CHECK(inner.cancelled());
}

TEST_CASE("wait_for re-raises the inner exception instead of TimeoutError (test_wait_for_reraises_exception_during_cancellation)",
          "[wait_for]") {
  TestLoop loop;
  auto inner_body = [&]() -> Coro<int> {
    try {
      co_await duet::sleep(1h);
    } catch (const duet::CancelledError&) {
      throw std::length_error("during cancellation");
    }
    co_return 0;
  };
  auto body = [&]() -> Coro<void> {
    {
      bool raised = co_await duet::test::raises<std::length_error>(duet::wait_for(inner_body(), 10ms));
      CHECK(raised);
    }
  };
  loop->run_until_complete(body());
}

TEST_CASE("wait_for does not swallow a cancellation that lands as the inner future completes (python/cpython#86296)",
          "[wait_for][cancel][regression]") {
  TestLoop loop;
  duet::Future<int> inner(*loop);
  bool returned = false;
  auto body = [&]() -> Coro<void> {
    int v = co_await duet::wait_for(inner, 1h);
    (void)v;
    returned = true;  // 3.10/3.11 got here: the cancellation was lost
  };
  auto t = loop->create_task(body());
  loop->run_once();
  // Same iteration: the inner future completes, then the caller is cancelled.
  loop->call_soon([inner, t]() mutable {
    inner.set_result(1);
    t.cancel();
  });
  loop.run_until_idle();
  CHECK_FALSE(returned);
  CHECK(t.cancelled());
}

TEST_CASE("wait_for on a coroutine starts it when awaited, not when called (3.12's async def)", "[wait_for]") {
  TestLoop loop;
  bool started = false;
  auto work = [&]() -> Coro<int> {
    started = true;
    co_return 1;
  };
  auto body = [&]() -> Coro<int> {
    Coro<int> pending = duet::wait_for(work(), 1s);
    co_await duet::sleep(10ms);
    CHECK_FALSE(started);
    int v = co_await std::move(pending);
    co_return v;
  };
  CHECK(loop->run_until_complete(body()) == 1);
  CHECK(started);
}

TEST_CASE("a timeout racing a failed inner task reports no 'exception was never retrieved'", "[wait_for][report]") {
  TestLoop loop;
  auto failing = [&]() -> Coro<int> {
    co_await duet::sleep(10ms);
    throw std::runtime_error("inner failure");
  };
  auto body = [&]() -> Coro<void> {
    bool timed_out_or_failed = false;
    try {
      co_await duet::wait_for(failing(), 10ms);
    } catch (const duet::TimeoutError&) {
      timed_out_or_failed = true;
    } catch (const std::runtime_error&) {
      timed_out_or_failed = true;
    }
    CHECK(timed_out_or_failed);
  };
  loop->run_until_complete(body());
  loop.run_until_idle();
  for (const auto& line : loop.logged) CHECK(line.find("never retrieved") == std::string::npos);
}
