// Destroying a chain of suspended Coros without recursion (duet/coro.hpp).
#include "duet/coro.hpp"

namespace duet::detail {

// A frame suspended in `co_await child()` owns the child's frame through
// the Coro it awaits; destroying the frame destroys that Coro, which
// destroys the child, and so on down: one native frame per level. Instead,
// walk down the `awaiting` links to the innermost frame and destroy
// upwards, emptying each owner slot first so that the parent's Coro finds
// nothing left to destroy. Each frame is destroyed after everything it
// awaits and before the frame awaiting it — the order of the recursion.
void destroy_chain(coro::coroutine_handle<> top, CoroPromiseBase& promise) noexcept {
  CoroPromiseBase* frame = &promise;
  while (frame->awaiting) frame = frame->awaiting;
  while (frame != &promise) {
    CoroPromiseBase* parent = frame->parent;
    coro::coroutine_handle<> handle = *frame->owner;
    *frame->owner = nullptr;
    parent->awaiting = nullptr;
    handle.destroy();
    frame = parent;
  }
  top.destroy();
}

}  // namespace duet::detail
