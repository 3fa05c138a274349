// The loop's iteration: ordering, nesting, stop, close, running-state errors.
// Behaviours ported from CPython's Lib/test/test_asyncio/test_base_events.py
// and test_events.py; the source test is named in each case.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

TEST_CASE("call_soon callbacks run in the order they were scheduled (test_events.test_call_soon)", "[loop]") {
  TestLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop->call_soon([&order, i] { order.push_back(i); });
  loop->run_once();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("call_soon passes its arguments to the callback (asyncio call_soon(cb, *args))", "[loop]") {
  TestLoop loop;
  std::string got;
  loop->call_soon([&got](const std::string& a, int b) { got = a + std::to_string(b); }, std::string("x"), 7);
  loop->run_once();
  CHECK(got == "x7");
}

TEST_CASE("a callback scheduled by a callback runs in the next iteration (test__run_once_schedule_handle)",
          "[loop]") {
  TestLoop loop;
  std::vector<std::string> order;
  loop->call_soon([&] {
    order.push_back("first");
    loop->call_soon([&] { order.push_back("nested"); });
  });
  loop->call_soon([&] { order.push_back("second"); });
  loop->run_once();
  CHECK(order == std::vector<std::string>{"first", "second"});
  CHECK(loop->statistics().ready == 1);
  loop->run_once();
  CHECK(order == std::vector<std::string>{"first", "second", "nested"});
}

TEST_CASE("a self-rescheduling callback does not starve the others", "[loop]") {
  TestLoop loop;
  int ticks = 0, other = 0;
  std::function<void()> tick = [&] {
    if (++ticks < 100) loop->call_soon(tick);
  };
  loop->call_soon(tick);
  loop->call_soon([&] { ++other; });
  loop->run_once();
  CHECK(ticks == 1);
  CHECK(other == 1);
}

TEST_CASE("run_once runs exactly one iteration (test_run_once)", "[loop]") {
  TestLoop loop;
  int count = 0;
  loop->call_soon([&] { ++count; });
  loop->run_once();
  CHECK(count == 1);
  CHECK(loop->statistics().iterations == 1);
}

TEST_CASE("stop() lets the rest of the current iteration run and keeps later callbacks", "[loop][stop]") {
  TestLoop loop;
  std::vector<std::string> order;
  loop->call_soon([&] {
    order.push_back("a");
    loop->stop();
    loop->call_soon([&] { order.push_back("c"); });
  });
  loop->call_soon([&] { order.push_back("b"); });
  loop->run_forever();
  CHECK(order == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(loop->is_running());
  // The callback scheduled during the stopping iteration waits for the next run.
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  CHECK(order == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("stop() before run_forever runs one iteration with a zero poll (test_run_forever_pre_stopped)",
          "[loop][stop]") {
  TestLoop loop;
  loop->stop();
  loop->run_forever();
  CHECK(loop.backend->wait_count() == 1);
  REQUIRE(loop.backend->last_timeout().has_value());
  CHECK(*loop.backend->last_timeout() == 0ns);
  CHECK(loop->statistics().iterations == 1);
}

TEST_CASE("call_soon(stop); run_forever() runs each event's callback once (test_single_selecter_event_callback_"
          "after_stopping)",
          "[loop][stop]") {
  TestLoop loop;
  struct Target : duet::EventTarget {
    int events = 0;
    int callbacks = 0;
    void on_event(duet::Loop& l, const duet::IoEvent&) override {
      ++events;
      l.call_soon([this] { ++callbacks; });
    }
  } target;
  loop.backend->inject(duet::IoEvent{&target, duet::event_flags::readable, 0});
  for (int i = 1; i <= 2; ++i) {
    loop->call_soon([&] { loop->stop(); });
    loop->run_forever();
    CHECK(target.events == 1);
    CHECK(target.callbacks == 1);
  }
}

TEST_CASE("events reported by the backend become callbacks of the same iteration", "[loop]") {
  TestLoop loop;
  std::vector<std::string> order;
  struct Target : duet::EventTarget {
    std::vector<std::string>* order;
    std::uint32_t seen = 0;
    void on_event(duet::Loop& l, const duet::IoEvent& e) override {
      seen = e.flags;
      l.call_soon([this] { order->push_back("io"); });
    }
  } target;
  target.order = &order;
  loop->call_soon([&] { order.push_back("ready"); });
  loop.backend->inject(duet::IoEvent{&target, duet::event_flags::writable, 0});
  loop->run_once();
  // Like asyncio: _process_events appends after what was already ready.
  CHECK(order == std::vector<std::string>{"ready", "io"});
  CHECK(target.seen == duet::event_flags::writable);
}

TEST_CASE("close() is idempotent and blocks further use (test_close)", "[loop][close]") {
  TestLoop loop;
  CHECK_FALSE(loop->is_closed());
  loop->close();
  CHECK(loop->is_closed());
  loop->close();
  loop->close();
  CHECK_THROWS_WITH(loop->run_forever(), "Event loop is closed");
  CHECK_THROWS_AS(loop->call_soon([] {}), duet::RuntimeError);
  CHECK_THROWS_AS(loop->call_later(1s, [] {}), duet::RuntimeError);
  CHECK_THROWS_AS(loop->call_at(loop->time(), [] {}), duet::RuntimeError);
  CHECK_THROWS_AS(loop->call_soon_threadsafe([] {}), duet::RuntimeError);
  CHECK_THROWS_AS(loop->run_once(), duet::RuntimeError);
  CHECK_THROWS_AS(loop->backend(), duet::RuntimeError);
}

TEST_CASE("close() drops pending callbacks and timers without running them and frees what they hold",
          "[loop][close]") {
  TestLoop loop;
  auto held = std::make_shared<int>(0);
  bool ran = false;
  loop->call_soon([held, &ran] { ran = true; });
  loop->call_later(1s, [held, &ran] { ran = true; });
  loop->call_soon_threadsafe([held, &ran] { ran = true; });
  CHECK(held.use_count() == 4);
  loop->close();
  CHECK(held.use_count() == 1);
  CHECK_FALSE(ran);
}

TEST_CASE("close() from a callback is refused: the loop is running", "[loop][close]") {
  TestLoop loop;
  bool refused = false;
  loop->call_soon([&] {
    try {
      loop->close();
    } catch (const duet::RuntimeError& e) {
      refused = std::string(e.what()) == "Cannot close a running event loop";
    }
    loop->stop();
  });
  loop->run_forever();
  CHECK(refused);
  CHECK_FALSE(loop->is_closed());
}

TEST_CASE("run_forever() inside the running loop is refused", "[loop][running]") {
  TestLoop loop;
  std::string error;
  loop->call_soon([&] {
    try {
      loop->run_forever();
    } catch (const duet::RuntimeError& e) {
      error = e.what();
    }
    loop->stop();
  });
  loop->run_forever();
  CHECK(error == "This event loop is already running");
}

TEST_CASE("a second loop cannot run on a thread that runs one (RunningLoopTests.test_running_loop_within_a_loop)",
          "[loop][running]") {
  TestLoop outer, inner;
  std::string error;
  outer->call_soon([&] {
    try {
      inner->run_forever();
    } catch (const duet::RuntimeError& e) {
      error = e.what();
    }
    outer->stop();
  });
  outer->run_forever();
  CHECK(error.find("while another loop is running") != std::string::npos);
  CHECK_FALSE(inner->is_running());
}

TEST_CASE("process_ready() cannot nest inside a callback", "[loop][running]") {
  TestLoop loop;
  bool refused = false;
  loop->call_soon([&] {
    try {
      loop->process_ready();
    } catch (const duet::RuntimeError&) {
      refused = true;
    }
  });
  loop->run_once();
  CHECK(refused);
}

TEST_CASE("get_running_loop() is the loop inside its callbacks and an error outside", "[loop][running]") {
  TestLoop loop;
  CHECK(duet::running_loop() == nullptr);
  CHECK_THROWS_WITH(duet::get_running_loop(), "no running event loop");
  duet::Loop* seen = nullptr;
  bool running = false;
  loop->call_soon([&] {
    seen = &duet::get_running_loop();
    running = loop->is_running();
    loop->stop();
  });
  loop->run_forever();
  CHECK(seen == loop.loop.get());
  CHECK(running);
  CHECK_FALSE(loop->is_running());
  CHECK(duet::running_loop() == nullptr);
}

TEST_CASE("loop_clock::now() reads the running loop's clock", "[loop][time]") {
  TestLoop loop;
  duet::TimePoint seen{};
  loop->call_soon([&] { seen = duet::loop_clock::now(); });
  loop->run_once();
  CHECK(seen == loop->time());
  CHECK_THROWS_AS(duet::loop_clock::now(), duet::RuntimeError);
}

TEST_CASE("poll_timeout: zero when callbacks are ready or the loop is stopping (asyncio _run_once)",
          "[loop][timeout]") {
  TestLoop loop;
  CHECK_FALSE(loop->poll_timeout().has_value());  // nothing scheduled: wait until woken
  auto h = loop->call_soon([] {});
  CHECK(loop->poll_timeout() == 0ns);
  h.cancel();
  loop->run_once();
  CHECK_FALSE(loop->poll_timeout().has_value());
  loop->call_later(1h, [] {});
  loop->stop();
  CHECK(loop->poll_timeout() == 0ns);
}

TEST_CASE("poll_timeout: exactly the time to the earliest live timer (test__run_once)", "[loop][timeout]") {
  TestLoop loop;
  auto h1 = loop->call_later(5s, [] {});
  loop->call_later(10s, [] {});
  h1.cancel();
  CHECK(loop->poll_timeout() == 10s);
  // The cancelled head was dropped while computing the timeout.
  CHECK(loop->statistics().timers == 1);
  CHECK(loop->statistics().cancelled_timers == 0);
}

TEST_CASE("poll_timeout keeps sub-millisecond precision; rounding is the backend's, and only upward",
          "[loop][timeout]") {
  TestLoop loop;
  loop->call_later(1500us + 1ns, [] {});
  CHECK(loop->poll_timeout() == 1500us + 1ns);
}

TEST_CASE("poll_timeout is capped at 24 hours (asyncio MAXIMUM_SELECT_TIMEOUT)", "[loop][timeout]") {
  TestLoop loop;
  bool ran = false;
  loop->call_later(std::chrono::hours(50), [&] { ran = true; });
  CHECK(loop->poll_timeout() == std::chrono::hours(24));
  loop->run_once();
  loop->run_once();
  CHECK_FALSE(ran);
  CHECK(loop->poll_timeout() == std::chrono::hours(2));
  loop->run_once();
  CHECK(ran);
}

TEST_CASE("the loop's time is the injected clock", "[loop][time]") {
  TestLoop loop;
  auto t0 = loop->time();
  loop.clock->advance(3s);
  CHECK(loop->time() - t0 == 3s);
}

TEST_CASE("while callbacks keep the loop busy, I/O is still polled every kIoPollInterval callbacks",
          "[loop][io]") {
  TestLoop loop;
  const int iterations = 61 * 10;
  int left = iterations;
  std::function<void()> spin = [&] {
    if (--left > 0) loop->call_soon(spin);
  };
  loop->call_soon(spin);
  for (int i = 0; i < iterations; ++i) loop->run_once();
  // The first iteration polls, then one poll per 61 callbacks.
  CHECK(loop.backend->wait_count() >= iterations / 61);
  CHECK(loop.backend->wait_count() <= iterations / 61 + 2);
  // And an injected I/O event is seen within that many callbacks.
  struct Target : duet::EventTarget {
    int seen = 0;
    void on_event(duet::Loop&, const duet::IoEvent&) override { ++seen; }
  } target;
  left = 1000;
  loop->call_soon(spin);
  loop.backend->inject(duet::IoEvent{&target, duet::event_flags::readable, 0});
  for (int i = 0; i < 62; ++i) loop->run_once();
  CHECK(target.seen == 1);
}

TEST_CASE("a host pumping the loop with stop(); run_forever() still polls I/O every time", "[loop][io][stop]") {
  TestLoop loop;
  for (int i = 1; i <= 100; ++i) {
    loop->stop();
    loop->run_forever();
    CHECK(loop.backend->wait_count() == static_cast<std::uint64_t>(i));
  }
}

// ---- slices: process_ready(deadline) and end_slice() --------------------------
// asyncio's _run_once runs exactly the callbacks present when it starts. The
// budget is duet's addition for the web driver, which must hand the browser's
// thread back between slices: a slice may stop early, but what it did not
// reach keeps its place at the head of the queue.

TEST_CASE("process_ready(deadline) stops after the callback during which time reached the deadline, and the "
          "rest run first in the next call",
          "[loop][slice]") {
  TestLoop loop;
  const duet::TimePoint t0 = loop->time();
  std::vector<std::string> order;
  loop->call_at(t0 + 2ms, [&] { order.push_back("timer"); });
  for (int i = 0; i < 10; ++i) {
    loop->call_soon([&, i] {
      order.push_back(std::to_string(i));
      loop.clock->advance(1ms);
      if (i == 0) loop->call_soon([&] { order.push_back("from 0"); });
      if (i == 5) loop->call_soon([&] { order.push_back("from 5"); });
    });
  }
  // Callbacks 0..3 bring the clock to t0 + 4ms, past t0 + 3.5ms: 4 run.
  CHECK_FALSE(loop->process_ready(t0 + 3500us));
  CHECK(order == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK(loop->time() == t0 + 4ms);
  CHECK(loop->statistics().ready == 7);  // 4..9 and "from 0"
  loop->call_soon([&] { order.push_back("between"); });
  // The timer is due now; it joins behind everything already queued.
  CHECK(loop->process_ready(loop->time() + 1h));
  CHECK(order ==
        std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "from 0", "between", "timer"});
  // "from 5" was scheduled during that call: it waits for the next one.
  CHECK(loop->statistics().ready == 1);
  CHECK(loop->process_ready(loop->time() + 1h));
  CHECK(order.back() == "from 5");
  CHECK(loop->statistics().ready == 0);
}

TEST_CASE("process_ready(deadline) stops once time() equals the deadline; one ending exactly at the last callback "
          "is complete",
          "[loop][slice]") {
  TestLoop loop;
  const duet::TimePoint t0 = loop->time();
  int ran = 0;
  for (int i = 0; i < 3; ++i) {
    loop->call_soon([&] {
      ++ran;
      loop.clock->advance(1ms);
    });
  }
  CHECK_FALSE(loop->process_ready(t0 + 2ms));
  CHECK(ran == 2);
  // The one left runs, reaching its deadline as it ends: nothing was cut.
  CHECK(loop->process_ready(loop->time() + 1ms));
  CHECK(ran == 3);
}

TEST_CASE("process_ready(deadline) runs the first callback even when the deadline has passed (progress)",
          "[loop][slice]") {
  TestLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) loop->call_soon([&order, i] { order.push_back(i); });
  const duet::TimePoint past = loop->time() - 1ms;
  CHECK_FALSE(loop->process_ready(past));
  CHECK(order == std::vector<int>{0});
  CHECK_FALSE(loop->process_ready(loop->time()));
  CHECK(order == std::vector<int>{0, 1});
  // The last one present: run, and the call is complete.
  CHECK(loop->process_ready(past));
  CHECK(order == std::vector<int>{0, 1, 2});
}

TEST_CASE("end_slice() makes process_ready(deadline) stop after the current callback, keeping the rest",
          "[loop][slice]") {
  TestLoop loop;
  std::vector<std::string> order;
  loop->call_soon([&] { order.push_back("a"); });
  loop->call_soon([&] {
    order.push_back("b");
    loop->end_slice();
  });
  loop->call_soon([&] { order.push_back("c"); });
  const duet::TimePoint far = loop->time() + 1h;
  CHECK_FALSE(loop->process_ready(far));
  CHECK(order == std::vector<std::string>{"a", "b"});
  CHECK(loop->statistics().ready == 1);
  // The request ended with its slice: the next one runs normally.
  CHECK(loop->process_ready(far));
  CHECK(order == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("end_slice() from the last callback present still makes process_ready(deadline) return false, once",
          "[loop][slice]") {
  TestLoop loop;
  int ran = 0;
  loop->call_soon([&] { ++ran; });
  loop->call_soon([&] {
    ++ran;
    loop->end_slice();
  });
  const duet::TimePoint far = loop->time() + 1h;
  CHECK_FALSE(loop->process_ready(far));
  CHECK(ran == 2);
  CHECK(loop->statistics().ready == 0);
  loop->call_soon([&] { ++ran; });
  loop->call_soon([&] { ++ran; });
  CHECK(loop->process_ready(far));
  CHECK(ran == 4);
}

TEST_CASE("end_slice() has no effect on plain process_ready(), nor on the budgeted call after it", "[loop][slice]") {
  TestLoop loop;
  std::vector<std::string> order;
  loop->call_soon([&] {
    order.push_back("a");
    loop->end_slice();
  });
  loop->call_soon([&] { order.push_back("b"); });
  loop->process_ready();
  CHECK(order == std::vector<std::string>{"a", "b"});
  loop->call_soon([&] { order.push_back("c"); });
  loop->call_soon([&] { order.push_back("d"); });
  CHECK(loop->process_ready(loop->time() + 1h));
  CHECK(order == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("end_slice() with no slice in progress has no effect on the next one", "[loop][slice]") {
  TestLoop loop;
  int ran = 0;
  loop->call_soon([&] { ++ran; });
  loop->call_soon([&] { ++ran; });
  loop->end_slice();
  CHECK(loop->process_ready(loop->time() + 1h));
  CHECK(ran == 2);
}

// ---- next_timer_deadline() ------------------------------------------------------
// What the web driver arms its one host timer for: the head of the heap
// that _run_once would look at (asyncio: self._scheduled[0].when, after
// popping cancelled heads).

TEST_CASE("next_timer_deadline is the earliest live timer's deadline, or nullopt", "[loop][timer]") {
  TestLoop loop;
  const duet::TimePoint t0 = loop->time();
  CHECK_FALSE(loop->next_timer_deadline().has_value());
  auto h30 = loop->call_at(t0 + 30s, [] {});
  auto h10 = loop->call_at(t0 + 10s, [] {});
  auto h20 = loop->call_at(t0 + 20s, [] {});
  CHECK(loop->next_timer_deadline() == t0 + 10s);
  h10.cancel();
  CHECK(loop->next_timer_deadline() == t0 + 20s);
  // The cancelled head was dropped, not just skipped.
  CHECK(loop->statistics().timers == 2);
  CHECK(loop->statistics().cancelled_timers == 0);
  h30.cancel();  // not the head: the answer stays
  CHECK(loop->next_timer_deadline() == t0 + 20s);
  h20.cancel();
  CHECK_FALSE(loop->next_timer_deadline().has_value());
  CHECK(loop->statistics().timers == 0);
}

// ---- Backend::blocking_run_refusal() --------------------------------------------
// duet's addition: the browser's main thread must never block, so its
// backend says so and a blocking run fails at once, as asyncio's
// run_forever fails its _check_closed/_check_running before the first
// _run_once.

namespace {

// A backend with nothing behind it that refuses blocking runs. Its wait
// returns at once, or throws where it would block forever (as the web
// backend does), so that a run that was not refused ends instead of hanging.
class RefusingBackend final : public duet::Backend {
 public:
  static constexpr const char* kRefusal = "refused: use the driver instead";
  void wait(std::optional<duet::Duration> timeout, std::vector<duet::IoEvent>&) override {
    if (!timeout) throw std::logic_error("RefusingBackend: a wait without a timeout would never end");
  }
  void wake() noexcept override {}
  std::string_view name() const noexcept override { return "refusing"; }
  const char* blocking_run_refusal() const noexcept override { return kRefusal; }
};

}  // namespace

TEST_CASE("blocking_run_refusal: run_forever and run_until_complete throw the backend's reason before running "
          "anything",
          "[loop][running]") {
  duet::Loop loop(std::make_unique<RefusingBackend>(), std::make_unique<duet::ManualClock>(),
                  duet::LoopOptions{.debug = false});
  int ran = 0;
  loop.call_soon([&] { ++ran; });
  CHECK_THROWS_MATCHES(loop.run_forever(), duet::RuntimeError, Catch::Matchers::Message(RefusingBackend::kRefusal));
  CHECK(ran == 0);
  CHECK_THROWS_MATCHES(loop.run_until_complete(loop.create_future<void>()), duet::RuntimeError,
                       Catch::Matchers::Message(RefusingBackend::kRefusal));
  CHECK(ran == 0);
  CHECK_FALSE(loop.is_running());
  // Driving the phases by hand is what such a backend is for.
  loop.process_ready();
  CHECK(ran == 1);
}

TEST_CASE("blocking_run_refusal is null by default (FakeBackend does not override it)", "[loop][running]") {
  TestLoop loop;
  CHECK(loop->backend().blocking_run_refusal() == nullptr);
}

// ---- timer cancellation and a foreign poll ----------------------------------------
// asyncio's TimerHandle.cancel only marks the handle (_timer_handle_cancelled)
// since its loop recomputes the timeout each iteration. A driver waiting
// outside the loop (the web driver's host timer) must hear of it to re-arm.

TEST_CASE("timer cancel wakes a foreign poll that sleeps, once per sleep", "[loop][timer][foreign]") {
  TestLoop loop;
  auto h1 = loop->call_later(10s, [] {});
  auto h2 = loop->call_later(20s, [] {});
  CHECK(loop->prepare_external_wait() == 10s);  // nothing ready: the host sleeps
  loop->begin_foreign_poll();
  CHECK(loop.backend->wake_count() == 0);
  h1.cancel();
  CHECK(loop.backend->wake_count() == 1);
  CHECK(loop->statistics().wakeups == 1);
  h2.cancel();  // coalesced, as thread-safe posts are
  CHECK(loop.backend->wake_count() == 1);
  loop->end_foreign_poll();
  loop->end_external_wait();
}

TEST_CASE("timer cancel wakes a foreign poll only for the earliest timer", "[loop][timer][foreign]") {
  // A later timer's cancellation leaves the host's wait as it is.
  TestLoop loop;
  auto h1 = loop->call_later(10s, [] {});
  auto h2 = loop->call_later(20s, [] {});
  CHECK(loop->prepare_external_wait() == 10s);
  loop->begin_foreign_poll();
  h2.cancel();
  CHECK(loop.backend->wake_count() == 0);
  h1.cancel();
  CHECK(loop.backend->wake_count() == 1);
  loop->end_foreign_poll();
  loop->end_external_wait();
}

TEST_CASE("timer cancel wakes a foreign poll only while one is begun", "[loop][timer][foreign]") {
  TestLoop loop;
  auto h = loop->call_later(10s, [] {});
  CHECK(loop->prepare_external_wait() == 10s);
  h.cancel();
  CHECK(loop.backend->wake_count() == 0);
  CHECK(loop->statistics().wakeups == 0);
  loop->end_external_wait();
}

TEST_CASE("timer cancel wakes a foreign poll that has not begun to block: it does not block",
          "[loop][timer][foreign]") {
  TestLoop loop;
  auto h = loop->call_later(10s, [] {});
  loop->call_later(20s, [] {});
  loop->begin_foreign_poll();
  h.cancel();
  CHECK(loop.backend->wake_count() == 0);
  const auto timeout = loop->poll_timeout();
  CHECK(timeout == 20s);
  const duet::TimePoint before = loop->time();
  std::vector<duet::IoEvent> events;
  loop->poll(timeout, events);
  REQUIRE(loop.backend->last_timeout().has_value());
  CHECK(*loop.backend->last_timeout() == 0ns);
  CHECK(loop->time() == before);  // FakeBackend would have jumped the clock by a blocking wait
  loop->end_foreign_poll();
  loop->end_external_wait();
}
