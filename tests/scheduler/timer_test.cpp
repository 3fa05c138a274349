// Timers: order, ties, deadlines, cancellation and compaction.
// Behaviours ported from CPython's test_base_events.py (named per case).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "duet/detail/handle_node.hpp"
#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

TEST_CASE("timers run in deadline order", "[timer]") {
  TestLoop loop;
  std::vector<int> order;
  loop->call_later(30ms, [&] { order.push_back(3); });
  loop->call_later(10ms, [&] { order.push_back(1); });
  loop->call_later(20ms, [&] { order.push_back(2); });
  loop.run_until_idle();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("timers with equal deadlines run in the order they were scheduled", "[timer]") {
  TestLoop loop;
  std::vector<int> order;
  const auto when = loop->time() + 5ms;
  for (int i = 0; i < 200; ++i) loop->call_at(when, [&order, i] { order.push_back(i); });
  loop.run_until_idle();
  REQUIRE(order.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(order[i] == i);
}

TEST_CASE("negative delays are due at once, in deadline order (test_call_later_negative_delays)", "[timer]") {
  TestLoop loop;
  std::vector<std::string> calls;
  loop->call_later(-1s, [&] { calls.push_back("a"); });
  loop->call_later(-2s, [&] { calls.push_back("b"); });
  loop->run_once();
  CHECK(calls == std::vector<std::string>{"b", "a"});
}

TEST_CASE("call_at runs once the loop's time reaches the deadline (test_time_and_call_at)", "[timer]") {
  TestLoop loop;
  const auto when = loop->time() + 100ms;
  duet::TimePoint ran_at{};
  loop->call_at(when, [&] {
    ran_at = loop->time();
    loop->stop();
  });
  loop->run_forever();
  CHECK(ran_at >= when);
  // The fake backend jumped the clock by exactly the timeout the loop asked
  // for: the loop slept until the deadline, not a tick less or more.
  CHECK(ran_at == when);
}

TEST_CASE("a timer runs only when now >= its deadline, never a nanosecond early", "[timer]") {
  TestLoop loop;
  const auto when = loop->time() + 100ns;
  bool ran = false;
  loop->call_at(when, [&] { ran = true; });
  loop.clock->advance(99ns);
  loop->process_ready();
  CHECK_FALSE(ran);
  loop.clock->advance(1ns);
  loop->process_ready();
  CHECK(ran);
}

TEST_CASE("timers that fall due are queued after the callbacks already ready", "[timer]") {
  TestLoop loop;
  std::vector<std::string> order;
  loop->call_later(0s, [&] { order.push_back("timer"); });
  loop->call_soon([&] { order.push_back("soon"); });
  loop->run_once();
  CHECK(order == std::vector<std::string>{"soon", "timer"});
}

TEST_CASE("call_later rounds a fractional delay up to whole nanoseconds", "[timer]") {
  TestLoop loop;
  auto t0 = loop->time();
  auto h = loop->call_later(std::chrono::duration<double>(1e-9 / 3), [] {});
  CHECK(h.when() - t0 == 1ns);
}

TEST_CASE("a cancelled timer never runs and releases its callback at once", "[timer][cancel]") {
  TestLoop loop;
  auto held = std::make_shared<int>(0);
  bool ran = false;
  auto h = loop->call_later(10ms, [held, &ran] { ran = true; });
  CHECK(held.use_count() == 2);
  h.cancel();
  CHECK(h.cancelled());
  CHECK(held.use_count() == 1);
  loop.run_until_idle();
  CHECK_FALSE(ran);
}

TEST_CASE("a timer cancelled after it fell due but before it ran does not run", "[timer][cancel]") {
  TestLoop loop;
  std::vector<int> order;
  duet::TimerHandle second;
  loop->call_later(1ms, [&] {
    order.push_back(1);
    second.cancel();
  });
  second = loop->call_later(1ms, [&] { order.push_back(2); });
  loop.run_until_idle();
  CHECK(order == std::vector<int>{1});
}

TEST_CASE("cancelled timers are kept below the threshold and compacted above it "
          "(test__run_once_cancelled_event_cleanup)",
          "[timer][cancel]") {
  TestLoop loop;
  auto cb = [] {};
  std::size_t not_cancelled = 1;
  loop->call_later(3000s, cb);
  std::size_t cancelled = 2;
  for (int i = 0; i < 2; ++i) loop->call_later(3600s, cb).cancel();
  // These two reach the head and are dropped by the next iteration.
  cancelled += 2;
  for (int i = 0; i < 2; ++i) loop->call_later(100s, cb).cancel();
  CHECK(loop->statistics().cancelled_timers == cancelled);

  loop->poll_timeout();
  cancelled -= 2;
  CHECK(loop->statistics().cancelled_timers == cancelled);
  CHECK(loop->statistics().timers == cancelled + not_cancelled);

  // asyncio: _MIN_SCHEDULED_TIMER_HANDLES = 100, fraction 0.5.
  const std::size_t add_cancel = 51, add_live = 49;
  not_cancelled += add_live;
  for (std::size_t i = 0; i < add_live; ++i) loop->call_later(3600s, cb);
  cancelled += add_cancel;
  for (std::size_t i = 0; i < add_cancel; ++i) loop->call_later(3600s, cb).cancel();
  CHECK(loop->statistics().timers == cancelled + not_cancelled);

  loop->poll_timeout();
  CHECK(loop->statistics().timers == not_cancelled);
  CHECK(loop->statistics().cancelled_timers == 0);
}

TEST_CASE("a million schedule+cancel cycles keep the timer queue and the node pool bounded", "[timer][memory]") {
  TestLoop loop;
  // A few live timers far away, so the cancelled ones never reach the head
  // on their own and only compaction can reclaim them.
  for (int i = 0; i < 10; ++i) loop->call_later(1h, [] {});
  std::size_t peak_timers = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    loop->call_later(2h + std::chrono::milliseconds(i % 1000), [] {}).cancel();
    if (i % 1000 == 999) {
      loop->poll_timeout();
      peak_timers = std::max(peak_timers, loop->statistics().timers);
    }
  }
  loop->poll_timeout();
  CHECK(loop->statistics().timers <= 2 * 10 + 101);
  // Between compactions the heap holds at most the live timers, the
  // threshold, and one batch.
  CHECK(peak_timers <= 10 + 1000 + 101);
  CHECK(duet::detail::pooled_node_count() <= (std::size_t{1} << 16));
}

TEST_CASE("random schedules and cancellations: exactly the live timers run, in (deadline, FIFO) order",
          "[timer][random]") {
  TestLoop loop;
  std::mt19937 rng(12345);
  struct Expect {
    std::int64_t when;
    int id;
  };
  std::vector<Expect> live;
  std::vector<int> ran;
  std::vector<duet::TimerHandle> handles;
  const auto t0 = loop->time();
  for (int id = 0; id < 5000; ++id) {
    auto delay = std::chrono::microseconds(rng() % 2000);
    auto h = loop->call_at(t0 + delay, [&ran, id] { ran.push_back(id); });
    handles.push_back(h);
    live.push_back({delay.count(), id});
  }
  std::vector<bool> cancelled(5000, false);
  for (int i = 0; i < 2500; ++i) {
    int id = static_cast<int>(rng() % 5000);
    handles[id].cancel();
    cancelled[id] = true;
  }
  std::vector<Expect> expected;
  for (auto& e : live)
    if (!cancelled[e.id]) expected.push_back(e);
  std::stable_sort(expected.begin(), expected.end(), [](auto& a, auto& b) { return a.when < b.when; });
  loop.run_until_idle();
  REQUIRE(ran.size() == expected.size());
  for (std::size_t i = 0; i < ran.size(); ++i) CHECK(ran[i] == expected[i].id);
}

TEST_CASE("TimerHandle::when() is the absolute deadline", "[timer]") {
  TestLoop loop;
  const auto when = loop->time() + 42ms;
  auto h = loop->call_at(when, [] {});
  CHECK(h.when() == when);
  CHECK(loop->call_later(42ms, [] {}).when() == when);
}

TEST_CASE("close() frees a timer's captures even while its TimerHandle is kept (no cycle leak)",
          "[timer][close]") {
  auto held = std::make_shared<int>(0);
  duet::TimerHandle kept;
  {
    TestLoop loop;
    kept = loop->call_later(1h, [held] {});
    CHECK(held.use_count() == 2);
  }
  CHECK(held.use_count() == 1);
  CHECK_FALSE(kept.cancelled());
}

TEST_CASE("huge and infinite delays saturate instead of overflowing (asyncio accepts math.inf)", "[timer]") {
  TestLoop loop;
  bool ran = false;
  auto inf = loop->call_later(std::chrono::duration<double>(std::numeric_limits<double>::infinity()), [&] { ran = true; });
  CHECK(inf.when() == duet::TimePoint::max());
  auto far = loop->call_later(std::chrono::hours(std::numeric_limits<int>::max()), [&] { ran = true; });
  CHECK(far.when() == duet::TimePoint::max());
  auto years = loop->call_later(std::chrono::years(1000), [&] { ran = true; });
  CHECK(years.when() == duet::TimePoint::max());
  CHECK(loop->poll_timeout() == std::chrono::hours(24));
  loop->run_once();
  CHECK_FALSE(ran);
  auto nan = loop->call_later(std::chrono::duration<double>(std::nan("")), [&] { ran = true; });
  loop->run_once();
  CHECK(ran);  // NaN counts as no delay
}

// asyncio runs call_at(-math.inf, ...) at once (its timeout is max(0, when - now)).
TEST_CASE("a timer at TimePoint::min() runs at once: the poll timeout is zero, not 24 h", "[timer]") {
  TestLoop loop;  // its clock reads 1000 s: TimePoint::min() - now overflows
  const auto start = loop->time();
  bool ran = false;
  loop->call_at(duet::TimePoint::min(), [&] { ran = true; });
  CHECK(loop->poll_timeout() == duet::Duration::zero());
  loop->run_once();
  CHECK(ran);
  CHECK(loop.backend->last_timeout() == duet::Duration::zero());
  CHECK(loop->time() == start);  // the fake backend did not jump the clock a day ahead
}

TEST_CASE("call_later(-inf) and call_later(nanoseconds::min()) stay due after the clock moves", "[timer]") {
  TestLoop loop;
  std::vector<std::string> calls;
  loop->call_later(std::chrono::duration<double>(-std::numeric_limits<double>::infinity()),
                   [&] { calls.push_back("-inf"); });
  loop->call_later(std::chrono::nanoseconds::min(), [&] { calls.push_back("min"); });
  loop.clock->advance(1s);  // now - the deadlines no longer fits in 64 bits
  CHECK(loop->poll_timeout() == duet::Duration::zero());
  loop->run_once();
  CHECK(calls == std::vector<std::string>{"-inf", "min"});
}

TEST_CASE("a timer at TimePoint::max() on a clock below zero waits 24 h, not 'due'", "[timer]") {
  auto clock = std::make_unique<duet::ManualClock>(duet::TimePoint{-1s});
  auto backend = std::make_unique<duet::testing::FakeBackend>(clock.get());
  duet::Loop loop(std::move(backend), std::move(clock), duet::LoopOptions{.debug = false});
  bool ran = false;
  loop.call_at(duet::TimePoint::max(), [&] { ran = true; });
  CHECK(loop.poll_timeout() == duet::Loop::kMaxPollTimeout);
  loop.run_once();
  CHECK_FALSE(ran);
}

TEST_CASE("ManualClock::advance stops at TimePoint::max() instead of wrapping round", "[timer][clock]") {
  duet::ManualClock clock(duet::TimePoint{1s});
  clock.advance(duet::Duration::max());
  CHECK(clock.now() == duet::TimePoint::max());
  clock.advance(1ns);
  CHECK(clock.now() == duet::TimePoint::max());
}
