// try/catch around co_await in the shapes user code takes — inside loops
// of every kind, nested, with live RAII objects, with the await completing
// at once or suspending the task — each must catch what it should.
//
// This corpus exists for the web target: with WebAssembly's own
// exceptions, LLVM (14 through 22) at -O1 and above lets the exception in
// most of these shapes skip the catch and leave the coroutine (see
// docs/compilers.md). It runs in every stage, native and wasm, so that a
// change of exception model or compiler that brings the bug back fails
// here, not in a user's program.
#include <catch2/catch.hpp>

#include <list>
#include <stdexcept>
#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using duet::Coro;
using duet::test::TestLoop;

namespace {

struct Boom : std::runtime_error {
  explicit Boom(int v) : std::runtime_error("boom " + std::to_string(v)) {}
};

// How the awaited step completes: at once, or after a trip through the loop.
enum class Mode { sync, yield };

Coro<int> step(Mode mode, int v) {
  if (mode == Mode::yield) co_await duet::yield_now();
  if (v % 3 == 1) throw Boom(v);
  co_return v;
}

// Sums what succeeds and counts what was caught: 10 values, 1, 4, 7 throw.
constexpr int kValues = 10;
constexpr int kCaught = 3;
constexpr int kSum = 0 + 2 + 3 + 5 + 6 + 8 + 9;

struct Tally {
  int sum = 0;
  int caught = 0;
  bool operator==(const Tally&) const = default;
};
constexpr Tally kExpected{kSum, kCaught};

std::vector<int> values() {
  std::vector<int> v(kValues);
  for (int i = 0; i < kValues; ++i) v[i] = i;
  return v;
}

Coro<Tally> range_for_catch_type(Mode mode) {
  Tally t;
  for (int v : values()) {
    try {
      t.sum += co_await step(mode, v);
    } catch (const Boom&) {
      ++t.caught;
    }
  }
  co_return t;
}

Coro<Tally> range_for_catch_all(Mode mode) {
  Tally t;
  for (int v : values()) {
    try {
      t.sum += co_await step(mode, v);
    } catch (...) {
      ++t.caught;
    }
  }
  co_return t;
}

Coro<Tally> index_loop(Mode mode) {
  Tally t;
  for (int i = 0; i < kValues; ++i) {
    try {
      t.sum += co_await step(mode, i);
    } catch (const std::exception&) {
      ++t.caught;
    }
  }
  co_return t;
}

Coro<Tally> while_loop(Mode mode) {
  Tally t;
  int i = 0;
  while (i < kValues) {
    try {
      int v = co_await step(mode, i);
      t.sum += v;
    } catch (const Boom&) {
      ++t.caught;
    }
    ++i;
  }
  co_return t;
}

Coro<Tally> iterator_loop(Mode mode) {
  Tally t;
  std::list<int> list;
  for (int v : values()) list.push_back(v);
  for (auto it = list.begin(); it != list.end(); ++it) {
    try {
      t.sum += co_await step(mode, *it);
    } catch (const Boom&) {
      ++t.caught;
    }
  }
  co_return t;
}

Coro<Tally> nested_try(Mode mode) {
  Tally t;
  for (int v : values()) {
    try {
      try {
        t.sum += co_await step(mode, v);
      } catch (const std::logic_error&) {
        t.sum -= 1000;  // never: Boom is not a logic_error
      }
    } catch (const Boom&) {
      ++t.caught;
    }
  }
  co_return t;
}

Coro<Tally> throw_after_await_with_raii(Mode mode) {
  Tally t;
  for (int v : values()) {
    try {
      std::string alive(64, 'x');  // a destructor to run on the way out
      int got = co_await step(mode, v % 3 == 1 ? 0 : v);
      if (v % 3 == 1) throw Boom(v);
      t.sum += got + static_cast<int>(alive.size()) - 64;
    } catch (const Boom&) {
      ++t.caught;
    }
  }
  co_return t;
}

struct Guard {
  int* live;
  explicit Guard(int* l) : live(l) { ++*live; }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard() { --*live; }
};

Coro<Tally> raii_guard_across_await(Mode mode) {
  Tally t;
  int live = 0;
  for (int v : values()) {
    try {
      Guard g(&live);
      t.sum += co_await step(mode, v);
    } catch (const Boom&) {
      if (live == 0) ++t.caught;  // the guard was released before the handler
    }
  }
  co_return t;
}

Coro<Tally> catch_then_await(Mode mode) {
  Tally t;
  for (int v : values()) {
    bool failed = false;
    try {
      t.sum += co_await step(mode, v);
    } catch (const Boom&) {
      failed = true;
    }
    if (failed) {
      co_await step(mode, 0);  // awaiting again after a caught exception
      ++t.caught;
    }
  }
  co_return t;
}

Coro<Tally> loop_inside_try(Mode mode) {
  Tally t;
  for (int v : values()) {
    if (v % 3 == 1) {
      ++t.caught;
      continue;
    }
    t.sum += co_await step(mode, v);
  }
  try {
    co_await step(mode, 1);
    t.sum -= 1000;
  } catch (const Boom&) {
  }
  co_return t;
}

Coro<Tally> rethrow_out_of_loop(Mode mode) {
  Tally t;
  try {
    for (int v : values()) {
      try {
        t.sum += co_await step(mode, v);
      } catch (const Boom&) {
        ++t.caught;
        if (t.caught == kCaught) throw;
      }
    }
  } catch (const Boom&) {
    t.sum += 9;  // the rethrow came at 7: 8 and 9 were never added
    t.sum += 8;
  }
  co_return t;
}

Coro<Tally> do_while_loop(Mode mode) {
  Tally t;
  int i = 0;
  do {
    try {
      t.sum += co_await step(mode, i);
    } catch (const Boom&) {
      ++t.caught;
    }
  } while (++i < kValues);
  co_return t;
}

Tally run(Coro<Tally> body) {
  TestLoop loop;
  return loop->run_until_complete(std::move(body));
}

}  // namespace

#define EH_SHAPE(shape)                                                                  \
  TEST_CASE("try/catch around co_await: " #shape, "[eh]") {                              \
    SECTION("the awaited step completes at once") { CHECK(run(shape(Mode::sync)) == kExpected); } \
    SECTION("the awaited step suspends the task") { CHECK(run(shape(Mode::yield)) == kExpected); } \
  }

EH_SHAPE(range_for_catch_type)
EH_SHAPE(range_for_catch_all)
EH_SHAPE(index_loop)
EH_SHAPE(while_loop)
EH_SHAPE(do_while_loop)
EH_SHAPE(iterator_loop)
EH_SHAPE(nested_try)
EH_SHAPE(throw_after_await_with_raii)
EH_SHAPE(raii_guard_across_await)
EH_SHAPE(catch_then_await)
EH_SHAPE(loop_inside_try)
EH_SHAPE(rethrow_out_of_loop)
