// duet/time.hpp — the loop's notion of time.
//
// Time is integer nanoseconds of one monotonic clock. Integers, because
// floating-point seconds drift and round (asyncio's `when` is a float and
// its `end_time = now + clock_resolution` window exists partly to paper over
// that). The clock is injected: natively it is std::chrono::steady_clock, on
// the web performance.now(), in tests a ManualClock that only moves when the
// test moves it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <ratio>

namespace duet {

/// A span of loop time; always nanoseconds.
using Duration = std::chrono::nanoseconds;

/// The chrono-style clock of the running loop. Its time points are what
/// Loop::time() returns and Loop::call_at() takes. now() reads the clock of
/// the loop running on this thread and throws RuntimeError when none is.
struct loop_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = Duration;
  using time_point = std::chrono::time_point<loop_clock, Duration>;
  static constexpr bool is_steady = true;
  static time_point now();
};

/// A point in loop time.
using TimePoint = loop_clock::time_point;

/// Converts any chrono duration to loop Duration, rounding up, so that a
/// timer asked for "at least d from now" never fires before d has passed.
/// Saturates instead of overflowing: hours(1e9) or an infinite
/// duration<double> become Duration::max() (a timer that never fires, as
/// asyncio's call_later(math.inf, ...)); NaN counts as zero.
template <class Rep, class Period>
constexpr Duration to_duration(std::chrono::duration<Rep, Period> d) {
  if constexpr (std::is_floating_point_v<Rep>) {
    const long double ns = std::chrono::duration<long double, std::nano>(d).count();
    if (!(ns == ns)) return Duration::zero();
    if (ns >= 9.2e18L) return Duration::max();
    if (ns <= -9.2e18L) return Duration::min();
    return std::chrono::ceil<Duration>(std::chrono::duration<long double, std::nano>(ns));
  } else {
    using Unit = std::chrono::duration<Rep, Period>;
    constexpr Unit kMax = std::chrono::floor<Unit>(Duration::max());
    constexpr Unit kMin = std::chrono::ceil<Unit>(Duration::min());
    if (d >= kMax) return Duration::max();
    if (d <= kMin) return Duration::min();
    return std::chrono::ceil<Duration>(d);
  }
}

/// t + d, clamped to the representable range.
constexpr TimePoint saturating_add(TimePoint t, Duration d) {
  const auto base = t.time_since_epoch().count();
  const auto delta = d.count();
  if (delta > 0 && base > std::numeric_limits<std::int64_t>::max() - delta) return TimePoint::max();
  if (delta < 0 && base < std::numeric_limits<std::int64_t>::min() - delta) return TimePoint::min();
  return t + d;
}

/// a - b, clamped to the representable range: a deadline of TimePoint::min()
/// (call_at(TimePoint::min()), call_later(-inf) after the clock moved on)
/// minus now would otherwise wrap round to a far-future wait.
constexpr Duration saturating_sub(TimePoint a, TimePoint b) {
  const auto x = a.time_since_epoch().count();
  const auto y = b.time_since_epoch().count();
  if (y < 0 && x > std::numeric_limits<std::int64_t>::max() + y) return Duration::max();
  if (y > 0 && x < std::numeric_limits<std::int64_t>::min() + y) return Duration::min();
  return a - b;
}

/// The clock interface a Loop reads. Implementations must be monotonic and
/// safe to read from any thread (guest mode computes timeouts on two).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const noexcept = 0;
};

/// A clock that moves only when told to; for deterministic tests. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{}) : ns_(start.time_since_epoch().count()) {}

  TimePoint now() const noexcept override { return TimePoint{Duration{ns_.load(std::memory_order_acquire)}}; }

  /// Moves the clock forward by d (d < 0 is ignored: the clock is monotonic;
  /// it stops at TimePoint::max() rather than wrapping round).
  void advance(Duration d) noexcept {
    if (d.count() <= 0) return;
    auto cur = ns_.load(std::memory_order_acquire);
    while (!ns_.compare_exchange_weak(cur, saturating_add(TimePoint{Duration{cur}}, d).time_since_epoch().count(),
                                      std::memory_order_acq_rel)) {
    }
  }

  /// Moves the clock to t if t is later than now.
  void advance_to(TimePoint t) noexcept {
    auto target = t.time_since_epoch().count();
    auto cur = ns_.load(std::memory_order_acquire);
    while (cur < target && !ns_.compare_exchange_weak(cur, target, std::memory_order_acq_rel)) {
    }
  }

 private:
  std::atomic<std::int64_t> ns_;
};

}  // namespace duet
