// duet/task.hpp — Task<T>, as asyncio.Task: a Coro scheduled on the loop.
//
//   duet::Task<int> t = loop.create_task(answer());   // or duet::create_task(answer())
//   t.cancel("bye");      // CancelledError surfaces at the coroutine's current co_await
//   int v = co_await t;   // from another task; Task<T> is a Future<T>
//
// The first step runs in a later iteration (call_soon); every step is one
// loop callback. The loop owns a running task: dropping every Task handle
// neither destroys nor cancels it. An exception nobody retrieved is reported
// to the loop's exception handler when the task is destroyed ("Task
// exception was never retrieved"), and a task still pending when its loop
// closes is reported and destroyed ("Task was destroyed but it is
// pending!").
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "duet/coro.hpp"
#include "duet/detail/task_base.hpp"
#include "duet/future.hpp"

namespace duet {

namespace detail {

template <class T>
class TaskState final : public TaskBase, public ValueSlot<T> {
 public:
  explicit TaskState(Loop& loop) : TaskBase(loop) {}

 private:
  void take_coroutine_result() override {
    auto h = coro::coroutine_handle<CoroPromise<T>>::from_address(top_.address());
    CoroPromise<T>& promise = h.promise();
    if (promise.exception) {
      std::exception_ptr e = promise.exception;
      try {
        std::rethrow_exception(e);
      } catch (const CancelledError& cancelled) {
        cancel_message_ = cancelled.message();
        mark_done(State::cancelled);
      } catch (...) {
        set_exception(e);
      }
    } else if (must_cancel_) {
      // Cancelled right before the coroutine returned (asyncio does the same).
      must_cancel_ = false;
      mark_done(State::cancelled);
    } else {
      if constexpr (!std::is_void_v<T>) this->value.emplace(std::move(*promise.value));
      mark_done(State::finished);
    }
  }
};

}  // namespace detail

/// A task of any result type (what asyncio.current_task() and all_tasks()
/// hand out): name, cancellation, state. Copyable; loop thread only.
class TaskRef {
 public:
  TaskRef() noexcept = default;
  explicit TaskRef(detail::TaskBase* task) noexcept : task_(task) {
    if (task_) task_->retain();
  }
  TaskRef(const TaskRef& other) noexcept : TaskRef(other.task_) {}
  TaskRef(TaskRef&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  TaskRef& operator=(TaskRef other) noexcept {
    std::swap(task_, other.task_);
    return *this;
  }
  ~TaskRef() {
    if (task_) task_->release();
  }

  bool cancel(std::string message = {}) { return task_->cancel(std::move(message)); }
  std::uint32_t cancelling() const noexcept { return task_->cancelling(); }
  std::uint32_t uncancel() noexcept { return task_->uncancel(); }
  bool done() const noexcept { return task_->done(); }
  bool cancelled() const noexcept { return task_->cancelled(); }
  const std::string& name() const noexcept { return task_->name(); }

  explicit operator bool() const noexcept { return task_ != nullptr; }
  friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.task_ == b.task_; }
  detail::TaskBase* get() const noexcept { return task_; }

 private:
  detail::TaskBase* task_ = nullptr;
};

/// The task running on this thread (asyncio.current_task()), or an empty
/// TaskRef outside any task.
inline TaskRef current_task() { return TaskRef(detail::current_task_base()); }

/// The tasks of `loop` that are not done (asyncio.all_tasks(loop)).
std::vector<TaskRef> all_tasks(Loop& loop);
/// The tasks of the running loop that are not done (asyncio.all_tasks()).
inline std::vector<TaskRef> all_tasks() { return all_tasks(get_running_loop()); }

template <class T = void>
class Task : public Future<T> {
 public:
  Task() = delete;

  /// Task.cancel(msg): false if the task is done.
  bool cancel(std::string message = {}) { return this->base()->cancel(std::move(message)); }
  std::uint32_t cancelling() const noexcept { return task()->cancelling(); }
  std::uint32_t uncancel() noexcept { return task()->uncancel(); }
  const std::string& name() const noexcept { return task()->name(); }
  void set_name(std::string name) { task()->set_name(std::move(name)); }

  template <class F>
  DoneCallbackId add_done_callback(F&& fn) {
    return Future<T>::add_done_callback(
        [self = *this, fn = std::forward<F>(fn)](const Future<T>&) mutable { fn(self); });
  }
  /// The same, running fn in `context` itself (asyncio's context=).
  template <class F>
  DoneCallbackId add_done_callback(F&& fn, const Context& context) {
    return Future<T>::add_done_callback(
        [self = *this, fn = std::forward<F>(fn)](const Future<T>&) mutable { fn(self); }, context);
  }

  /// This task, type-erased.
  TaskRef ref() const noexcept { return TaskRef(task()); }
  operator TaskRef() const noexcept { return ref(); }

  /// Internals: the task's state.
  detail::TaskBase* task() const noexcept { return static_cast<detail::TaskBase*>(this->base()); }

 private:
  friend class Loop;
  template <class>
  friend class Task;
  explicit Task(detail::TaskState<T>* state) noexcept : Future<T>(state, state) {}
};

template <class T>
Task<T> Loop::create_task(Coro<T> coro, std::string name) {
  check_can_schedule();
  if (!coro) throw std::invalid_argument("create_task: the Coro was moved from");
  auto* state = new detail::TaskState<T>(*this);
  Task<T> task(state);
  if (!name.empty()) state->set_name(std::move(name));
  state->start(coro.release());
  return task;
}

template <class T>
Task<T> Loop::create_task(Coro<T> coro, std::string name, const Context& context) {
  check_can_schedule();
  if (!coro) throw std::invalid_argument("create_task: the Coro was moved from");
  auto* state = new detail::TaskState<T>(*this);
  Task<T> task(state);
  if (!name.empty()) state->set_name(std::move(name));
  state->use_context(detail::ContextAccess::state(context));
  state->start(coro.release());
  return task;
}

/// asyncio.create_task: a task on the running loop.
template <class T>
Task<T> create_task(Coro<T> coro, std::string name = {}) {
  return get_running_loop().create_task(std::move(coro), std::move(name));
}
template <class T>
Task<T> create_task(Coro<T> coro, std::string name, const Context& context) {
  return get_running_loop().create_task(std::move(coro), std::move(name), context);
}

/// loop.run_until_complete(coro): wraps it in a task.
template <class T>
T Loop::run_until_complete(Coro<T> coro) {
  check_can_run();  // before a task exists that a refused run would leave behind
  return run_until_complete(Future<T>(create_task(std::move(coro))));
}

}  // namespace duet
