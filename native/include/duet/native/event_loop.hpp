// duet/native/event_loop.hpp — a loop over this system's default backend and
// the steady clock (asyncio.new_event_loop).
#pragma once

#include <memory>

#include "duet/loop.hpp"

namespace duet::native {

/// A new loop on the platform's default backend (epoll on Linux) and
/// std::chrono::steady_clock.
std::unique_ptr<Loop> new_event_loop(LoopOptions options = {});

}  // namespace duet::native
