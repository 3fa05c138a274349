// duet/detail/task_base.hpp — what every task is, whatever its result
// type: a future (it completes with the coroutine) plus the machinery that
// drives the coroutine one step per loop callback (asyncio's Task.__step).
//
// Invariants (asyncio's, from tasks.py):
//  * a task is either waiting on one future (fut_waiter_) or scheduled to
//    step, never both;
//  * while pending it holds a reference to itself: the loop owns a running
//    task, dropping every Task handle neither destroys nor cancels it;
//  * only duet awaitables suspend a task: each records the innermost
//    suspended coroutine in resume_point_ and arranges for step() to run.
//
// Cancellation, as in 3.11: cancel() counts the request, cancels the
// future being waited on if it can, else sets must_cancel_; the next step
// then makes the awaiter it resumes throw CancelledError (pending_throw_).
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#include "duet/context.hpp"
#include "duet/coroutine.hpp"
#include "duet/detail/future_base.hpp"

namespace duet::detail {

class TaskBase : public FutureBase {
 public:
  explicit TaskBase(Loop& loop);

  bool cancel(std::string message) override;
  /// Cancellation requests not yet withdrawn (Task.cancelling()).
  std::uint32_t cancelling() const noexcept { return num_cancels_requested_; }
  /// Withdraws one request (Task.uncancel()); returns the remaining count.
  /// When none is left, a cancellation not yet delivered is dropped too
  /// (3.13's behaviour, python/cpython#116720).
  std::uint32_t uncancel() noexcept {
    if (num_cancels_requested_ > 0) --num_cancels_requested_;
    if (num_cancels_requested_ == 0) must_cancel_ = false;
    return num_cancels_requested_;
  }

  /// The task's name; "Task-N" unless one was given. N is assigned the
  /// first time the name is asked for, so unnamed tasks cost nothing.
  const std::string& name() const;
  void set_name(std::string name) { name_ = std::move(name); }

  /// Runs the task in `context` itself instead of its own copy of its
  /// creator's context; before start().
  void use_context(ContextState* context) noexcept;

  /// Takes ownership of the top coroutine and schedules the first step.
  void start(coro::coroutine_handle<> top);

  /// An awaiter suspends this task on `future` at `where`.
  void wait_on(FutureBase* future, coro::coroutine_handle<> where);
  /// An awaiter yields this task for one iteration (sleep(0)).
  void yield_once(coro::coroutine_handle<> where);
  /// Called first by every awaiter's await_resume: raises the pending
  /// CancelledError, if any.
  void throw_if_cancel_pending() {
    if (pending_throw_) std::rethrow_exception(std::exchange(pending_throw_, nullptr));
  }

  /// Destroys a task still pending when its loop closes (reported).
  void abandon() noexcept;

  /// One step: a loop callback.
  void step();
  /// Schedules step() with call_soon.
  void schedule_step();

 protected:
  ~TaskBase() override;
  /// Drops the reference to the awaited future (and its slot for us).
  void release_fut_waiter() noexcept;
  /// The top coroutine finished: take its result or exception.
  virtual void take_coroutine_result() = 0;
  /// step()'s work inside the task's context; true when the task is done
  /// and the loop's reference must go.
  bool step_in_context();

  coro::coroutine_handle<> top_;
  coro::coroutine_handle<> resume_point_;
  FutureBase* fut_waiter_ = nullptr;  // holds a reference
  std::exception_ptr pending_throw_;
  mutable std::string name_;
  std::uint32_t num_cancels_requested_ = 0;
  bool must_cancel_ = false;
  bool started_ = false;
  // Every step runs in context_: own_context_ (a copy of the creator's
  // context, made at creation, as asyncio's Task.__init__ copy_context()),
  // or a Context given to create_task (one reference held).
  ContextState own_context_;
  ContextState* context_ = &own_context_;
};

/// The task whose step is running on this thread, or nullptr.
TaskBase* current_task_base() noexcept;

}  // namespace duet::detail
