// TaskGroup, ported from asyncio/taskgroups.py (3.11).
#include "duet/task_group.hpp"

#include "duet/timeout.hpp"

namespace duet {

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
  what_ = message_ + " (" + std::to_string(exceptions_.size()) + " sub-exception" +
          (exceptions_.size() == 1 ? "" : "s") + ")";
  for (const auto& e : exceptions_) what_ += "\n  " + describe_exception(e);
}

TaskGroup::~TaskGroup() {
  for (auto& [task, id] : callbacks_)
    if (!task.done() && id.node()) task.get()->remove_callback_node(id.node(), id.generation());
}

void TaskGroup::enter() {
  if (entered_) throw RuntimeError("TaskGroup has already been entered");
  loop_ = &get_running_loop();
  parent_ = current_task();
  if (!parent_) throw RuntimeError("TaskGroup cannot determine the parent task");
  entered_ = true;
}

void TaskGroup::check_can_spawn() const {
  if (!entered_) throw RuntimeError("TaskGroup has not been entered");
  if (exiting_ && tasks_.empty()) throw RuntimeError("TaskGroup is finished");
  if (aborting_) throw RuntimeError("TaskGroup is shutting down");
}

void TaskGroup::abort() {
  aborting_ = true;
  for (TaskRef& t : tasks_)
    if (!t.done()) t.cancel();
}

void TaskGroup::on_task_done(const TaskRef& task) {
  std::erase(tasks_, task);
  std::erase_if(callbacks_, [&](const auto& entry) { return entry.first == task; });
  if (on_completed_ && tasks_.empty() && !on_completed_->done()) on_completed_->set_result();
  if (task.cancelled()) return;
  std::exception_ptr e = task.get()->exception();
  if (!e) return;
  errors_.push_back(e);
  if (parent_.done()) {
    ExceptionContext context;
    context.message = "Task " + task.name() + " has errored out but its parent task " + parent_.name() +
                      " is already completed";
    context.exception = e;
    loop_->call_exception_handler(context);
    return;
  }
  if (!aborting_ && !parent_cancel_requested_) {
    abort();
    parent_cancel_requested_ = true;
    parent_.cancel();
  }
}

Coro<std::exception_ptr> TaskGroup::exit(std::exception_ptr body_error) {
  exiting_ = true;
  const bool body_cancelled = body_error && detail::is_cancelled_error(body_error);
  std::exception_ptr propagate_cancellation = body_cancelled ? body_error : nullptr;
  if (body_error && !aborting_) abort();
  while (!tasks_.empty()) {
    if (!on_completed_) on_completed_.emplace(*loop_);
    Future<void> wait_for_children = *on_completed_;
    bool cancelled_while_waiting = false;
    std::exception_ptr cancel_error;
    try {
      co_await wait_for_children;
    } catch (const CancelledError&) {
      cancelled_while_waiting = true;
      cancel_error = std::current_exception();
    }
    if (cancelled_while_waiting && !aborting_) {
      propagate_cancellation = cancel_error;
      abort();
    }
    on_completed_.reset();
  }
  // After the wait, not before it (3.12's order): a child may fail, and the
  // group cancel the parent, while the group is already exiting.
  if (parent_cancel_requested_) {
    // The group cancelled the parent itself: withdraw that request; if none
    // is left, the CancelledError was ours and is not propagated.
    if (parent_.uncancel() == 0) propagate_cancellation = nullptr;
  }
  if (propagate_cancellation && errors_.empty()) co_return propagate_cancellation;
  if (body_error && !body_cancelled) errors_.push_back(body_error);
  if (!errors_.empty() && parent_.cancelling() > 0) {
    // The parent is being cancelled from outside the group too, and the
    // errors raised here will hide that CancelledError: un-cancel and
    // re-cancel, so the request is delivered at the parent's next await
    // instead of being lost (3.13's fix for python/cpython#116720).
    parent_.uncancel();
    parent_.cancel();
  }
  if (!errors_.empty())
    co_return std::make_exception_ptr(ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors_)));
  co_return nullptr;
}

}  // namespace duet
