// duet/detail/future_base.hpp — the type-independent part of a future's
// shared state (and so of a task's).
//
// States and moves (asyncio's _PENDING / _CANCELLED / _FINISHED):
//   pending --set_result/set_exception--> finished
//   pending --cancel-------------------> cancelled
// Only the loop's thread touches a state. Done callbacks are HandleNodes in
// an intrusive FIFO list; completing the future hands each node to the
// loop's ready queue (so they run in a later iteration, never inline, as
// asyncio schedules them with call_soon). No allocation beyond the pooled
// nodes.
//
// Lifetime: reference counted by Future/Task handles, done-callback
// captures and (for a running task) the task itself. Each state is also on
// its loop's registry, so that a loop being destroyed can detach the states
// that outlive it (their `loop_` becomes nullptr and a never-retrieved
// exception is then reported on stderr).
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include "duet/detail/frame_allocator.hpp"
#include "duet/detail/handle_node.hpp"

namespace duet {
class Loop;
}

namespace duet::detail {

class TaskBase;

class FutureBase : public FramePooled {
 public:
  enum class State : std::uint8_t { pending, cancelled, finished };

  explicit FutureBase(Loop& loop);
  FutureBase(const FutureBase&) = delete;
  FutureBase& operator=(const FutureBase&) = delete;

  void retain() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  bool done() const noexcept { return state_ != State::pending; }
  bool cancelled() const noexcept { return state_ == State::cancelled; }
  Loop* loop() const noexcept { return loop_; }
  bool is_task() const noexcept { return is_task_; }

  /// Future.cancel(msg) for futures; Task overrides it (Task.cancel).
  virtual bool cancel(std::string message);

  /// The exception of a finished future (nullptr if it has a result); marks
  /// it retrieved. Throws CancelledError if cancelled, InvalidStateError if
  /// pending.
  std::exception_ptr exception();

  /// Throws whatever result() must throw for a non-successful state and
  /// marks the exception retrieved; returns normally when a value is there.
  void check_result();

  void set_exception(std::exception_ptr exception);

  /// Appends a done callback; the future takes over one node reference. If
  /// the future is already done, the node is scheduled at once.
  void add_callback_node(HandleNode* node);
  /// Removes the pending callback `node` if it is still the one added
  /// (same generation); returns how many were removed (0 or 1).
  std::size_t remove_callback_node(HandleNode* node, std::uint32_t generation) noexcept;

  const std::string& cancel_message() const noexcept { return cancel_message_; }
  /// Throws InvalidStateError unless pending.
  void require_pending(const char* operation) const;
  /// Marks a pending future finished (its value is already stored).
  void finish() { mark_done(State::finished); }
  /// A CancelledError carrying the cancel message.
  std::exception_ptr make_cancelled_error() const;

  /// Releases every pending done callback without running it (the loop is
  /// closing: this also breaks reference cycles through callbacks).
  void drop_callbacks() noexcept;

  // The loop's registry of live states (see Loop::~Loop).
  FutureBase* registry_prev_ = nullptr;
  FutureBase* registry_next_ = nullptr;
  void detach_from_loop() noexcept { loop_ = nullptr; }

 protected:
  virtual ~FutureBase();
  /// Moves pending -> finished/cancelled and schedules the callbacks.
  void mark_done(State state);
  [[noreturn]] static void throw_invalid_state(const char* what);

  Loop* loop_;
  std::uint32_t refs_ = 0;
  State state_ = State::pending;
  bool log_traceback_ = false;  // an exception nobody retrieved
  bool is_task_ = false;
  std::exception_ptr exception_;
  std::string cancel_message_;
  HandleNode* callbacks_head_ = nullptr;
  HandleNode* callbacks_tail_ = nullptr;
  // The common case gets its own slot: one task awaiting this future, with
  // no callback added before it. Waking it is then a plain call_soon of its
  // step, with no node to build (it measured a third of a ping-pong hop).
  // It is scheduled before the list, which only holds callbacks added
  // after it, so the order of callbacks is the order they were added.
  TaskBase* waiter_ = nullptr;
  friend class TaskBase;
};

}  // namespace duet::detail
