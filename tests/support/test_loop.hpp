// A loop for deterministic tests: a ManualClock and a FakeBackend that
// autojumps the clock instead of sleeping (duet/testing/fake_backend.hpp).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "duet/loop.hpp"
#include "duet/testing/fake_backend.hpp"

namespace duet::test {

struct TestLoop {
  ManualClock* clock;
  testing::FakeBackend* backend;
  std::unique_ptr<Loop> loop;
  std::vector<std::string> logged;  // what the loop's log sink received

  explicit TestLoop(LoopOptions options = {}) {
    if (!options.debug) options.debug = false;  // ignore DUET_DEBUG in tests that don't ask
    auto c = std::make_unique<ManualClock>(TimePoint{std::chrono::seconds(1000)});
    clock = c.get();
    auto b = std::make_unique<testing::FakeBackend>(clock);
    backend = b.get();
    loop = std::make_unique<Loop>(std::move(b), std::move(c), options);
    loop->set_log_sink([this](std::string_view line) { logged.emplace_back(line); });
  }

  Loop* operator->() const { return loop.get(); }
  Loop& operator*() const { return *loop; }

  /// Runs iterations until nothing is scheduled (at most `limit`).
  void run_until_idle(int limit = 1'000'000) {
    for (int i = 0; i < limit; ++i) {
      auto s = loop->statistics();
      if (s.ready == 0 && s.timers == s.cancelled_timers) return;
      loop->run_once();
    }
    throw std::runtime_error("run_until_idle: still busy after the limit");
  }
};

}  // namespace duet::test

#include "duet/coro.hpp"

namespace duet::test {

/// co_await-s `awaitable` and reports whether it threw an E. Tests use it
/// instead of putting co_await inside Catch's assertion macros, which
/// g++ 12 miscompiles (a co_await inside CHECK_THROWS_AS crashed on resume).
template <class E, class Awaitable>
Coro<bool> raises(Awaitable awaitable) {
  try {
    co_await std::move(awaitable);
  } catch (const E&) {
    co_return true;
  }
  co_return false;
}

}  // namespace duet::test

#include "duet/sleep.hpp"

namespace duet::test {

/// v, after sleeping d.
inline Coro<int> value_after(Duration d, int v) {
  co_await sleep(d);
  co_return v;
}

/// Throws std::runtime_error(what) after sleeping d.
inline Coro<int> fail_after(Duration d, std::string what) {
  co_await sleep(d);
  throw std::runtime_error(what);
}

}  // namespace duet::test
