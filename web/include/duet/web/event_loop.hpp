// duet/web/event_loop.hpp — a loop for WebAssembly: performance.now() as its
// clock and a backend that never blocks. Until the browser driver lands it
// is run with run_forever()/run_once() under Node; the driver will run the
// same loop as a guest of the JavaScript event loop.
#pragma once

#include <memory>

#include "duet/loop.hpp"

namespace duet::web {

std::unique_ptr<Loop> new_event_loop(LoopOptions options = {});

}  // namespace duet::web
