// duet/platform/platform.hpp — what the platform layer gives the layers
// above: the monotonic clock and the default backend of this build.
//
//   Linux         epoll, eventfd wakeup             platform/src/epoll_backend.cpp
//   Windows       event wait (IOCP: its own issue)  platform/src/win_event_backend.cpp
//   Emscripten    never blocks (web driver: its own issue)
//                                                   platform/src/wasm_backend.cpp
//
// CMake picks exactly one backend file per target; nothing here is #if'd.
#pragma once

#include <memory>

#include "duet/backend.hpp"
#include "duet/time.hpp"

namespace duet::platform {

/// std::chrono::steady_clock (CLOCK_MONOTONIC on Linux, QueryPerformanceCounter
/// on Windows, performance.now() under Emscripten), as loop time.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override;
};

/// The backend this build selects for run_forever.
std::unique_ptr<Backend> make_default_backend();

}  // namespace duet::platform
