// Handle: cancellation, lifetime, descriptions, callable storage.
// Behaviours from CPython's test_events.py HandleTests/TimerTests and
// test_base_events.py (named per case).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>
#include <memory>
#include <string>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

TEST_CASE("a cancelled handle never runs (test__add_callback_cancelled_handle)", "[handle]") {
  TestLoop loop;
  bool ran = false;
  auto h = loop->call_soon([&] { ran = true; });
  CHECK_FALSE(h.cancelled());
  h.cancel();
  CHECK(h.cancelled());
  h.cancel();  // idempotent
  CHECK(h.cancelled());
  loop->run_once();
  CHECK_FALSE(ran);
  CHECK(loop->statistics().ready == 0);
}

TEST_CASE("dropping a Handle does not cancel its callback", "[handle]") {
  TestLoop loop;
  bool ran = false;
  { auto h = loop->call_soon([&] { ran = true; }); }
  loop->run_once();
  CHECK(ran);
}

TEST_CASE("cancelling a handle from its own callback lets the callback finish (HandleTests.test_handle)",
          "[handle]") {
  TestLoop loop;
  duet::Handle self;
  auto held = std::make_shared<int>(7);
  int seen = 0;
  self = loop->call_soon([&, held] {
    self.cancel();
    seen = *held;  // captures are still alive while the callback runs
  });
  loop->run_once();
  CHECK(seen == 7);
  CHECK(self.cancelled());
  CHECK(held.use_count() == 1);
}

TEST_CASE("a callback's captures are destroyed as soon as it has run", "[handle]") {
  TestLoop loop;
  auto held = std::make_shared<int>(0);
  auto h = loop->call_soon([held] {});
  CHECK(held.use_count() == 2);
  loop->run_once();
  CHECK(held.use_count() == 1);  // even though the Handle is still alive
}

TEST_CASE("a Handle may outlive its loop", "[handle][lifetime]") {
  duet::Handle soon;
  duet::TimerHandle later;
  {
    TestLoop loop;
    soon = loop->call_soon([] {});
    later = loop->call_later(1h, [] {});
  }
  // The loop is gone; the handles still answer and cancel() is harmless.
  CHECK_FALSE(later.cancelled());
  later.cancel();
  soon.cancel();
  CHECK(later.cancelled());
  CHECK(soon.describe().find("cancelled") != std::string::npos);
}

TEST_CASE("describe() names the kind of handle and the callback's type", "[handle]") {
  TestLoop loop;
  struct NamedCallback {
    void operator()() const {}
  };
  auto h = loop->call_soon(NamedCallback{});
  CHECK(h.describe().rfind("<Handle", 0) == 0);
  CHECK(h.describe().find("NamedCallback") != std::string::npos);
  auto t = loop->call_later(1s, NamedCallback{});
  CHECK(t.describe().rfind("<TimerHandle when=", 0) == 0);
  t.cancel();
  CHECK(t.describe().find("cancelled") != std::string::npos);
  CHECK(duet::Handle().describe() == "<Handle empty>");
  CHECK_FALSE(duet::Handle());
  CHECK(h);
}

TEST_CASE("large and move-only callables are stored and run", "[handle]") {
  TestLoop loop;
  std::array<char, 256> big{};
  big[255] = 'z';
  char seen = 0;
  loop->call_soon([big, &seen] { seen = big[255]; });
  auto owned = std::make_unique<int>(41);
  int result = 0;
  loop->call_soon([p = std::move(owned), &result] { result = *p + 1; });
  loop->run_once();
  CHECK(seen == 'z');
  CHECK(result == 42);
}

TEST_CASE("a copied Handle shares the cancellation", "[handle]") {
  TestLoop loop;
  bool ran = false;
  auto h = loop->call_soon([&] { ran = true; });
  duet::Handle copy = h;
  copy.cancel();
  CHECK(h.cancelled());
  loop->run_once();
  CHECK_FALSE(ran);
}

TEST_CASE("FIFO order holds across the ready queue's blocks (100k callbacks, mixed sizes)", "[handle][queue]") {
  TestLoop loop;
  std::vector<int> order;
  order.reserve(100'000);
  std::array<char, 300> pad{};
  for (int i = 0; i < 100'000; ++i) {
    if (i % 7 == 0)
      loop->call_soon([&order, i, pad] { order.push_back(i + pad[0]); });
    else
      loop->call_soon([&order, i] { order.push_back(i); });
  }
  loop->run_once();
  REQUIRE(order.size() == 100'000);
  for (int i = 0; i < 100'000; ++i) REQUIRE(order[i] == i);
}

TEST_CASE("Handles kept across many blocks stay valid after their callbacks ran and after the loop is gone",
          "[handle][lifetime]") {
  std::vector<duet::Handle> kept;
  int ran = 0;
  {
    TestLoop loop;
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 5000; ++i) {
        auto h = loop->call_soon([&ran] { ++ran; });
        if (i % 100 == 0) kept.push_back(h);
      }
      loop->run_once();
    }
    for (auto& h : kept) CHECK_FALSE(h.cancelled());
    kept.front().cancel();  // after it ran: only marks it
    CHECK(kept.front().cancelled());
    for (int i = 0; i < 10; ++i) kept.push_back(loop->call_soon([&ran] { ++ran; }));
  }  // closing drops the 10 pending ones
  CHECK(ran == 15000);
  for (auto& h : kept) CHECK(h.describe().rfind("<Handle", 0) == 0);
  kept.back().cancel();
  CHECK(kept.back().cancelled());
}

TEST_CASE("over-aligned and very large callables are boxed and still run", "[handle][queue]") {
  TestLoop loop;
  struct alignas(64) Aligned {
    int* out;
    void operator()() const { *out = static_cast<int>(reinterpret_cast<std::uintptr_t>(this) % 64); }
  };
  int misalignment = -1;
  loop->call_soon(Aligned{&misalignment});
  std::array<char, 4096> huge{};
  huge[4095] = 'h';
  char seen = 0;
  loop->call_soon([huge, &seen] { seen = huge[4095]; });
  loop->run_once();
  CHECK(misalignment == 0);
  CHECK(seen == 'h');
}

TEST_CASE("a callable whose copy throws leaves the queue as it was", "[handle][queue]") {
  TestLoop loop;
  struct Throwing {
    bool* ran;
    Throwing(bool* r) : ran(r) {}
    Throwing(const Throwing&) { throw std::runtime_error("no copies"); }
    Throwing(Throwing&&) noexcept = default;
    void operator()() const { *ran = true; }
  };
  bool first = false, second = false;
  loop->call_soon([&] { first = true; });
  Throwing bad(&second);
  CHECK_THROWS_AS(loop->call_soon(bad), std::runtime_error);
  CHECK(loop->statistics().ready == 1);
  loop->call_soon([&] { second = true; });
  loop->run_once();
  CHECK(first);
  CHECK(second);
}

TEST_CASE("a throwing copy exactly at a block boundary leaves the queue consistent", "[handle][queue]") {
  TestLoop loop;
  struct Throwing {
    Throwing() = default;
    Throwing(const Throwing&) { throw std::runtime_error("no copies"); }
    Throwing(Throwing&&) noexcept = default;
    void operator()() const {}
  };
  int ran = 0;
  // 24-byte entries: 682 of them fill a 16,368-byte block exactly.
  for (int fill = 680; fill <= 684; ++fill) {
    for (int i = 0; i < fill; ++i) loop->call_soon([&ran] { ++ran; });
    Throwing bad;
    CHECK_THROWS_AS(loop->call_soon(bad), std::runtime_error);
    loop->call_soon([&ran] { ++ran; });
    loop->run_once();
  }
  CHECK(ran == 680 + 681 + 682 + 683 + 684 + 5);
}

TEST_CASE("a captured object whose destructor cancels its own handle is destroyed once", "[handle][lifetime]") {
  struct CancelOnDrop {
    duet::Handle handle;
    int* destroyed;
    ~CancelOnDrop() {
      ++*destroyed;
      handle.cancel();
    }
  };
  int destroyed = 0;
  {
    TestLoop loop;
    auto guard = std::make_shared<CancelOnDrop>();
    guard->destroyed = &destroyed;
    guard->handle = loop->call_soon([guard] {});
    guard.reset();  // only the callback holds it now (and it holds a Handle to itself)
    loop->close();  // drops the callback: ~CancelOnDrop cancels the same entry
  }
  CHECK(destroyed == 1);
  destroyed = 0;
  {
    TestLoop loop;
    auto guard = std::make_shared<CancelOnDrop>();
    guard->destroyed = &destroyed;
    guard->handle = loop->call_soon([guard] {});
    duet::Handle h = guard->handle;
    guard.reset();
    h.cancel();  // destroys the callback, whose destructor cancels again
    CHECK(h.cancelled());
  }
  CHECK(destroyed == 1);
}
