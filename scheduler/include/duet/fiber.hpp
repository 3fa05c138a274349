// duet/fiber.hpp — stackful tasks: ordinary functions that can wait.
//
//   int parse(Stream& s) {                      // deep, blocking-style code
//     std::string line = duet::await(s.read_line());   // suspends this fiber only
//     ...
//   }
//   duet::Task<int> t = duet::spawn_fiber(parse, std::ref(stream));
//   int n = co_await t;                         // a Task like any other
//
// A fiber task is a Task<T>: awaitable, cancellable, usable in gather and
// TaskGroups. Inside it, duet::await(x) waits for anything co_await accepts
// (a future, a task, a Coro, a lock or queue operation) at any call depth
// and returns its result or throws its exception; a cancellation surfaces
// there as CancelledError, exactly as at a co_await. Each fiber task runs
// in its own copy of the context, like every task.
//
// How: the task's top coroutine is a small driver. It switches onto the
// fiber's stack; when the fiber calls await(), the fiber hands the driver
// the awaitable and switches back; the driver co_awaits it (in the task,
// as any coroutine would) and switches in again with the result. So the
// loop drives a fiber task with the same callbacks as any task.
//
// Stacks: default 64 KiB each, from a per-thread pool, with a guard page
// natively (an overflow faults instead of corrupting memory). A deeper
// stack costs address space and, once touched, memory; a shallower one
// fits more fibers. Do not call await() inside a catch block (the
// exception-handling state is per thread, not per fiber), as co_await is
// not allowed there either. Link duet::fibers (on wasm it builds with
// Asyncify; programs without fibers do not pay for it). await() inside a
// catch block throws RuntimeError.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "duet/coro.hpp"
#include "duet/detail/fiber_context.hpp"
#include "duet/errors.hpp"
#include "duet/outcome.hpp"
#include "duet/task.hpp"

namespace duet {

struct FiberOptions {
  std::size_t stack_size = 64 * 1024;
  std::string name;  // the task's name
};

namespace detail {

/// Thrown into a fiber whose task is destroyed before it finished (its
/// loop closed), to unwind its stack. Not a std::exception: let it pass.
struct FiberUnwind {};

/// What a fiber and its driver share.
struct FiberFrame {
  FiberContext* context = nullptr;
  FutureBase* wait_for = nullptr;  // await() of a future or task: the driver waits on it directly
  std::optional<Coro<void>> job;   // await() of anything else: the driver co_awaits this
  std::exception_ptr job_error;   // how that ended, if it failed
  bool started = false;
  bool finished = false;
  bool unwinding = false;
};

/// The fiber running on this thread, if any.
inline thread_local constinit FiberFrame* t_current_fiber = nullptr;

inline void switch_into(FiberFrame& frame) {
  FiberFrame* const outer = std::exchange(t_current_fiber, &frame);
  frame.started = true;
  fiber_switch_in(frame.context);
  t_current_fiber = outer;
}

/// Ends the fiber of a driver destroyed early: unwinds its stack, then
/// frees it.
struct FiberOwner {
  FiberFrame& frame;
  ~FiberOwner() {
    if (frame.started && !frame.finished) {
      frame.unwinding = true;
      frame.job.reset();
      while (!frame.finished) switch_into(frame);
    }
    fiber_destroy(frame.context);
  }
};

/// The driver's wait on a future for the fiber (no coroutine frame): as
/// FutureAwaiter, the result is read by the fiber afterwards.
struct FutureBaseAwaiter {
  FutureBase* base;
  bool await_ready() const noexcept { return base->done(); }
  void await_suspend(coro::coroutine_handle<> where) {
    TaskBase* task = current_task_base();
    if (!task) throw RuntimeError("a fiber's driver runs outside a duet task");
    task->wait_on(base, where);
  }
  void await_resume() {
    if (TaskBase* task = current_task_base()) task->throw_if_cancel_pending();
  }
};

template <class A>
struct is_future : std::false_type {};
template <class T>
struct is_future<Future<T>> : std::true_type {};
template <class T>
struct is_future<Task<T>> : std::true_type {};

template <class A, class = void>
struct has_member_co_await : std::false_type {};
template <class A>
struct has_member_co_await<A, std::void_t<decltype(std::declval<A>().operator co_await())>> : std::true_type {};

template <class A>
decltype(auto) awaiter_for(A&& a) {
  if constexpr (has_member_co_await<A&&>::value)
    return std::forward<A>(a).operator co_await();
  else
    return std::forward<A>(a);
}

template <class A>
using await_result_t = decltype(awaiter_for(std::declval<A>()).await_resume());

// Awaits `awaitable` for a fiber. It is taken by reference: it lives in
// the fiber's await() call, which does not return before this job is done.
template <class R, class A>
Coro<void> await_job(A&& awaitable, std::optional<Outcome<R>>* out) {
  if constexpr (std::is_void_v<R>) {
    co_await std::forward<A>(awaitable);
    out->emplace(Outcome<void>::success({}));
  } else {
    R value = co_await std::forward<A>(awaitable);
    out->emplace(Outcome<R>::success(std::move(value)));
  }
}

template <class T, class Fn>
struct FiberBody {
  Fn fn;
  FiberFrame* frame;
  std::optional<Outcome<T>> result;

  static void entry(void* self) {
    auto& body = *static_cast<FiberBody*>(self);
    try {
      if constexpr (std::is_void_v<T>) {
        std::invoke(body.fn);
        body.result.emplace(Outcome<void>::success({}));
      } else {
        body.result.emplace(Outcome<T>::success(std::invoke(body.fn)));
      }
    } catch (const FiberUnwind&) {
      // the task is being destroyed: nothing to report
    } catch (...) {
      body.result.emplace(Outcome<T>::failure(std::current_exception()));
    }
    body.frame->finished = true;
  }
};

template <class T, class Fn>
Coro<T> fiber_driver(Fn fn, std::size_t stack_size) {
  FiberFrame frame;
  FiberBody<T, Fn> body{std::move(fn), &frame, std::nullopt};
  frame.context = fiber_create(stack_size, &FiberBody<T, Fn>::entry, &body);
  FiberOwner owner{frame};
  for (;;) {
    switch_into(frame);
    if (frame.finished) break;
    try {
      if (FutureBase* future = std::exchange(frame.wait_for, nullptr)) {
        co_await FutureBaseAwaiter{future};
      } else {
        Coro<void> job = std::move(*frame.job);
        frame.job.reset();
        co_await std::move(job);
      }
    } catch (...) {
      frame.job_error = std::current_exception();
    }
  }
  Outcome<T>& result = *body.result;
  if constexpr (std::is_void_v<T>) {
    result.value();
  } else {
    T value = std::move(result).value();
    co_return value;
  }
}

}  // namespace detail

/// fn(args...) on a stack of its own, as a Coro for any create_task
/// (loop.create_task, TaskGroup::create_task, with a Context...).
template <class F, class... Args>
  requires(!std::is_same_v<std::decay_t<F>, FiberOptions>)
auto fiber(std::size_t stack_size, F&& fn, Args&&... args) {
  if (stack_size < 16 * 1024) throw ValueError("a fiber's stack_size must be at least 16 KiB");
  stack_size = (stack_size + 4095) & ~std::size_t{4095};
  using T = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;
  auto bound = [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable -> T {
    return std::invoke(fn, args...);
  };
  return detail::fiber_driver<T>(std::move(bound), stack_size);
}

/// Runs fn(args...) as a task with its own stack; see the top of this file.
template <class F, class... Args>
auto spawn_fiber(FiberOptions options, F&& fn, Args&&... args) {
  return get_running_loop().create_task(fiber(options.stack_size, std::forward<F>(fn), std::forward<Args>(args)...),
                                        std::move(options.name));
}
template <class F, class... Args>
  requires(!std::is_same_v<std::decay_t<F>, FiberOptions>)
auto spawn_fiber(F&& fn, Args&&... args) {
  return spawn_fiber(FiberOptions{}, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Inside a fiber task: waits for `awaitable` and returns its result (or
/// throws its exception). RuntimeError outside a fiber.
template <class A>
detail::await_result_t<A> await(A&& awaitable) {
  using R = detail::await_result_t<A>;
  detail::FiberFrame* frame = detail::t_current_fiber;
  if (!frame) throw RuntimeError("duet::await called outside a fiber task (use co_await in a coroutine)");
  if (frame->unwinding) throw detail::FiberUnwind{};
  // The exception being handled is per thread, not per fiber: switching
  // away inside a catch block would let another fiber's handler end it.
  if (std::current_exception())
    throw RuntimeError("duet::await inside a catch block: leave the handler first (as with co_await)");
  if constexpr (detail::is_future<std::remove_cvref_t<A>>::value) {
    // A future or task: the driver waits on it, the result is read here.
    const auto& future = awaitable;
    frame->wait_for = future.base();
    detail::fiber_switch_out(frame->context);
    if (frame->unwinding) throw detail::FiberUnwind{};
    if (std::exception_ptr error = std::exchange(frame->job_error, nullptr)) std::rethrow_exception(error);
    return future.operator co_await().await_resume();
  }
  std::optional<Outcome<std::remove_cvref_t<R>>> outcome;
  frame->job.emplace(detail::await_job<std::remove_cvref_t<R>>(std::forward<A>(awaitable), &outcome));
  detail::fiber_switch_out(frame->context);
  if (frame->unwinding) throw detail::FiberUnwind{};
  if (std::exception_ptr error = std::exchange(frame->job_error, nullptr)) std::rethrow_exception(error);
  if constexpr (std::is_void_v<R>)
    outcome->value();
  else
    return std::move(*outcome).value();
}

}  // namespace duet
