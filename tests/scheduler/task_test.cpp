// Coroutines and tasks: scheduling, results, exceptions, cancellation,
// ownership, reporting. Ported from CPython's
// Lib/test/test_asyncio/test_tasks.py (BaseTaskTests; the source test is
// named in each case) and pinned against Python 3.11 where noted.
#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::Task;
using duet::test::TestLoop;

namespace {

struct CustomError {
  int code;
};

Coro<int> answer() { co_return 42; }

Coro<int> add_later(int a, int b) {
  co_await duet::sleep(10ms);
  co_return a + b;
}

Coro<void> fail_with(int code) {
  co_await duet::yield_now();
  throw CustomError{code};
}

// Counts live objects, to prove frames are destroyed (cppcoro's counted.hpp).
struct Counted {
  static inline int alive = 0;
  Counted() { ++alive; }
  Counted(const Counted&) { ++alive; }
  ~Counted() { --alive; }
};

}  // namespace

TEST_CASE("a task's first step runs in a later iteration, not inside create_task (test_task_basics)", "[task]") {
  TestLoop loop;
  bool started = false;
  auto body = [&]() -> Coro<void> {
    started = true;
    co_return;
  };
  auto task = loop->create_task(body());
  CHECK_FALSE(started);
  CHECK_FALSE(task.done());
  loop->run_once();
  CHECK(started);
  CHECK(task.done());
}

TEST_CASE("run_until_complete returns a task's result (test_run_until_complete)", "[task]") {
  TestLoop loop;
  CHECK(loop->run_until_complete(answer()) == 42);
  auto t = loop->create_task(add_later(2, 3));
  CHECK(loop->run_until_complete(duet::Future<int>(t)) == 5);
  CHECK(t.result() == 5);
}

TEST_CASE("exceptions of any type travel through co_await unchanged (test_exception_marking...)", "[task]") {
  TestLoop loop;
  auto outer = [&]() -> Coro<int> {
    try {
      co_await fail_with(7);
    } catch (const CustomError& e) {
      co_return e.code * 10;
    }
    co_return -1;
  };
  CHECK(loop->run_until_complete(outer()) == 70);
  auto t = loop->create_task(fail_with(3));
  try {
    loop->run_until_complete(duet::Future<void>(t));
    FAIL("no exception");
  } catch (const CustomError& e) {
    CHECK(e.code == 3);
  }
}

TEST_CASE("co_await of a Coro runs it inline, without a trip through the loop (await coro())", "[task][coro]") {
  TestLoop loop;
  std::uint64_t iterations_inside = 0;
  auto outer = [&]() -> Coro<int> {
    auto before = loop->statistics().iterations;
    int v = co_await answer();
    int w = co_await answer();
    iterations_inside = loop->statistics().iterations - before;
    co_return v + w;
  };
  CHECK(loop->run_until_complete(outer()) == 84);
  CHECK(iterations_inside == 0);
}

TEST_CASE("a Coro that is never started runs nothing and frees its frame", "[task][coro]") {
  bool ran = false;
  {
    auto body = [&]() -> Coro<void> {
      Counted c;
      ran = true;
      co_return;
    };
    auto coro = body();
    CHECK(Counted::alive == 0);
  }
  CHECK_FALSE(ran);
}

TEST_CASE("tasks get names Task-N by default and keep the one given (test_task_set_name*)", "[task]") {
  TestLoop loop;
  auto a = loop->create_task(answer());
  auto b = loop->create_task(answer(), "fetcher");
  CHECK(a.name().rfind("Task-", 0) == 0);
  CHECK(b.name() == "fetcher");
  a.set_name("renamed");
  CHECK(a.name() == "renamed");
  loop.run_until_idle();
}

TEST_CASE("sleep(0) yields for exactly one iteration: two tasks interleave (test_sleep_zero)", "[task][sleep]") {
  TestLoop loop;
  std::vector<std::string> trace;
  auto worker = [&](std::string name) -> Coro<void> {
    for (int i = 0; i < 3; ++i) {
      trace.push_back(name + std::to_string(i));
      co_await duet::sleep(0s);
    }
  };
  loop->create_task(worker("a"));
  loop->create_task(worker("b"));
  loop.run_until_idle();
  CHECK(trace == std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"});
}

TEST_CASE("sleep(d) resumes once loop time has advanced by d (test_sleep)", "[task][sleep]") {
  TestLoop loop;
  duet::TimePoint woke{};
  const auto t0 = loop->time();
  auto body = [&]() -> Coro<void> {
    co_await duet::sleep(250ms);
    woke = loop->time();
  };
  loop->run_until_complete(body());
  CHECK(woke - t0 == 250ms);
}

TEST_CASE("cancel before the first step: the body never runs (test_cancel_task_before_start / 3.11)", "[task][cancel]") {
  TestLoop loop;
  bool ran = false;
  auto body = [&]() -> Coro<void> {
    ran = true;
    co_return;
  };
  auto t = loop->create_task(body());
  CHECK(t.cancel("early"));
  CHECK(t.cancelling() == 1);
  CHECK_FALSE(t.cancelled());  // only once the task has run its step
  loop.run_until_idle();
  CHECK_FALSE(ran);
  CHECK(t.cancelled());
  try {
    t.result();
    FAIL("no CancelledError");
  } catch (const duet::CancelledError& e) {
    CHECK(e.message() == "early");
  }
}

TEST_CASE("cancel while awaiting a future cancels the future and raises CancelledError at the await "
          "(test_cancel_inner_future, test_cancel_with_message_then_future_result)",
          "[task][cancel]") {
  TestLoop loop;
  duet::Future<int> inner(*loop);
  std::string seen;
  auto body = [&]() -> Coro<int> {
    try {
      int v = co_await inner;
      co_return v;
    } catch (const duet::CancelledError& e) {
      seen = e.message();
      throw;
    }
  };
  auto t = loop->create_task(body());
  loop->run_once();  // the task now waits on inner
  CHECK(t.cancel("stop it"));
  CHECK(inner.cancelled());
  loop.run_until_idle();
  CHECK(seen == "stop it");
  CHECK(t.cancelled());
  CHECK_THROWS_AS(t.result(), duet::CancelledError);
}

TEST_CASE("a task may catch CancelledError and go on; cancelling()/uncancel() count requests "
          "(test_cancel_yield, test_uncancel_basic)",
          "[task][cancel]") {
  TestLoop loop;
  auto body = [&]() -> Coro<int> {
    try {
      co_await duet::sleep(1h);
    } catch (const duet::CancelledError&) {
      duet::Task<int>* self = nullptr;
      (void)self;
    }
    co_await duet::sleep(1s);  // still alive
    co_return 7;
  };
  auto t = loop->create_task(body());
  loop->run_once();
  CHECK(t.cancel());
  loop.run_until_idle();
  CHECK(t.done());
  CHECK_FALSE(t.cancelled());
  CHECK(t.result() == 7);
  CHECK(t.cancelling() == 1);
  CHECK(t.uncancel() == 0);
  CHECK_FALSE(t.cancel());  // done: nothing to cancel (test_cancel_done_future)
}

TEST_CASE("cancelling a task that awaits another task cancels the inner one too (test_cancel_both_task_and_inner_future)",
          "[task][cancel]") {
  TestLoop loop;
  auto inner = loop->create_task(add_later(1, 1));
  auto outer_body = [&]() -> Coro<int> {
    int v = co_await inner;
    co_return v;
  };
  auto outer = loop->create_task(outer_body());
  loop->run_once();
  loop->run_once();
  CHECK(outer.cancel());
  loop.run_until_idle();
  CHECK(inner.cancelled());
  CHECK(outer.cancelled());
}

TEST_CASE("a task that cancels itself gets CancelledError at its next await (test_cancel_current_task)",
          "[task][cancel]") {
  TestLoop loop;
  std::unique_ptr<Task<void>> self;
  bool after = false;
  auto body = [&]() -> Coro<void> {
    CHECK(self->cancel());
    CHECK_FALSE(self->cancelled());
    co_await duet::sleep(0s);
    after = true;
  };
  self = std::make_unique<Task<void>>(loop->create_task(body()));
  loop.run_until_idle();
  CHECK_FALSE(after);
  CHECK(self->cancelled());
}

TEST_CASE("cancelled right before returning, the task ends cancelled (test_cancel_at_end)", "[task][cancel]") {
  TestLoop loop;
  std::unique_ptr<Task<int>> self;
  auto body = [&]() -> Coro<int> {
    self->cancel();
    co_return 12;
  };
  self = std::make_unique<Task<int>>(loop->create_task(body()));
  loop.run_until_idle();
  CHECK(self->cancelled());
}

TEST_CASE("cancelling a sleeping task cancels its timer", "[task][cancel][sleep]") {
  TestLoop loop;
  auto body = []() -> Coro<void> { co_await duet::sleep(1h); };
  auto t = loop->create_task(body());
  loop->run_once();
  CHECK(loop->statistics().timers == 1);
  t.cancel();
  loop.run_until_idle();
  CHECK(t.cancelled());
  CHECK(loop->statistics().timers == loop->statistics().cancelled_timers);
}

TEST_CASE("the loop owns a running task: dropping every handle neither destroys nor cancels it", "[task][lifetime]") {
  TestLoop loop;
  int finished = 0;
  auto body = [&]() -> Coro<void> {
    co_await duet::sleep(5ms);
    ++finished;
  };
  for (int i = 0; i < 10; ++i) loop->create_task(body());
  CHECK(loop->pending_task_count() == 10);
  loop.run_until_idle();
  CHECK(finished == 10);
  CHECK(loop->pending_task_count() == 0);
}

TEST_CASE("a task exception nobody retrieved is reported when the task goes away "
          "(test_exception_unretrieved / 'Task exception was never retrieved')",
          "[task][report]") {
  TestLoop loop;
  loop->create_task(fail_with(5));
  loop.run_until_idle();
  REQUIRE(loop.logged.size() == 1);
  CHECK(loop.logged[0].find("Task exception was never retrieved") == 0);
  // Retrieved exceptions are not reported.
  auto t = loop->create_task(fail_with(6));
  loop.run_until_idle();
  CHECK(t.exception() != nullptr);
  CHECK(loop.logged.size() == 1);
}

TEST_CASE("a task still pending when the loop closes is reported and its frame destroyed "
          "(test_task_destroyed_pending)",
          "[task][report][lifetime]") {
  Counted::alive = 0;
  std::vector<std::string> logged;
  {
    TestLoop loop;
    auto body = []() -> Coro<void> {
      Counted local;
      co_await duet::sleep(1h);
    };
    auto t = loop->create_task(body());
    loop->run_once();
    CHECK(Counted::alive == 1);
    loop->close();
    CHECK(Counted::alive == 0);  // no frame outlives its loop
    CHECK(t.done());
    logged = loop.logged;
  }
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].find("Task was destroyed but it is pending!") == 0);
}

TEST_CASE("awaiting a future of another loop raises RuntimeError (test_task_awaits_on_itself / other loop)",
          "[task][errors]") {
  TestLoop loop, other;
  duet::Future<int> foreign(*other);
  std::string error;
  auto body = [&]() -> Coro<void> {
    try {
      co_await foreign;
    } catch (const duet::RuntimeError& e) {
      error = e.what();
    }
  };
  loop->run_until_complete(body());
  CHECK(error.find("different loop") != std::string::npos);
}

TEST_CASE("a task cannot await itself (test_task_awaits_on_itself)", "[task][errors]") {
  TestLoop loop;
  std::unique_ptr<Task<void>> self;
  std::string error;
  auto body = [&]() -> Coro<void> {
    co_await duet::yield_now();
    try {
      co_await *self;
    } catch (const duet::RuntimeError& e) {
      error = e.what();
    }
  };
  self = std::make_unique<Task<void>>(loop->create_task(body()));
  loop.run_until_idle();
  CHECK(error.find("cannot await on itself") != std::string::npos);
}

TEST_CASE("set_result/set_exception on a task are refused (test_set_result_causes_invalid_state)", "[task][errors]") {
  TestLoop loop;
  auto t = loop->create_task(answer());
  duet::Future<int> as_future = t;
  CHECK_THROWS_AS(as_future.set_result(1), duet::RuntimeError);
  CHECK_THROWS_AS(as_future.set_exception(std::runtime_error("x")), duet::RuntimeError);
  loop.run_until_idle();
  CHECK(t.result() == 42);
}

TEST_CASE("move-only results travel through tasks", "[task]") {
  TestLoop loop;
  auto make = []() -> Coro<std::unique_ptr<int>> {
    co_await duet::yield_now();
    co_return std::make_unique<int>(11);
  };
  auto consumer = [&]() -> Coro<int> {
    auto p = co_await make();
    co_return *p;
  };
  CHECK(loop->run_until_complete(consumer()) == 11);
}

TEST_CASE("task done callbacks get the task and run after it finished (test_task_add_done_callback)", "[task]") {
  TestLoop loop;
  auto t = loop->create_task(add_later(20, 22));
  int seen = 0;
  t.add_done_callback([&](const Task<int>& done) { seen = done.result(); });
  loop.run_until_idle();
  CHECK(seen == 42);
}

TEST_CASE("awaiting a task from another task returns its result; awaiting a done one does not suspend",
          "[task]") {
  TestLoop loop;
  auto producer = loop->create_task(add_later(1, 2));
  auto consumer = [&]() -> Coro<int> {
    int a = co_await producer;
    auto before = loop->statistics().iterations;
    int b = co_await producer;  // already done: no suspension
    CHECK(loop->statistics().iterations == before);
    co_return a + b;
  };
  CHECK(loop->run_until_complete(consumer()) == 6);
}

TEST_CASE("create_task on a closed loop raises and runs nothing", "[task][errors]") {
  TestLoop loop;
  loop->close();
  CHECK_THROWS_AS(loop->create_task(answer()), duet::RuntimeError);
}
