// FutureBase: states, done callbacks, the loop registry, reporting of
// exceptions nobody retrieved. See duet/detail/future_base.hpp.
#include <cstdio>

#include "duet/errors.hpp"
#include "duet/exception_context.hpp"
#include "duet/future.hpp"
#include "duet/detail/task_base.hpp"
#include "duet/loop.hpp"

namespace duet::detail {

FutureBase::FutureBase(Loop& loop) : loop_(&loop) {
  registry_next_ = loop.registry_head_;
  if (registry_next_) registry_next_->registry_prev_ = this;
  loop.registry_head_ = this;
}

FutureBase::~FutureBase() {
  if (loop_) {
    if (registry_prev_)
      registry_prev_->registry_next_ = registry_next_;
    else
      loop_->registry_head_ = registry_next_;
    if (registry_next_) registry_next_->registry_prev_ = registry_prev_;
  }
  while (HandleNode* node = callbacks_head_) {
    callbacks_head_ = node->next;
    node->next = nullptr;
    release_node(node);
  }
  if (log_traceback_) {
    ExceptionContext context;
    // Not kind(): in a destructor the virtual call would see FutureBase.
    context.message = is_task_ ? "Task exception was never retrieved" : "Future exception was never retrieved";
    context.exception = exception_;
    if (loop_) {
      loop_->call_exception_handler(context);
    } else {
      std::string line = "duet: " + context.message + "\n  exception: " + describe_exception(exception_) + "\n";
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
  }
}

void FutureBase::drop_callbacks() noexcept {
  waiter_ = nullptr;
  HandleNode* node = std::exchange(callbacks_head_, nullptr);
  callbacks_tail_ = nullptr;
  while (node) {
    HandleNode* next = std::exchange(node->next, nullptr);
    release_node(node);
    node = next;
  }
}

void FutureBase::throw_invalid_state(const char* what) { throw InvalidStateError(what); }

void FutureBase::require_pending(const char* operation) const {
  if (state_ != State::pending) throw InvalidStateError(std::string(operation) + ": the future is already done");
}

std::exception_ptr FutureBase::make_cancelled_error() const {
  return std::make_exception_ptr(CancelledError(cancel_message_));
}

bool FutureBase::cancel(std::string message) {
  if (state_ != State::pending) return false;
  cancel_message_ = std::move(message);
  mark_done(State::cancelled);
  return true;
}

std::exception_ptr FutureBase::exception() {
  if (state_ == State::pending) throw_invalid_state("Exception is not set.");
  if (state_ == State::cancelled) std::rethrow_exception(make_cancelled_error());
  log_traceback_ = false;
  return exception_;
}

void FutureBase::check_result() {
  if (state_ == State::pending) throw_invalid_state("Result is not set.");
  if (state_ == State::cancelled) std::rethrow_exception(make_cancelled_error());
  log_traceback_ = false;
  if (exception_) std::rethrow_exception(exception_);
}

void FutureBase::set_exception(std::exception_ptr exception) {
  require_pending("set_exception");
  if (!exception) throw std::invalid_argument("set_exception: null exception_ptr");
  exception_ = std::move(exception);
  log_traceback_ = true;
  mark_done(State::finished);
}

void FutureBase::mark_done(State state) {
  DUET_ASSERT(state_ == State::pending && state != State::pending);
  state_ = state;
  const bool can_schedule = loop_ && !loop_->is_closed();
  if (TaskBase* waiter = std::exchange(waiter_, nullptr); waiter && can_schedule) waiter->schedule_step();
  HandleNode* node = std::exchange(callbacks_head_, nullptr);
  callbacks_tail_ = nullptr;
  while (node) {
    HandleNode* next = std::exchange(node->next, nullptr);
    if (can_schedule)
      loop_->push_ready(node);  // the list's reference passes to the queue
    else
      release_node(node);
    node = next;
  }
}

void FutureBase::add_callback_node(HandleNode* node) {
  if (done()) {
    if (loop_ && !loop_->is_closed()) {
      loop_->push_ready(node);
      return;
    }
    release_node(node);
    throw RuntimeError("Event loop is closed");
  }
  node->next = nullptr;
  if (callbacks_tail_)
    callbacks_tail_->next = node;
  else
    callbacks_head_ = node;
  callbacks_tail_ = node;
}

std::size_t FutureBase::remove_callback_node(HandleNode* target, std::uint32_t generation) noexcept {
  std::size_t removed = 0;
  HandleNode* prev = nullptr;
  for (HandleNode* node = callbacks_head_; node;) {
    HandleNode* next = node->next;
    if (node == target && node->generation == generation) {
      if (prev)
        prev->next = next;
      else
        callbacks_head_ = next;
      if (callbacks_tail_ == node) callbacks_tail_ = prev;
      node->next = nullptr;
      release_node(node);
      ++removed;
    } else {
      prev = node;
    }
    node = next;
  }
  return removed;
}

}  // namespace duet::detail
