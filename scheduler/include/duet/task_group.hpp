// duet/task_group.hpp — asyncio.TaskGroup (3.11).
//
//   co_await duet::task_group([&](duet::TaskGroup& tg) -> duet::Coro<void> {
//     tg.create_task(fetch(a));
//     tg.create_task(fetch(b));
//     co_return;
//   });   // returns when every child is done
//
// The first child to fail cancels the others and the body; when all are
// done, every failure is raised together as an ExceptionGroup (CancelledError
// is not a failure). A cancellation of the parent from outside propagates
// as CancelledError and is not swallowed; one the group itself caused is
// withdrawn with uncancel(). Spawning into a group that has finished, or is
// shutting down, raises RuntimeError.
#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "duet/coro.hpp"
#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/outcome.hpp"
#include "duet/task.hpp"

namespace duet {

/// Several exceptions at once (Python's ExceptionGroup).
class ExceptionGroup : public std::exception {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);
  const char* what() const noexcept override { return what_.c_str(); }
  const std::string& message() const noexcept { return message_; }
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

 private:
  std::string message_;
  std::string what_;
  std::vector<std::exception_ptr> exceptions_;
};

class TaskGroup {
 public:
  TaskGroup() = default;
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  /// Normally every child is done by now. If the group is destroyed early
  /// (an allocation failed while exiting), the children keep running but
  /// stop reporting to it.
  ~TaskGroup();

  /// Starts a child task of this group, in a copy of the current context.
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {}) {
    check_can_spawn();
    tasks_.reserve(tasks_.size() + 1);
    callbacks_.reserve(callbacks_.size() + 1);
    return watch(loop_->create_task(std::move(coro), std::move(name)));
  }
  /// The same, running the child in `context` itself (3.11's context=).
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name, const Context& context) {
    check_can_spawn();
    tasks_.reserve(tasks_.size() + 1);
    callbacks_.reserve(callbacks_.size() + 1);
    return watch(loop_->create_task(std::move(coro), std::move(name), context));
  }

  std::size_t size() const noexcept { return tasks_.size(); }

  // __aenter__ / __aexit__; used by task_group().
  void enter();

  /// Waits for the children; returns the exception to raise, if any.
  Coro<std::exception_ptr> exit(std::exception_ptr body_error);

 private:
  // Follows a new child (space for it is reserved).
  template <class T>
  Task<T> watch(Task<T> task) {
    try {
      callbacks_.emplace_back(task.ref(), task.add_done_callback([this](const Task<T>& done) { on_task_done(done.ref()); }));
    } catch (...) {
      task.cancel();  // it cannot be watched: do not leave it running unsupervised
      throw;
    }
    tasks_.push_back(task.ref());
    return task;
  }
  void check_can_spawn() const;
  void abort();
  void on_task_done(const TaskRef& task);

  bool entered_ = false;
  bool exiting_ = false;
  bool aborting_ = false;
  bool parent_cancel_requested_ = false;
  Loop* loop_ = nullptr;
  TaskRef parent_;
  std::vector<TaskRef> tasks_;
  std::vector<std::pair<TaskRef, DoneCallbackId>> callbacks_;  // to detach in ~TaskGroup
  std::vector<std::exception_ptr> errors_;
  std::optional<Future<void>> on_completed_;
};

namespace detail {
template <class F>
using group_result_t = typename std::invoke_result_t<F&, TaskGroup&>::value_type;
}

/// `async with TaskGroup() as tg: ...` — runs body(tg), then waits for
/// every child; returns the body's result.
template <class F>
  requires std::is_invocable_v<F&, TaskGroup&>
Coro<detail::group_result_t<F>> task_group(F body) {
  using T = detail::group_result_t<F>;
  TaskGroup group;
  group.enter();
  Coro<Outcome<T>> run_body = detail::capture_call<T>(body, group);
  Outcome<T> outcome = co_await std::move(run_body);
  Coro<std::exception_ptr> finish = group.exit(outcome.exception());
  if (std::exception_ptr raise = co_await std::move(finish)) std::rethrow_exception(raise);
  if constexpr (!std::is_void_v<T>) {
    T value = std::move(outcome).value();
    co_return value;
  }
}

}  // namespace duet
