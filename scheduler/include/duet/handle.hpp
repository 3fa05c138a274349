// duet/handle.hpp — Handle and TimerHandle, as asyncio.Handle and
// asyncio.TimerHandle: what call_soon / call_later / call_at return.
//
// A Handle is a reference to a scheduled callback. Dropping it changes
// nothing (the loop holds its own reference); cancel() makes sure the
// callback never runs and releases what the callback captured at once.
// Handles are loop-thread objects: copy, cancel and destroy them on the
// thread that runs the loop (to cancel from elsewhere, post handle.cancel()
// with call_soon_threadsafe).
#pragma once

#include <string>
#include <utility>

#include "duet/detail/handle_node.hpp"
#include "duet/time.hpp"

namespace duet {

namespace detail {
/// What Handle::describe() prints, for a node.
std::string describe_node(const HandleNode* node);
}  // namespace detail

class Handle {
 public:
  Handle() noexcept = default;
  Handle(const Handle& other) noexcept : node_(other.node_) {
    if (node_) ++node_->refs;
  }
  Handle(Handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  Handle& operator=(Handle other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~Handle() {
    if (node_) detail::release_node(node_);
  }

  /// Prevents the callback from running; a no-op if it already ran or was
  /// cancelled. Cancelling a handle from inside its own callback is allowed
  /// (the callback finishes; asyncio does the same).
  void cancel() noexcept;

  bool cancelled() const noexcept { return node_ && node_->cancelled; }

  /// True when this refers to a callback (default-constructed handles don't).
  explicit operator bool() const noexcept { return node_ != nullptr; }

  /// "<Handle callback-type>" plus " cancelled" — for logs and error reports.
  std::string describe() const;

  /// Adopts a node reference (used by the loop).
  explicit Handle(detail::HandleNode* node) noexcept : node_(node) {}

 protected:
  detail::HandleNode* node_ = nullptr;
};

class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;
  explicit TimerHandle(detail::HandleNode* node) noexcept : Handle(node) {}

  /// The absolute loop time at which the callback is due.
  TimePoint when() const noexcept { return node_ ? node_->when : TimePoint{}; }
};

}  // namespace duet
