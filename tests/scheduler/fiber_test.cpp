// Fiber tasks (duet/fiber.hpp): the task behaviours of task_test.cpp and
// friends, with fiber bodies — results, exceptions, cancellation at any
// call depth, timeouts, TaskGroups mixing coroutine and fiber children,
// context isolation — plus stack recycling and, natively, the guard page.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <duet/duet.hpp>
#include <duet/fiber.hpp>

#include "support/test_loop.hpp"

#if defined(__linux__)
#include <sys/wait.h>
#include <unistd.h>
#endif


// AddressSanitizer, as g++ (__SANITIZE_ADDRESS__) or clang (__has_feature) says it.
#if defined(__SANITIZE_ADDRESS__)
#define DUET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DUET_TEST_ASAN 1
#endif
#endif
#ifndef DUET_TEST_ASAN
#define DUET_TEST_ASAN 0
#endif

using namespace std::chrono_literals;
using duet::Coro;
using duet::test::TestLoop;

namespace {

struct Counted {
  static inline int alive = 0;
  Counted() { ++alive; }
  Counted(const Counted&) { ++alive; }
  ~Counted() { --alive; }
};

Coro<int> add_later(int a, int b) {
  co_await duet::sleep(10ms);
  co_return a + b;
}

// Waits at the bottom of `depth` ordinary (non-coroutine) frames.
int wait_deep(int depth, duet::Duration d) {
  Counted on_this_frame;
  if (depth == 0) {
    duet::await(duet::sleep(d));
    return 0;
  }
  return 1 + wait_deep(depth - 1, d);
}

}  // namespace

TEST_CASE("a fiber task returns its function's result; await takes futures, tasks and coroutines", "[fiber]") {
  TestLoop loop;
  auto main = [&]() -> Coro<int> {
    auto fut = duet::get_running_loop().create_future<int>();
    duet::get_running_loop().call_later(5ms, [fut]() mutable { fut.set_result(100); });
    auto t = duet::spawn_fiber([&] {
      int a = duet::await(add_later(1, 2));                         // a Coro
      int b = duet::await(fut);                                     // a Future
      int c = duet::await(duet::create_task(add_later(10, 20)));    // a Task
      duet::await(duet::sleep(1ms));                                // a void Coro
      return a + b + c;
    });
    int r = co_await t;
    co_return r;
  };
  CHECK(loop->run_until_complete(main()) == 3 + 100 + 30);
}

TEST_CASE("an exception escaping the fiber function completes the task with it", "[fiber]") {
  TestLoop loop;
  auto t = loop->create_task([]() -> Coro<void> {
    auto f = duet::spawn_fiber([] {
      duet::await(duet::sleep(1ms));
      throw std::runtime_error("from the fiber");
    });
    co_await f;
  }());
  CHECK_THROWS_WITH(loop->run_until_complete(duet::Future<void>(t)), "from the fiber");
}

TEST_CASE("an awaited failure is thrown by await, at any depth, and can be caught in the fiber", "[fiber]") {
  TestLoop loop;
  auto main = []() -> Coro<std::string> {
    auto t = duet::spawn_fiber([] {
      try {
        duet::await(duet::test::fail_after(1ms, "inner"));
      } catch (const std::runtime_error& e) {
        return std::string("caught ") + e.what();
      }
      return std::string("not thrown");
    });
    std::string r = co_await t;
    co_return r;
  };
  CHECK(loop->run_until_complete(main()) == "caught inner");
}

TEST_CASE("cancellation surfaces as CancelledError from await at any depth; the stack unwinds", "[fiber][cancel]") {
  TestLoop loop;
  auto main = [&]() -> Coro<void> {
    auto t = duet::spawn_fiber(wait_deep, 50, duet::Duration(std::chrono::hours(1)));
    co_await duet::sleep(1ms);
    CHECK(Counted::alive == 51);
    t.cancel("stop");
    bool raised = co_await duet::test::raises<duet::CancelledError>(t);
    CHECK(raised);
    CHECK(t.cancelled());
    CHECK(Counted::alive == 0);
  };
  loop->run_until_complete(main());
}

TEST_CASE("a fiber may catch its cancellation and go on, as a coroutine may", "[fiber][cancel]") {
  TestLoop loop;
  auto main = [&]() -> Coro<int> {
    auto t = duet::spawn_fiber([] {
      try {
        duet::await(duet::sleep(1h));
      } catch (const duet::CancelledError&) {
        duet::current_task().uncancel();
      }
      return duet::await(add_later(2, 3));
    });
    co_await duet::sleep(1ms);
    t.cancel();
    int r = co_await t;
    co_return r;
  };
  CHECK(loop->run_until_complete(main()) == 5);
}

TEST_CASE("timeouts: wait_for around a fiber task, and inside a fiber", "[fiber][timeout]") {
  TestLoop loop;
  auto main = [&]() -> Coro<void> {
    auto slow = duet::spawn_fiber([] { duet::await(duet::sleep(1h)); });
    bool timed_out = co_await duet::test::raises<duet::TimeoutError>(duet::wait_for(slow, 10ms));
    CHECK(timed_out);
    CHECK(slow.cancelled());
    auto inner = duet::spawn_fiber([] {
      try {
        duet::await(duet::wait_for(duet::sleep(1h), 5ms));
      } catch (const duet::TimeoutError&) {
        return true;
      }
      return false;
    });
    bool inner_timed_out = co_await inner;
    CHECK(inner_timed_out);
  };
  loop->run_until_complete(main());
}

TEST_CASE("a TaskGroup with coroutine and fiber children: a failing fiber cancels the others", "[fiber][task_group]") {
  TestLoop loop;
  bool coroutine_cancelled = false;
  bool fiber_cancelled = false;
  auto main = [&]() -> Coro<void> {
    try {
      auto sleeper = [&]() -> Coro<void> {
        try {
          co_await duet::sleep(1h);
        } catch (const duet::CancelledError&) {
          coroutine_cancelled = true;
          throw;
        }
      };
      co_await duet::task_group([&](duet::TaskGroup& tg) -> Coro<void> {
        tg.create_task(sleeper());
        tg.create_task(duet::fiber(64 * 1024, [&] {
          try {
            duet::await(duet::sleep(1h));
          } catch (const duet::CancelledError&) {
            fiber_cancelled = true;
            throw;
          }
        }));
        tg.create_task(duet::fiber(64 * 1024, [] {
          duet::await(duet::sleep(5ms));
          throw std::runtime_error("fiber failed");
        }));
        co_return;
      });
    } catch (const duet::ExceptionGroup& group) {
      CHECK(group.exceptions().size() == 1);
    }
  };
  loop->run_until_complete(main());
  CHECK(coroutine_cancelled);
  CHECK(fiber_cancelled);
}

TEST_CASE("fiber tasks run in their own context copy", "[fiber][context]") {
  TestLoop loop;
  duet::ContextVar<int> v("v", 0);
  auto main = [&]() -> Coro<void> {
    v.set(1);
    auto a = duet::spawn_fiber([&] {
      int seen = v.get();
      v.set(10);
      duet::await(duet::sleep(2ms));
      return seen * 100 + v.get();
    });
    auto b = duet::spawn_fiber([&] {
      duet::await(duet::sleep(1ms));
      v.set(20);
      duet::await(duet::sleep(2ms));
      return v.get();
    });
    v.set(2);
    auto [ra, rb] = co_await duet::gather(a, b);
    CHECK(ra == 110);  // saw the creator's 1 at spawn, then its own 10
    CHECK(rb == 20);
    CHECK(v.get() == 2);
  };
  loop->run_until_complete(main());
}

TEST_CASE("await outside a fiber raises RuntimeError", "[fiber]") {
  TestLoop loop;
  CHECK_THROWS_AS(duet::await(duet::sleep(1ms)), duet::RuntimeError);
  auto coro = []() -> Coro<void> {
    duet::await(duet::sleep(1ms));  // in a coroutine task, not a fiber
    co_return;
  };
  CHECK_THROWS_AS(loop->run_until_complete(coro()), duet::RuntimeError);
}

TEST_CASE("locks and queues from fibers", "[fiber]") {
  TestLoop loop;
  duet::Queue<int> q(2);
  duet::Lock lock;
  int in_lock = 0;
  int max_in_lock = 0;
  auto main = [&]() -> Coro<int> {
    auto producer = duet::spawn_fiber([&] {
      for (int i = 1; i <= 10; ++i) duet::await(q.put(i));
    });
    auto worker = [&] {
      int sum = 0;
      for (int i = 0; i < 5; ++i) {
        int item = duet::await(q.get());
        auto held = duet::await(lock.scoped());
        max_in_lock = std::max(max_in_lock, ++in_lock);
        duet::await(duet::sleep(1ms));
        --in_lock;
        sum += item;
      }
      return sum;
    };
    auto w1 = duet::spawn_fiber(worker);
    auto w2 = duet::spawn_fiber(worker);
    auto [s1, s2] = co_await duet::gather(w1, w2);
    co_await producer;
    co_return s1 + s2;
  };
  CHECK(loop->run_until_complete(main()) == 55);
  CHECK(max_in_lock == 1);
}

TEST_CASE("a loop closed with a fiber suspended unwinds its stack", "[fiber]") {
  {
    TestLoop loop;
    loop->set_exception_handler([](duet::Loop&, const duet::ExceptionContext&) {});
    auto t = loop->create_task(duet::fiber(64 * 1024, [] { return wait_deep(10, std::chrono::hours(1)); }));
    loop->run_once();
    loop->run_once();
    CHECK(Counted::alive == 11);
    loop->close();
    CHECK(Counted::alive == 0);
  }
  CHECK(Counted::alive == 0);
}

#if defined(__linux__)
namespace {
long rss_bytes() {
  long total = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &total, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}
}  // namespace
#endif

TEST_CASE("10,000 concurrent fiber tasks complete; stacks are recycled and memory returns", "[fiber][stress]") {
  TestLoop loop;
  const int n = 10'000;
#if defined(__linux__)
  const long before = rss_bytes();
  long peak = 0;
#endif
  auto main = [&]() -> Coro<long> {
    std::vector<duet::Task<int>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i)
      tasks.push_back(duet::spawn_fiber([i] {
        char scratch[2048];  // touch some stack
        for (char& c : scratch) c = static_cast<char>(i);
        duet::await(duet::sleep(std::chrono::milliseconds(1 + i % 7)));
        return static_cast<int>(scratch[i % 2048] == static_cast<char>(i));
      }));
    co_await duet::sleep(0ms);
#if defined(__linux__)
    peak = rss_bytes();
#endif
    long sum = 0;
    for (auto& t : tasks) sum += co_await t;
    co_return sum;
  };
  CHECK(loop->run_until_complete(main()) == n);
  CHECK(duet::detail::pooled_fiber_stacks() <= 256);
#if defined(__linux__)
  const long after = rss_bytes();
  INFO("RSS before " << before / 1024 << " KiB, with 10,000 fibers " << peak / 1024 << " KiB, after "
                     << after / 1024 << " KiB");
  CHECK(peak - before > 10'000L * 4096);  // every fiber touched its own stack
#if !DUET_TEST_ASAN  // (ASan's shadow and quarantine keep memory)
  // Most of it went back; what stays is the pages the 256 pooled stacks
  // touched.
  CHECK(after - before < (peak - before) / 2);
#endif
#endif
}

#if defined(__linux__) && !DUET_TEST_ASAN
namespace {
int recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return depth > 0 ? recurse(depth - 1) + frame[0] : 0;
}
}  // namespace

TEST_CASE("a stack overflow in a fiber hits the guard page and faults (death test in a child process)",
          "[fiber][death]") {
  std::fflush(nullptr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Die of the fault itself, without Catch's handler reporting it.
    std::signal(SIGSEGV, SIG_DFL);
    std::signal(SIGBUS, SIG_DFL);
    TestLoop loop;
    auto t = loop->create_task(duet::fiber(64 * 1024, [] { return recurse(1'000'000); }));
    loop->run_until_complete(duet::Future<int>(t));
    _exit(0);  // not reached: the overflow must fault
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK((WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS));
}
#endif

TEST_CASE("await inside a catch block is refused; a tiny stack size is refused", "[fiber]") {
  TestLoop loop;
  auto main = []() -> Coro<bool> {
    auto t = duet::spawn_fiber([] {
      try {
        throw std::runtime_error("x");
      } catch (const std::runtime_error&) {
        try {
          duet::await(duet::sleep(1ms));
        } catch (const duet::RuntimeError&) {
          return true;
        }
      }
      return false;
    });
    bool refused = co_await t;
    co_return refused;
  };
  CHECK(loop->run_until_complete(main()));
  CHECK_THROWS_AS(duet::fiber(1024, [] {}), duet::ValueError);
}
