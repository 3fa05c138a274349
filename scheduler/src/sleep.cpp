#include "duet/sleep.hpp"

namespace duet::detail {

Coro<void> sleep_for(Duration delay) {
  if (delay <= Duration::zero()) {
    co_await yield_now();
    co_return;
  }
  Loop& loop = get_running_loop();
  Future<void> done(loop);
  TimerHandle timer = loop.call_later(delay, [done]() mutable {
    if (!done.done()) done.set_result();
  });
  try {
    co_await done;
  } catch (...) {
    timer.cancel();  // asyncio: `finally: h.cancel()`
    throw;
  }
}

}  // namespace duet::detail
