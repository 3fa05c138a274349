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
  // The chain of Coros awaiting one another, kept so that destroying a
  // suspended chain is a loop rather than a recursion (destroy_chain): the
  // Coro this one is awaiting, the Coro awaiting this one, and the handle
  // (inside the awaiting frame) that owns this frame. Set while a Coro
  // awaits a Coro; a Coro awaited by anything else has no parent.
  CoroPromiseBase* awaiting = nullptr;
  CoroPromiseBase* parent = nullptr;
  coro::coroutine_handle<>* owner = nullptr;

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  coro::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    coro::transfer_t await_suspend(coro::coroutine_handle<P> self) noexcept {
      CoroPromiseBase& promise = self.promise();
      if (promise.parent) promise.parent->awaiting = nullptr;
      // Back to whoever awaited us, or, for a task's top coroutine, back to
      // the task's step.
      return coro::transfer(promise.continuation);
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

/// Destroys the frame `top` (whose promise is `promise`) and the frames of
/// the Coros it is awaiting, innermost first — the order the frames'
/// own destructors would use — without recursion, so that abandoning a
/// task suspended 200,000 awaits deep needs no more stack than one level.
void destroy_chain(coro::coroutine_handle<> top, CoroPromiseBase& promise) noexcept;

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
      destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  Coro(const Coro&) = delete;
  Coro& operator=(const Coro&) = delete;
  ~Coro() { destroy(); }

  /// Runs the coroutine inline in the awaiting task (Python's `await coro()`)
  /// and consumes the Coro: its frame is freed once the result is taken.
  auto operator co_await() && noexcept {
    if (!h_) std::terminate();  // awaiting a moved-from Coro is a bug
    return Awaiter{*this};
  }

  /// Gives up ownership of the frame (to a task).
  handle_type release() noexcept { return handle_type::from_address(std::exchange(h_, nullptr).address()); }
  explicit operator bool() const noexcept { return static_cast<bool>(h_); }

 private:
  friend promise_type;
  struct Awaiter {
    Coro& self;
    bool await_ready() const noexcept { return false; }
    template <class P>
    coro::transfer_t await_suspend(coro::coroutine_handle<P> caller) noexcept {
      promise_type& promise = self.promise();
      promise.continuation = caller;
      if constexpr (std::is_base_of_v<detail::CoroPromiseBase, P>) {
        // A Coro awaiting a Coro: link the chain (see destroy_chain).
        detail::CoroPromiseBase& outer = caller.promise();
        outer.awaiting = &promise;
        promise.parent = &outer;
        promise.owner = &self.h_;
      }
      return coro::transfer(self.h_);
    }
    // The frame goes as soon as its result is taken: a chain of named
    // Coros (`Coro<int> c = f(); co_await std::move(c);`) then holds no
    // finished frames to destroy recursively later.
    T await_resume() {
      struct Release {
        Coro& coro;
        ~Release() { coro.destroy(); }
      } release{self};
      return self.promise().take();
    }
  };

  explicit Coro(handle_type h) noexcept : h_(h) {}
  promise_type& promise() const noexcept { return handle_type::from_address(h_.address()).promise(); }
  void destroy() noexcept {
    if (!h_) return;
    promise_type& p = promise();
    coro::coroutine_handle<> h = std::exchange(h_, nullptr);
    if (p.awaiting)
      detail::destroy_chain(h, p);
    else
      h.destroy();
  }
  // Type-erased so that an awaited frame's owner slot has one type
  // whatever T is (CoroPromiseBase::owner).
  coro::coroutine_handle<> h_;
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
