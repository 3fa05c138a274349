// duet/testing/fake_backend.hpp — a backend for deterministic tests, in the
// spirit of Trio's MockClock(autojump_threshold=0).
//
// With a ManualClock, a wait with a finite timeout does not block: it moves
// the clock forward by the timeout and returns, so a test of a 10-minute
// timer takes microseconds and always sees the same times. A wait with no
// timeout really blocks (on a condition variable) until wake() or inject(),
// so thread-safe wakeups are tested for real. Without a clock, finite waits
// block in real time too.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "duet/backend.hpp"
#include "duet/time.hpp"

namespace duet::testing {

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(ManualClock* autojump_clock = nullptr) : clock_(autojump_clock) {}

  void wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) override;
  void wake() noexcept override;
  std::string_view name() const noexcept override { return "fake"; }

  /// From any thread: the next (or current) wait reports this event.
  void inject(IoEvent event);

  std::uint64_t wake_count() const;
  std::uint64_t wait_count() const;
  /// The timeout of the most recent wait (nullopt: "until woken").
  std::optional<Duration> last_timeout() const;

 private:
  ManualClock* clock_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<IoEvent> injected_;
  bool woken_ = false;
  std::uint64_t wakes_ = 0;
  std::uint64_t waits_ = 0;
  std::optional<Duration> last_timeout_;
};

}  // namespace duet::testing
