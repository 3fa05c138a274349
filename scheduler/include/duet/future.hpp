// duet/future.hpp — Future<T>, as asyncio.Future.
//
//   duet::Future<int> f(loop);              // or loop.create_future<int>()
//   f.add_done_callback([](duet::Future<int> done) { ... });   // scheduled, never inline
//   f.set_result(42);                        // InvalidStateError if done
//   int v = co_await f;                      // inside a task; throws what f holds
//
// Future<void> has set_result() with no argument. result() of a pending
// future throws InvalidStateError; of a cancelled one, CancelledError with
// the cancel message. A future belongs to one loop; awaiting it from a
// task of another loop throws RuntimeError. Handles are cheap to copy
// (a reference count, loop thread only).
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "duet/coroutine.hpp"
#include "duet/detail/future_base.hpp"
#include "duet/detail/task_base.hpp"
#include "duet/errors.hpp"
#include "duet/loop.hpp"

namespace duet {

template <class T>
class Future;

namespace detail {

template <class T>
struct ValueSlot {
  std::optional<T> value;
};
template <>
struct ValueSlot<void> {};

template <class T>
class FutureState final : public FutureBase, public ValueSlot<T> {
 public:
  explicit FutureState(Loop& loop) : FutureBase(loop) {}
};

/// Makes a done callback node that calls fn(handle) with a copy of
/// `handle`, in a copy of the current context.
template <class Handle, class F>
HandleNode* make_done_node(const Handle& handle, F&& fn, bool in_current_context = true) {
  HandleNode* node = acquire_node();
  try {
    node->callback.emplace([h = handle, fn = std::forward<F>(fn)]() mutable { fn(h); });
  } catch (...) {
    release_node(node);
    throw;
  }
  if (in_current_context) node->context = retain(current_context_map());
  return node;
}

/// co_await on a future or task.
template <class T>
struct FutureAwaiter {
  FutureBase* base;
  ValueSlot<T>* slot;

  bool await_ready() const noexcept { return base->done(); }
  void await_suspend(coro::coroutine_handle<> where) {
    TaskBase* task = current_task_base();
    if (!task) throw RuntimeError("co_await on a duet future outside a duet task");
    task->wait_on(base, where);
  }
  T await_resume() {
    if (TaskBase* task = current_task_base()) task->throw_if_cancel_pending();
    base->check_result();
    if constexpr (!std::is_void_v<T>) {
      if constexpr (std::is_copy_constructible_v<T>)
        return *slot->value;
      else
        return std::move(*slot->value);  // move-only results have one consumer
    }
  }
};

}  // namespace detail

/// An opaque token for remove_done_callback.
class DoneCallbackId {
 public:
  DoneCallbackId() = default;
  /// Internals: for type-erased removal (detail::FutureBase::remove_callback_node).
  detail::HandleNode* node() const noexcept { return node_; }
  std::uint32_t generation() const noexcept { return generation_; }

 private:
  template <class>
  friend class Future;
  explicit DoneCallbackId(detail::HandleNode* node) : node_(node), generation_(node->generation) {}
  detail::HandleNode* node_ = nullptr;
  std::uint32_t generation_ = 0;
};

template <class T>
class Future {
 public:
  using value_type = T;

  /// A new pending future of `loop`.
  explicit Future(Loop& loop) {
    auto* state = new detail::FutureState<T>(loop);
    adopt(state, state);
  }
  /// A new pending future of the running loop (RuntimeError if none).
  Future() : Future(get_running_loop()) {}

  Future(const Future& other) noexcept : base_(other.base_), slot_(other.slot_) { base_->retain(); }
  Future(Future&& other) noexcept
      : base_(std::exchange(other.base_, nullptr)), slot_(std::exchange(other.slot_, nullptr)) {}
  Future& operator=(Future other) noexcept {
    std::swap(base_, other.base_);
    std::swap(slot_, other.slot_);
    return *this;
  }
  ~Future() {
    if (base_) base_->release();
  }

  bool done() const noexcept { return base_->done(); }
  bool cancelled() const noexcept { return base_->cancelled(); }

  /// Cancels a pending future (false if it is done); its callbacks are
  /// scheduled. For a Task, requests cancellation of its coroutine instead.
  bool cancel(std::string message = {}) { return base_->cancel(std::move(message)); }

  template <class U = T>
    requires(!std::is_void_v<U>)
  void set_result(U&& value) {
    check_settable("set_result");
    base_->require_pending("set_result");
    slot_->value.emplace(std::forward<U>(value));
    base_->finish();
  }
  void set_result()
    requires std::is_void_v<T>
  {
    check_settable("set_result");
    base_->require_pending("set_result");
    base_->finish();
  }

  void set_exception(std::exception_ptr exception) {
    check_settable("set_exception");
    base_->set_exception(std::move(exception));
  }
  template <class E>
    requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
  void set_exception(E&& exception) {
    set_exception(std::make_exception_ptr(std::forward<E>(exception)));
  }

  /// The result; throws the future's exception, CancelledError, or
  /// InvalidStateError when pending.
  decltype(auto) result() const {
    base_->check_result();
    if constexpr (!std::is_void_v<T>) return static_cast<const T&>(*slot_->value);
  }

  /// The exception, or nullptr for a result (CancelledError / InvalidStateError
  /// as result()).
  std::exception_ptr exception() const { return base_->exception(); }

  /// Schedules fn(future) once the future is done (at once if it is):
  /// always through the loop, never inline; it runs in a copy of the
  /// context current now.
  template <class F>
  DoneCallbackId add_done_callback(F&& fn) {
    detail::HandleNode* node = detail::make_done_node(*this, std::forward<F>(fn));
    base_->add_callback_node(node);
    return DoneCallbackId(node);
  }
  /// The same, running fn in `context` itself (asyncio's context=).
  template <class F>
  DoneCallbackId add_done_callback(F&& fn, const Context& context) {
    detail::HandleNode* node = detail::make_done_node(
        *this, [context, fn = std::forward<F>(fn)](const Future& done) mutable { context.run(fn, done); }, false);
    base_->add_callback_node(node);
    return DoneCallbackId(node);
  }
  /// Removes a callback not yet scheduled; returns how many were removed.
  std::size_t remove_done_callback(DoneCallbackId id) noexcept {
    return id.node_ ? base_->remove_callback_node(id.node_, id.generation_) : 0;
  }

  Loop& get_loop() const {
    if (!base_->loop()) throw RuntimeError("the future's loop is gone");
    return *base_->loop();
  }

  detail::FutureAwaiter<T> operator co_await() const noexcept { return {base_, slot_}; }

  /// Internals: the type-erased state.
  detail::FutureBase* base() const noexcept { return base_; }

  /// Internals: a handle to a state built elsewhere (combinators).
  static Future adopt_state(detail::FutureBase* base, detail::ValueSlot<T>* slot) noexcept {
    return Future(base, slot);
  }

 protected:
  Future(detail::FutureBase* base, detail::ValueSlot<T>* slot) noexcept : base_(base), slot_(slot) {
    base_->retain();
  }
  void adopt(detail::FutureBase* base, detail::ValueSlot<T>* slot) noexcept {
    base_ = base;
    slot_ = slot;
    base_->retain();
  }

 private:
  void check_settable(const char* what) const {
    if (base_->is_task()) throw RuntimeError(std::string("Task does not support ") + what + "() operation");
  }
  detail::FutureBase* base_ = nullptr;
  detail::ValueSlot<T>* slot_ = nullptr;
};

template <class T>
Future<T> Loop::create_future() {
  return Future<T>(*this);
}

template <class T>
T Loop::run_until_complete(Future<T> future) {
  if (&future.get_loop() != this) throw RuntimeError("The future belongs to a different loop than the one given");
  // asyncio's _run_until_complete_cb: stop once it is done.
  auto id = future.add_done_callback([this](const Future<T>&) { stop(); });
  try {
    run_forever();
  } catch (...) {
    future.remove_done_callback(id);
    throw;
  }
  future.remove_done_callback(id);
  if (!future.done()) throw RuntimeError("Event loop stopped before Future completed.");
  if constexpr (std::is_void_v<T>) {
    future.result();
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return future.result();
  } else {
    future.result();  // throws if needed
    return std::move(const_cast<T&>(future.result()));
  }
}

}  // namespace duet
