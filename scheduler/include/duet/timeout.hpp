// duet/timeout.hpp — asyncio.timeout / timeout_at and wait_for (3.12).
//
//   int v = co_await duet::timeout(2s, fetch());                 // TimeoutError after 2 s
//   co_await duet::timeout_at(deadline, [&](duet::Timeout& t) -> duet::Coro<void> {
//     ...; t.reschedule(t.when().value() + 1s); ...             // the scope itself, as `async with ... as t`
//   });
//   int w = co_await duet::wait_for(task, 500ms);               // cancels task on timeout
//
// The one primitive is the Timeout scope (asyncio's Timeout class): on
// entry it remembers the task and its cancelling() count and arms a timer
// that cancels the task; on exit, if that timer fired (expired()), it
// withdraws its own cancel request with uncancel(), and only if no other
// request is left and the body ended in CancelledError does it turn that
// into TimeoutError. So a cancellation from outside is never lost and never
// turned into TimeoutError, and a cancellation the body swallowed stays
// visible through cancelling(). wait_for is built on it, as in 3.12.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "duet/coro.hpp"
#include "duet/errors.hpp"
#include "duet/handle.hpp"
#include "duet/loop.hpp"
#include "duet/outcome.hpp"
#include "duet/task.hpp"
#include "duet/time.hpp"

namespace duet {

class Timeout {
 public:
  enum class State { created, entered, expiring, expired, exited };

  explicit Timeout(std::optional<TimePoint> when) noexcept : when_(when) {}
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
  ~Timeout() { handler_.cancel(); }

  /// The deadline, or nullopt for none.
  std::optional<TimePoint> when() const noexcept { return when_; }
  /// Moves the deadline (nullopt: none); RuntimeError unless entered and
  /// not yet expired or exited.
  void reschedule(std::optional<TimePoint> when);
  /// True once the deadline has passed inside the scope.
  bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }
  State state() const noexcept { return state_; }

  /// __aenter__: binds the scope to the current task (RuntimeError outside
  /// one, or if entered twice).
  void enter();
  /// __aexit__: true if the body's CancelledError must become TimeoutError.
  bool exit(bool body_raised_cancelled);

 private:
  void on_timeout();

  std::optional<TimePoint> when_;
  State state_ = State::created;
  Handle handler_;
  TaskRef task_;
  std::uint32_t cancelling_ = 0;
};

namespace detail {
bool is_cancelled_error(const std::exception_ptr& e) noexcept;

template <class F>
using scope_result_t = typename std::invoke_result_t<F&, Timeout&>::value_type;
}  // namespace detail

/// Runs make_body(scope) inside a Timeout scope ending at `when`.
template <class F>
  requires std::is_invocable_v<F&, Timeout&>
Coro<detail::scope_result_t<F>> timeout_at(std::optional<TimePoint> when, F make_body) {
  using T = detail::scope_result_t<F>;
  Timeout scope(when);
  scope.enter();
  Coro<Outcome<T>> body = detail::capture_call<T>(make_body, scope);
  Outcome<T> outcome = co_await std::move(body);
  std::exception_ptr error = outcome.exception();
  if (scope.exit(error && detail::is_cancelled_error(error))) throw TimeoutError("timed out");
  if constexpr (std::is_void_v<T>) {
    outcome.value();  // rethrows
  } else {
    T value = std::move(outcome).value();
    co_return value;
  }
}

/// Runs a coroutine inside a Timeout scope ending at `when`.
template <class T>
Coro<T> timeout_at(std::optional<TimePoint> when, Coro<T> body) {
  return timeout_at(when, [b = std::move(body)](Timeout&) mutable { return std::move(b); });
}

/// asyncio.timeout(delay): the deadline is loop.time() + delay when the
/// scope is created (nullopt: no deadline).
template <class Body>
auto timeout(std::optional<Duration> delay, Body&& body) {
  std::optional<TimePoint> when;
  if (delay) when = saturating_add(get_running_loop().time(), *delay);
  return timeout_at(when, std::forward<Body>(body));
}
template <class Rep, class Period, class Body>
auto timeout(std::chrono::duration<Rep, Period> delay, Body&& body) {
  return timeout(std::optional<Duration>(to_duration(delay)), std::forward<Body>(body));
}

namespace detail {
/// Cancels `fut` and waits until it is really done (3.12's _cancel_and_wait).
template <class T>
Coro<void> cancel_and_wait(Future<T> fut) {
  Future<void> waiter(fut.get_loop());
  auto id = fut.add_done_callback([waiter](const Future<T>&) mutable {
    if (!waiter.done()) waiter.set_result();
  });
  fut.cancel();
  try {
    co_await waiter;
  } catch (...) {
    fut.remove_done_callback(id);
    throw;
  }
  fut.remove_done_callback(id);
}
}  // namespace detail

/// asyncio.wait_for (3.12): awaits fut; on timeout cancels it, waits for the
/// cancellation to finish, and raises TimeoutError. nullopt: no timeout.
template <class T>
Coro<T> wait_for(Future<T> fut, std::optional<Duration> timeout_after) {
  // Results go through named locals, never `co_return co_await temporary`:
  // g++ 12 destroys such temporaries twice (found by ASan here).
  if (timeout_after && *timeout_after <= Duration::zero()) {
    if (!fut.done()) {
      co_await detail::cancel_and_wait(fut);
      if (fut.cancelled()) throw TimeoutError("timed out");
    }
    if constexpr (std::is_void_v<T>) {
      co_await fut;
      co_return;
    } else {
      T value = co_await fut;
      co_return value;
    }
  }
  Coro<T> scoped = timeout(timeout_after, [fut](Timeout&) -> Coro<T> {
    if constexpr (std::is_void_v<T>) {
      co_await fut;
    } else {
      T value = co_await fut;
      co_return value;
    }
  });
  if constexpr (std::is_void_v<T>) {
    co_await std::move(scoped);
  } else {
    T value = co_await std::move(scoped);
    co_return value;
  }
}

/// wait_for on a coroutine: it becomes a task (ensure_future) when the
/// wait_for is awaited, not when it is called, as 3.12's `async def`.
template <class T>
Coro<T> wait_for(Coro<T> coro, std::optional<Duration> timeout_after) {
  Future<T> task = get_running_loop().create_task(std::move(coro));
  Coro<T> waiting = wait_for(std::move(task), timeout_after);
  if constexpr (std::is_void_v<T>) {
    co_await std::move(waiting);
  } else {
    T value = co_await std::move(waiting);
    co_return value;
  }
}

template <class Awaitable, class Rep, class Period>
auto wait_for(Awaitable&& aw, std::chrono::duration<Rep, Period> timeout_after) {
  return wait_for(std::forward<Awaitable>(aw), std::optional<Duration>(to_duration(timeout_after)));
}

}  // namespace duet
