// duet/handle.hpp — Handle and TimerHandle, as asyncio.Handle and
// asyncio.TimerHandle: what call_soon / call_later / call_at return.
//
// A Handle is a reference to a scheduled callback. Dropping it changes
// nothing (the loop holds its own reference); cancel() makes sure the
// callback never runs and releases what the callback captured at once.
// Handles are loop-thread objects: copy, cancel and destroy them on the
// thread that runs the loop (to cancel from elsewhere, post handle.cancel()
// with call_soon_threadsafe).
//
// Memory: a call_soon callback lives inline in the ready queue's 16 KiB
// blocks, and a Handle to it keeps its block from being reused. Keep such
// Handles while you may still cancel, not for the lifetime of a program.
// A TimerHandle keeps only its own small node alive.
#pragma once

#include <string>
#include <utility>

#include "duet/detail/handle_node.hpp"
#include "duet/detail/ready_queue.hpp"
#include "duet/time.hpp"

namespace duet {

class Handle {
 public:
  Handle() noexcept = default;
  Handle(const Handle& other) noexcept : owner_(other.owner_), entry_(other.entry_) { retain(); }
  Handle(Handle&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)), entry_(std::exchange(other.entry_, nullptr)) {}
  Handle& operator=(Handle other) noexcept {
    std::swap(owner_, other.owner_);
    std::swap(entry_, other.entry_);
    return *this;
  }
  ~Handle() { release(); }

  /// Prevents the callback from running; a no-op if it already ran or was
  /// cancelled (cancelled() is true afterwards either way, as in asyncio).
  /// Cancelling a handle from inside its own callback is allowed: the
  /// callback finishes.
  void cancel() noexcept;

  bool cancelled() const noexcept;

  /// True when this refers to a callback (default-constructed handles don't).
  explicit operator bool() const noexcept { return owner_ != nullptr; }

  /// "<Handle callback-type>" / "<TimerHandle when=...ns callback-type>",
  /// plus " cancelled" — for logs and error reports.
  std::string describe() const;

  /// Adopts one reference to a ready-queue entry (used by the loop).
  Handle(detail::ReadyBlock* block, detail::ReadyEntry* entry) noexcept : owner_(block), entry_(entry) {}
  /// Adopts one reference to a node (used by the loop).
  explicit Handle(detail::HandleNode* node) noexcept : owner_(node) {}

 protected:
  detail::HandleNode* node() const noexcept { return entry_ ? nullptr : static_cast<detail::HandleNode*>(owner_); }

 private:
  void retain() noexcept {
    if (!owner_) return;
    if (entry_)
      ++static_cast<detail::ReadyBlock*>(owner_)->refs;
    else
      ++static_cast<detail::HandleNode*>(owner_)->refs;
  }
  void release() noexcept {
    if (!owner_) return;
    if (entry_)
      detail::release_block(static_cast<detail::ReadyBlock*>(owner_));
    else
      detail::release_node(static_cast<detail::HandleNode*>(owner_));
  }

  // A ReadyBlock* when entry_ is set, else a HandleNode* (or nullptr).
  void* owner_ = nullptr;
  detail::ReadyEntry* entry_ = nullptr;
};

class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;
  explicit TimerHandle(detail::HandleNode* node) noexcept : Handle(node) {}

  /// The absolute loop time at which the callback is due.
  TimePoint when() const noexcept { return node() ? node()->when : TimePoint{}; }
};

namespace detail {
/// What Handle::describe() prints, for a node or a ready-queue entry.
std::string describe_node(const HandleNode* node);
std::string describe_entry(ReadyEntry* entry);
}  // namespace detail

}  // namespace duet
