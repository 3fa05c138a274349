// duet/coro.hpp — Coro<T>: the return type of duet coroutine functions.
//
//   duet::Coro<int> answer() { co_await duet::sleep(10ms); co_return 42; }
//
// A Coro is *lazy*, like a Python coroutine object: calling answer() runs
// nothing. It runs when it is
//   * awaited from another coroutine — `int v = co_await answer();` runs it
//     inline, in the caller's task, as `await answer()` does in Python (no
//     trip through the loop, no new task); or
//   * handed to a task — `loop.create_task(answer())` / duet::create_task —
//     which schedules it on the loop (asyncio.create_task).
// Results and exceptions of any type travel through co_await unchanged. A
// Coro that is never started is destroyed with nothing run.
//
// Frames come from the recycling frame allocator.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "duet/coroutine.hpp"
#include "duet/detail/frame_allocator.hpp"

namespace duet {

template <class T = void>
class Coro;

namespace detail {

struct CoroPromiseBase {
  coro::coroutine_handle<> continuation;
  std::exception_ptr exception;

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  coro::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    coro::transfer_t await_suspend(coro::coroutine_handle<P> self) noexcept {
      // Back to whoever awaited us (symmetric transfer), or, for a task's
      // top coroutine, back to the task's step.
      return coro::transfer(self.promise().continuation);
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T>
struct CoroPromise : CoroPromiseBase {
  std::optional<T> value;
  Coro<T> get_return_object() noexcept;
  template <class U = T>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (exception) std::rethrow_exception(exception);
    return std::move(*value);
  }
};

template <>
struct CoroPromise<void> : CoroPromiseBase {
  Coro<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception) std::rethrow_exception(exception);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Coro {
 public:
  using promise_type = detail::CoroPromise<T>;
  using handle_type = coro::coroutine_handle<promise_type>;
  using value_type = T;

  Coro(Coro&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Coro& operator=(Coro&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  Coro(const Coro&) = delete;
  Coro& operator=(const Coro&) = delete;
  ~Coro() {
    if (h_) h_.destroy();
  }

  /// Runs the coroutine inline in the awaiting task (Python's `await coro()`).
  auto operator co_await() && noexcept {
    struct Awaiter {
      handle_type h;
      bool await_ready() const noexcept { return false; }
      coro::transfer_t await_suspend(coro::coroutine_handle<> caller) noexcept {
        h.promise().continuation = caller;
        return coro::transfer(h);
      }
      T await_resume() { return h.promise().take(); }
    };
    if (!h_) std::terminate();  // awaiting a moved-from Coro is a bug
    return Awaiter{h_};
  }

  /// Gives up ownership of the frame (to a task).
  handle_type release() noexcept { return std::exchange(h_, nullptr); }
  explicit operator bool() const noexcept { return static_cast<bool>(h_); }

 private:
  friend promise_type;
  explicit Coro(handle_type h) noexcept : h_(h) {}
  handle_type h_;
};

namespace detail {
template <class T>
Coro<T> CoroPromise<T>::get_return_object() noexcept {
  return Coro<T>(coro::coroutine_handle<CoroPromise<T>>::from_promise(*this));
}
inline Coro<void> CoroPromise<void>::get_return_object() noexcept {
  return Coro<void>(coro::coroutine_handle<CoroPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace duet
