// Coro-to-Coro hand-offs use no stack, in every build: a million
// synchronous completions in a loop, a 200,000-deep chain of nested awaits
// (completing, failing, cancelled), and teardown of a chain still pending
// when its loop closes. CMake builds this file twice: with the preset's
// flags and at -O0 (coro_test_O0), where g++ 12 does not turn symmetric
// transfer into a tail call (duet/coroutine.hpp); under the asan-ubsan and
// tsan presets that gives the sanitizer builds too.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::test::TestLoop;

namespace {

constexpr int kIterations = 1'000'000;
constexpr int kDepth = 200'000;

Coro<int> one() { co_return 1; }

Coro<long> sum_of_ones(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await one();
  co_return sum;
}

Coro<int> nested(int depth) {
  if (depth == 0) co_return 0;
  Coro<int> inner = nested(depth - 1);
  int below = co_await std::move(inner);
  co_return below + 1;
}

struct Deep {
  int depth;
};

Coro<int> nested_throw(int depth) {
  if (depth == 0) throw Deep{0};
  Coro<int> inner = nested_throw(depth - 1);
  co_return co_await std::move(inner);
}

// Suspends the whole chain on `gate` at the innermost level.
Coro<int> nested_wait(int depth, duet::Future<int>& gate) {
  if (depth == 0) co_return co_await gate;
  Coro<int> inner = nested_wait(depth - 1, gate);
  int below = co_await std::move(inner);
  co_return below + 1;
}

// Records, at chosen depths, when its frame is destroyed.
struct Witness {
  Witness(std::vector<int>& log, int depth) : log(log), depth(depth) {}
  Witness(const Witness&) = delete;
  Witness& operator=(const Witness&) = delete;
  ~Witness() { log.push_back(depth); }
  std::vector<int>& log;
  int depth;
};

Coro<int> witnessed_wait(int depth, duet::Future<int>& gate, std::vector<int>& log) {
  std::optional<Witness> witness;
  if (depth % 50'000 == 0) witness.emplace(log, depth);
  if (depth == 0) co_return co_await gate;
  Coro<int> inner = witnessed_wait(depth - 1, gate, log);
  co_return co_await std::move(inner);
}

}  // namespace

TEST_CASE("a million synchronous co_awaits in a loop run in one step on a flat stack", "[coro][stack]") {
  TestLoop loop;
  auto task = loop->create_task(sum_of_ones(kIterations));
  loop->run_once();  // one step: nothing in the loop suspends
  REQUIRE(task.done());
  CHECK(task.result() == kIterations);
}

TEST_CASE("a 200,000-deep chain of nested co_awaits completes on a flat stack", "[coro][stack]") {
  TestLoop loop;
  auto task = loop->create_task(nested(kDepth));
  loop->run_once();
  REQUIRE(task.done());
  CHECK(task.result() == kDepth);
}

TEST_CASE("an exception travels up a 200,000-deep chain on a flat stack", "[coro][stack]") {
  TestLoop loop;
  auto task = loop->create_task(nested_throw(kDepth));
  loop->run_once();
  REQUIRE(task.done());
  int depth = -1;
  try {
    task.result();
  } catch (const Deep& e) {
    depth = e.depth;
  }
  CHECK(depth == 0);
}

TEST_CASE("a 200,000-deep chain suspended on a future resumes when it completes", "[coro][stack]") {
  TestLoop loop;
  duet::Future<int> gate(*loop);
  auto task = loop->create_task(nested_wait(kDepth, gate));
  loop->run_once();
  REQUIRE_FALSE(task.done());
  gate.set_result(7);
  loop.run_until_idle();
  REQUIRE(task.done());
  CHECK(task.result() == kDepth + 7);
}

TEST_CASE("cancelling a task suspended 200,000 awaits deep unwinds the whole chain", "[coro][stack][cancel]") {
  TestLoop loop;
  duet::Future<int> gate(*loop);
  auto task = loop->create_task(nested_wait(kDepth, gate));
  loop->run_once();
  task.cancel();
  loop.run_until_idle();
  CHECK(task.cancelled());
}

TEST_CASE("closing a loop with a task suspended 200,000 awaits deep destroys the chain innermost first",
          "[coro][stack][lifetime]") {
  std::vector<int> destroyed;
  {
    TestLoop loop;
    duet::Future<int> gate(*loop);
    auto task = loop->create_task(witnessed_wait(kDepth, gate, destroyed));
    loop->run_once();
    REQUIRE(destroyed.empty());
    loop->close();  // abandons the task: "Task was destroyed but it is pending!"
    CHECK(task.done());
  }
  // Innermost first, as the frames' own destructors would order it.
  CHECK(destroyed == std::vector<int>{0, 50'000, 100'000, 150'000, 200'000});
}

TEST_CASE("co_await std::move(coro) frees the frame as soon as it completes: a cancelled 200,000-deep chain "
          "frees its frames innermost first as it unwinds",
          "[coro][lifetime][cancel]") {
  std::vector<int> destroyed;
  TestLoop loop;
  duet::Future<int> gate(*loop);
  auto task = loop->create_task(witnessed_wait(kDepth, gate, destroyed));
  loop->run_once();
  REQUIRE(destroyed.empty());
  task.cancel();
  loop.run_until_idle();
  CHECK(task.cancelled());
  CHECK(destroyed == std::vector<int>{0, 50'000, 100'000, 150'000, 200'000});
}

namespace {

// A coroutine type that is not duet's, resumed by hand: awaiting a Coro
// from it must work although no duet trampoline runs below it.
struct Foreign {
  struct promise_type {
    int value = 0;
    Foreign get_return_object() { return Foreign{duet::coro::coroutine_handle<promise_type>::from_promise(*this)}; }
    duet::coro::suspend_always initial_suspend() noexcept { return {}; }
    duet::coro::suspend_always final_suspend() noexcept { return {}; }
    void return_value(int v) { value = v; }
    void unhandled_exception() { throw; }
  };
  duet::coro::coroutine_handle<promise_type> h;
  ~Foreign() { h.destroy(); }
};

Foreign foreign_caller() {
  Coro<long> inner = sum_of_ones(1000);
  long sum = co_await std::move(inner);
  co_return static_cast<int>(sum);
}

}  // namespace

TEST_CASE("a Coro awaited by a foreign coroutine resumed by hand completes (no trampoline below it)", "[coro]") {
  Foreign f = foreign_caller();
  f.h.resume();
  REQUIRE(f.h.done());
  CHECK(f.h.promise().value == 1000);
}
