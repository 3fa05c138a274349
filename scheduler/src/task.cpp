// TaskBase: driving a coroutine one step per loop callback (asyncio's
// Task.__step and __wakeup), cancellation, abandonment at loop close.
#include <atomic>
#include <optional>

#include "duet/errors.hpp"
#include "duet/exception_context.hpp"
#include "duet/loop.hpp"
#include "duet/task.hpp"

namespace duet::detail {
namespace {

thread_local constinit TaskBase* t_current_task = nullptr;
std::atomic<std::uint64_t> g_task_counter{0};

// asyncio's _enter_task / _leave_task.
class CurrentTaskScope {
 public:
  explicit CurrentTaskScope(TaskBase* task) : previous_(t_current_task) {
    if (previous_) throw RuntimeError("Cannot enter into a task while another task is being executed");
    t_current_task = task;
  }
  CurrentTaskScope(const CurrentTaskScope&) = delete;
  CurrentTaskScope& operator=(const CurrentTaskScope&) = delete;
  ~CurrentTaskScope() { t_current_task = previous_; }

 private:
  TaskBase* previous_;
};

// A task's own context is entered without the "already entered" check:
// nothing else can reach it. A shared one goes through the check, as
// asyncio's step runs in context.run().
class TaskContextScope {
 public:
  TaskContextScope(ContextState* context, bool shared) : previous_(t_context) {
    if (shared) entered_.emplace(*context);
    t_context = context;
  }
  TaskContextScope(const TaskContextScope&) = delete;
  TaskContextScope& operator=(const TaskContextScope&) = delete;
  ~TaskContextScope() { t_context = previous_; }

 private:
  ContextState* previous_;
  std::optional<EnteredContext> entered_;
};

}  // namespace

TaskBase* current_task_base() noexcept { return t_current_task; }

TaskBase::TaskBase(Loop& loop) : FutureBase(loop) {
  is_task_ = true;
  own_context_.map = detail::retain(current_context_map());
}

void TaskBase::use_context(ContextState* context) noexcept {
  DUET_ASSERT(!started_ && context_ == &own_context_);
  detail::retain(context);
  context_ = context;
  detail::release(std::exchange(own_context_.map, nullptr));
}

const std::string& TaskBase::name() const {
  if (name_.empty()) name_ = "Task-" + std::to_string(g_task_counter.fetch_add(1, std::memory_order_relaxed) + 1);
  return name_;
}

TaskBase::~TaskBase() {
  DUET_ASSERT(!top_);
  release_fut_waiter();
  if (context_ != &own_context_) detail::release(context_);
}

void TaskBase::release_fut_waiter() noexcept {
  if (!fut_waiter_) return;
  if (fut_waiter_->waiter_ == this) fut_waiter_->waiter_ = nullptr;
  std::exchange(fut_waiter_, nullptr)->release();
}

void TaskBase::start(coro::coroutine_handle<> top) {
  top_ = top;
  retain();  // the loop's reference: a running task owns itself
  try {
    schedule_step();
  } catch (...) {
    top_.destroy();
    top_ = {};
    state_ = State::cancelled;
    release();
    throw;
  }
}

void TaskBase::schedule_step() {
  loop_->call_soon_internal([this] { step(); });
}

bool TaskBase::cancel(std::string message) {
  if (done()) return false;
  ++num_cancels_requested_;
  if (fut_waiter_ && fut_waiter_->cancel(message)) return true;
  // Not waiting (not started, yielded, or running now): the next step
  // throws CancelledError into the coroutine.
  must_cancel_ = true;
  cancel_message_ = std::move(message);
  return true;
}

void TaskBase::wait_on(FutureBase* future, coro::coroutine_handle<> where) {
  if (future == this) throw RuntimeError("Task cannot await on itself: " + name());
  if (future->loop() != loop_) throw RuntimeError("Task " + name() + " got Future attached to a different loop");
  if (!future->callbacks_head_ && !future->waiter_) {
    future->waiter_ = this;  // the fast path: see FutureBase::waiter_
  } else {
    HandleNode* node = acquire_node();
    try {
      node->callback.emplace([this] { step(); });  // asyncio's __wakeup
    } catch (...) {
      release_node(node);
      throw;
    }
    future->add_callback_node(node);
  }
  future->retain();
  fut_waiter_ = future;
  resume_point_ = where;
  if (must_cancel_ && future->cancel(cancel_message_)) must_cancel_ = false;
}

void TaskBase::yield_once(coro::coroutine_handle<> where) {
  schedule_step();
  resume_point_ = where;
}

void TaskBase::step() {
  if (done()) return;
  bool finished;
  {
    TaskContextScope context(context_, context_ != &own_context_);
    finished = step_in_context();
  }
  // After the scope: dropping the last reference destroys own_context_,
  // which must not be current then (values' destructors may read it).
  if (finished) release();  // the loop's reference; may delete this
}

bool TaskBase::step_in_context() {
  if (must_cancel_) {
    // As asyncio's __step: if the awaited future was itself cancelled, its
    // CancelledError (and message) is the one thrown; otherwise a new one.
    if (!(fut_waiter_ && fut_waiter_->cancelled())) pending_throw_ = make_cancelled_error();
    // asyncio's __wakeup reads the future's result before __step throws the
    // cancellation in: the future's exception counts as retrieved.
    if (fut_waiter_ && fut_waiter_->done() && !fut_waiter_->cancelled()) fut_waiter_->log_traceback_ = false;
    must_cancel_ = false;
  }
  release_fut_waiter();
  CurrentTaskScope scope(this);
  if (!started_) {
    started_ = true;
    if (pending_throw_) {  // cancelled before its first step: the body never runs
      pending_throw_ = nullptr;
      mark_done(State::cancelled);
      std::exchange(top_, {}).destroy();
      return true;
    }
    resume_point_ = top_;
  }
  coro::resume(std::exchange(resume_point_, {}));
  if (!top_.done()) return false;
  take_coroutine_result();
  std::exchange(top_, {}).destroy();
  return true;
}

void TaskBase::abandon() noexcept {
  if (done() || !top_) return;
  ExceptionContext context;
  context.message = "Task was destroyed but it is pending!";
  context.handle = "<Task pending name='" + name() + "'>";
  if (loop_) loop_->call_exception_handler(context);
  // Done without callbacks: nobody can run them any more.
  state_ = State::cancelled;
  while (HandleNode* node = callbacks_head_) {
    callbacks_head_ = node->next;
    node->next = nullptr;
    release_node(node);
  }
  callbacks_tail_ = nullptr;
  waiter_ = nullptr;
  release_fut_waiter();
  {
    // The frame's destructors run in the task's context, as its steps did.
    ContextState* const outer = t_context;
    t_context = context_;
    std::exchange(top_, {}).destroy();
    t_context = outer;
  }
  release();
}

}  // namespace duet::detail

namespace duet {

std::vector<TaskRef> all_tasks(Loop& loop) {
  std::vector<TaskRef> tasks;
  for (detail::TaskBase* task : loop.pending_tasks()) tasks.emplace_back(task);
  return tasks;
}

}  // namespace duet
