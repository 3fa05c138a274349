#include <chrono>

#include "duet/platform/platform.hpp"

namespace duet::platform {

TimePoint SteadyClock::now() const noexcept {
  return TimePoint{std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

}  // namespace duet::platform
