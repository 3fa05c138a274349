#include "duet/native/event_loop.hpp"

#include "duet/platform/platform.hpp"

namespace duet::native {

std::unique_ptr<Loop> new_event_loop(LoopOptions options) {
  return std::make_unique<Loop>(platform::make_default_backend(), std::make_unique<platform::SteadyClock>(), options);
}

}  // namespace duet::native
