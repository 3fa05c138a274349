// duet/platform/platform.hpp — what the platform layer gives the layers
// above: the monotonic clock and the default backend of this build.
//
//   Linux         epoll, eventfd wakeup             platform/src/epoll_backend.cpp
//   POSIX         poll, self-pipe wakeup (fallback) platform/src/poll_backend.cpp
//   macOS/BSD     kqueue, EVFILT_USER wakeup        platform/src/kqueue_backend.cpp
//   Windows       I/O completion port              platform/src/iocp_backend.cpp
//   Emscripten    never blocks; the web driver (web/) runs the loop as a
//                 guest of the JavaScript event loop  platform/src/wasm_backend.cpp
//
// CMake picks exactly one backend file per target; nothing here is #if'd.
#pragma once

#include <memory>
#include <string_view>

#include "duet/backend.hpp"
#include "duet/time.hpp"

namespace duet::platform {

/// std::chrono::steady_clock (CLOCK_MONOTONIC on Linux, QueryPerformanceCounter
/// on Windows, performance.now() under Emscripten), as loop time.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override;
};

/// The backend this build selects for run_forever: the one named by the
/// environment variable DUET_BACKEND when it is set (so a whole test suite
/// can run on the fallback), else the system's best (epoll, kqueue).
std::unique_ptr<Backend> make_default_backend();

/// The backend called `name` ("epoll", "poll", "kqueue", ...; "" is the
/// default). Throws ValueError naming the ones this build has.
std::unique_ptr<Backend> make_backend(std::string_view name);

#ifdef __EMSCRIPTEN__
/// True on a browser page's own thread (not in a Worker, not under Node).
bool on_browser_main_thread() noexcept;
/// Non-null on the browser's main thread: why a blocking run is refused
/// there and what to use instead (Backend::blocking_run_refusal).
const char* blocking_run_refusal() noexcept;
#endif

}  // namespace duet::platform
