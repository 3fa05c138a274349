// Steady state allocates nothing: call_soon / call_later / run reuse pooled
// nodes and the ready queue's ring. Counted with a replaced operator new.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

#include "duet/detail/assert.hpp"
#include "support/test_loop.hpp"

using namespace std::chrono_literals;

namespace {
std::atomic<long> g_allocations{0};
}

// GCC sees malloc'd memory freed in an operator delete and warns about a
// mismatch; here new and delete are replaced as a pair, so it is not one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size ? size : 1);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return ::operator new(size, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

TEST_CASE("call_soon + run allocates nothing in steady state", "[alloc]") {
  if (DUET_POOLS_DISABLED) {
    WARN("allocation counts are not checked under AddressSanitizer: the pools are disabled there");
    return;
  }
  duet::test::TestLoop loop;
  int count = 0;
  auto burst = [&] {
    for (int i = 0; i < 10'000; ++i) loop->call_soon([&count] { ++count; });
    loop->run_once();
  };
  burst();  // warm-up: fills the pool and grows the ring
  long before = g_allocations.load();
  for (int r = 0; r < 10; ++r) burst();
  long after = g_allocations.load();
  CHECK(count == 110'000);
  CHECK(after - before == 0);
}

TEST_CASE("timers schedule, fire and cancel without allocating in steady state", "[alloc]") {
  if (DUET_POOLS_DISABLED) {
    WARN("allocation counts are not checked under AddressSanitizer: the pools are disabled there");
    return;
  }
  duet::test::TestLoop loop;
  int fired = 0;
  auto burst = [&] {
    for (int i = 0; i < 1000; ++i) {
      loop->call_later(std::chrono::microseconds(i), [&fired] { ++fired; });
      loop->call_later(std::chrono::microseconds(i), [] {}).cancel();
    }
    loop.run_until_idle();
  };
  burst();
  long before = g_allocations.load();
  for (int r = 0; r < 5; ++r) burst();
  CHECK(g_allocations.load() - before == 0);
  CHECK(fired == 6000);
}

#include <duet/duet.hpp>

TEST_CASE("tasks: create + run + complete allocates nothing beyond pooled frames in steady state", "[alloc][task]") {
  if (DUET_POOLS_DISABLED) {
    WARN("allocation counts are not checked under AddressSanitizer: the pools are disabled there");
    return;
  }
  duet::test::TestLoop loop;
  auto trivial = [](int x) -> duet::Coro<int> { co_return x + 1; };
  auto batch = [&] {
    for (int i = 0; i < 1000; ++i) loop->create_task(trivial(i));
    loop.run_until_idle();
  };
  batch();
  batch();
  long before = g_allocations.load();
  for (int r = 0; r < 5; ++r) batch();
  CHECK(g_allocations.load() - before == 0);
}

TEST_CASE("a future hand-off between two tasks allocates nothing in steady state", "[alloc][task]") {
  if (DUET_POOLS_DISABLED) {
    WARN("allocation counts are not checked under AddressSanitizer: the pools are disabled there");
    return;
  }
  duet::test::TestLoop loop;
  auto ping_pong = [&](int rounds) -> duet::Coro<int> {
    int hops = 0;
    for (int i = 0; i < rounds; ++i) {
      duet::Future<int> f(*loop);
      loop->call_soon([f]() mutable { f.set_result(1); });
      hops += co_await f;
    }
    co_return hops;
  };
  CHECK(loop->run_until_complete(ping_pong(100)) == 100);
  long before = g_allocations.load();
  CHECK(loop->run_until_complete(ping_pong(1000)) == 1000);
  CHECK(g_allocations.load() - before == 0);
}
