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
