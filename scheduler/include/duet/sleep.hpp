// duet/sleep.hpp — asyncio.sleep.
//
//   co_await duet::sleep(0s);     // yields to the other callbacks for exactly one iteration
//   co_await duet::sleep(50ms);   // resumes once loop.time() has advanced by at least 50 ms
//
// Cancelling the sleeping task cancels the timer and raises CancelledError
// at the co_await.
#pragma once

#include <chrono>

#include "duet/coro.hpp"
#include "duet/detail/task_base.hpp"
#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/loop.hpp"
#include "duet/time.hpp"

namespace duet {

namespace detail {
/// The bare `yield` of asyncio.sleep(0): one trip through the ready queue.
struct YieldAwaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(coro::coroutine_handle<> where) {
    TaskBase* task = current_task_base();
    if (!task) throw RuntimeError("duet::sleep awaited outside a duet task");
    task->yield_once(where);
  }
  void await_resume() {
    if (TaskBase* task = current_task_base()) task->throw_if_cancel_pending();
  }
};

Coro<void> sleep_for(Duration delay);
}  // namespace detail

/// asyncio.sleep(0): gives every other ready callback one turn.
inline detail::YieldAwaiter yield_now() noexcept { return {}; }

/// asyncio.sleep(delay). A delay <= 0 is a yield_now().
template <class Rep, class Period>
Coro<void> sleep(std::chrono::duration<Rep, Period> delay) {
  return detail::sleep_for(to_duration(delay));
}

}  // namespace duet
