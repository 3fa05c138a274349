// The Timeout scope (asyncio/timeouts.py). See duet/timeout.hpp.
#include "duet/timeout.hpp"

namespace duet {

namespace detail {
bool is_cancelled_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

void Timeout::enter() {
  if (state_ != State::created) throw RuntimeError("Timeout has already been entered");
  TaskRef task = current_task();
  if (!task) throw RuntimeError("Timeout should be used inside a task");
  state_ = State::entered;
  task_ = std::move(task);
  cancelling_ = task_.cancelling();
  reschedule(when_);
}

void Timeout::reschedule(std::optional<TimePoint> when) {
  if (state_ != State::entered) {
    if (state_ == State::created) throw RuntimeError("Timeout has not been entered");
    throw RuntimeError("Cannot change state of an expiring, expired or exited Timeout");
  }
  when_ = when;
  handler_.cancel();
  handler_ = Handle();
  if (!when) return;
  Loop& loop = get_running_loop();
  // A deadline already passed goes through call_soon, as in asyncio: it
  // then runs before the task's next step, not after it.
  if (*when <= loop.time())
    handler_ = loop.call_soon([this] { on_timeout(); });
  else
    handler_ = loop.call_at(*when, [this] { on_timeout(); });
}

void Timeout::on_timeout() {
  task_.cancel();
  state_ = State::expiring;
  handler_ = Handle();
}

bool Timeout::exit(bool body_raised_cancelled) {
  handler_.cancel();
  handler_ = Handle();
  if (state_ == State::expiring) {
    state_ = State::expired;
    // Withdraw our own request; only if none is left is this our doing.
    return task_.uncancel() <= cancelling_ && body_raised_cancelled;
  }
  if (state_ == State::entered) state_ = State::exited;
  return false;
}

}  // namespace duet
