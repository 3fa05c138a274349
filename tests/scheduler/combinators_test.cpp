// gather, shield, wait, as_completed. Ported from CPython's
// Lib/test/test_asyncio/test_tasks.py (GatherTestsBase, test_shield_*,
// test_wait_*, test_as_completed_*; named per case).
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::Future;
using duet::test::TestLoop;

using duet::test::fail_after;
using duet::test::value_after;

namespace {
Coro<void> nothing_after(duet::Duration d) { co_await duet::sleep(d); }
}  // namespace

TEST_CASE("gather returns results in argument order, whatever the finishing order (test_result)", "[gather]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    auto [a, b, c] = co_await duet::gather(value_after(30ms, 1), value_after(10ms, 2), nothing_after(20ms));
    (void)c;
    co_return a * 10 + b;
  };
  CHECK(loop->run_until_complete(body()) == 12);
}

TEST_CASE("gather over a vector of tasks; an empty gather is done at once (test_constructor_empty_sequence)",
          "[gather]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    std::vector<Future<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(duet::create_task(value_after(std::chrono::milliseconds(5 - i), i)));
    std::vector<int> values = co_await duet::gather(tasks);
    auto none = duet::gather(std::vector<Future<int>>{});
    CHECK(none.done());
    int sum = 0;
    for (int i = 0; i < 5; ++i) sum += values[i] * (i + 1);
    co_return sum;
  };
  CHECK(loop->run_until_complete(body()) == 0 * 1 + 1 * 2 + 2 * 3 + 3 * 4 + 4 * 5);
}

TEST_CASE("the first failure completes gather; the other children keep running (test_one_exception)", "[gather]") {
  TestLoop loop;
  bool slow_finished = false;
  auto slow = [&]() -> Coro<int> {
    co_await duet::sleep(50ms);
    slow_finished = true;
    co_return 1;
  };
  auto body = [&]() -> Coro<void> {
    auto slow_task = duet::create_task(slow());
    {
      bool raised = co_await duet::test::raises<std::runtime_error>(duet::gather(fail_after(10ms, "first"), slow_task));
      CHECK(raised);
    }
    CHECK_FALSE(slow_task.done());
    co_await slow_task;
  };
  loop->run_until_complete(body());
  CHECK(slow_finished);
}

TEST_CASE("gather(return_exceptions, ...) collects exceptions as results (test_return_exceptions)", "[gather]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    auto [ok, bad, none] =
        co_await duet::gather(duet::return_exceptions, value_after(10ms, 3), fail_after(5ms, "x"), nothing_after(1ms));
    CHECK(ok.has_value());
    CHECK(ok.value() == 3);
    CHECK_FALSE(bad.has_value());
    CHECK_THROWS_AS(std::rethrow_exception(bad.exception()), std::runtime_error);
    CHECK(none.has_value());
  };
  loop->run_until_complete(body());
}

TEST_CASE("cancelling the gather cancels its children (test_cancel_gather_1 / test_gather_shield)", "[gather][cancel]") {
  TestLoop loop;
  auto a = loop->create_task(value_after(1h, 1));
  auto b = loop->create_task(value_after(2h, 2));
  std::optional<Future<std::tuple<int, int>>> g;
  auto body = [&]() -> Coro<void> {
    g = duet::gather(a, b);
    co_await *g;
  };
  auto t = loop->create_task(body());
  loop->run_once();
  loop->run_once();
  CHECK(g->cancel());
  loop.run_until_idle();
  CHECK(a.cancelled());
  CHECK(b.cancelled());
  CHECK(t.done());
  CHECK_THROWS_AS(t.result(), duet::CancelledError);
}

TEST_CASE("a cancelled child makes gather raise CancelledError, the others unaffected (test_one_cancellation)",
          "[gather][cancel]") {
  TestLoop loop;
  auto a = loop->create_task(value_after(10ms, 1));
  auto b = loop->create_task(value_after(20ms, 2));
  auto body = [&]() -> Coro<void> {
    a.cancel();
    {
      bool raised = co_await duet::test::raises<duet::CancelledError>(duet::gather(a, b));
      CHECK(raised);
    }
  };
  loop->run_until_complete(body());
  loop.run_until_idle();
  CHECK(b.result() == 2);
}

TEST_CASE("with return_exceptions, a cancelled gather still raises CancelledError (bpo-32684)", "[gather][cancel]") {
  TestLoop loop;
  auto a = loop->create_task(value_after(1h, 1));
  std::optional<Future<std::tuple<duet::Outcome<int>>>> g;
  auto body = [&]() -> Coro<void> {
    g = duet::gather(duet::return_exceptions, a);
    co_await *g;
  };
  auto t = loop->create_task(body());
  loop->run_once();
  loop->run_once();
  g->cancel();
  loop.run_until_idle();
  CHECK(t.done());
  CHECK_THROWS_AS(t.result(), duet::CancelledError);
}

TEST_CASE("shield: cancelling the awaiter does not cancel the inner task (test_shield_effect)", "[shield]") {
  TestLoop loop;
  auto inner = loop->create_task(value_after(10ms, 7));
  auto outer_body = [&]() -> Coro<int> {
    int v = co_await duet::shield(inner);
    co_return v;
  };
  auto outer = loop->create_task(outer_body());
  loop->run_once();
  loop->run_once();
  outer.cancel();
  loop.run_until_idle();
  CHECK(outer.cancelled());
  CHECK_FALSE(inner.cancelled());
  CHECK(inner.result() == 7);
}

TEST_CASE("shield: results, exceptions and inner cancellation pass through (test_shield_result, "
          "test_shield_exception, test_shield_cancel_inner)",
          "[shield]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    int shielded_value = co_await duet::shield(value_after(1ms, 4));
    CHECK(shielded_value == 4);
    {
      bool raised = co_await duet::test::raises<std::runtime_error>(duet::shield(fail_after(1ms, "e")));
      CHECK(raised);
    }
    auto inner = duet::create_task(value_after(1h, 0));
    auto shielded = duet::shield(inner);
    inner.cancel();
    {
      bool raised = co_await duet::test::raises<duet::CancelledError>(shielded);
      CHECK(raised);
    }
  };
  loop->run_until_complete(body());
}

TEST_CASE("wait(FIRST_COMPLETED) returns after the first, ALL_COMPLETED after all (test_wait_first_completed, test_wait)",
          "[wait]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    std::vector<Future<int>> fs{duet::create_task(value_after(10ms, 1)), duet::create_task(value_after(1s, 2))};
    auto first = co_await duet::wait(fs, duet::FIRST_COMPLETED);
    CHECK(first.done.size() == 1);
    CHECK(first.pending.size() == 1);
    CHECK(first.done[0].result() == 1);
    auto all = co_await duet::wait(fs, duet::ALL_COMPLETED);
    CHECK(all.done.size() == 2);
    CHECK(all.pending.empty());
  };
  loop->run_until_complete(body());
}

TEST_CASE("wait(FIRST_EXCEPTION) returns at the first failure (test_wait_first_exception)", "[wait]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    std::vector<Future<int>> fs{duet::create_task(value_after(1h, 1)), duet::create_task(fail_after(10ms, "x")),
                                duet::create_task(value_after(5ms, 3))};
    auto r = co_await duet::wait(fs, duet::FIRST_EXCEPTION);
    CHECK(r.done.size() == 2);
    CHECK(r.pending.size() == 1);
    r.pending[0].cancel();
    for (auto& f : r.done) (void)f.exception();
  };
  loop->run_until_complete(body());
}

TEST_CASE("wait with a timeout returns what is done and cancels nothing (test_wait_with_timeout)", "[wait]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    std::vector<Future<int>> fs{duet::create_task(value_after(10ms, 1)), duet::create_task(value_after(1h, 2))};
    auto r = co_await duet::wait(fs, duet::ALL_COMPLETED, 100ms);
    CHECK(r.done.size() == 1);
    REQUIRE(r.pending.size() == 1);
    CHECK_FALSE(r.pending[0].cancelled());
    r.pending[0].cancel();
  };
  loop->run_until_complete(body());
  CHECK_THROWS_AS(loop->run_until_complete(duet::wait(std::vector<Future<int>>{})), std::invalid_argument);
}

TEST_CASE("as_completed yields results in completion order (test_as_completed)", "[as_completed]") {
  TestLoop loop;
  auto body = [&]() -> Coro<std::vector<int>> {
    std::vector<Future<int>> fs{duet::create_task(value_after(30ms, 3)), duet::create_task(value_after(10ms, 1)),
                                duet::create_task(value_after(20ms, 2))};
    std::vector<int> order;
    for (auto& next : duet::as_completed(fs)) order.push_back(co_await std::move(next));
    co_return order;
  };
  CHECK(loop->run_until_complete(body()) == std::vector<int>{1, 2, 3});
}

TEST_CASE("as_completed raises TimeoutError for the results not in by the deadline (test_as_completed_with_timeout)",
          "[as_completed]") {
  TestLoop loop;
  auto body = [&]() -> Coro<void> {
    auto slow = duet::create_task(value_after(1h, 2));
    std::vector<Future<int>> fs{duet::create_task(value_after(10ms, 1)), slow};
    auto nexts = duet::as_completed(fs, std::optional<duet::Duration>(50ms));
    int first = co_await std::move(nexts[0]);
    CHECK(first == 1);
    bool timed_out = false;
    try {
      co_await std::move(nexts[1]);
    } catch (const duet::TimeoutError&) {
      timed_out = true;
    }
    CHECK(timed_out);
    slow.cancel();
  };
  loop->run_until_complete(body());
}
