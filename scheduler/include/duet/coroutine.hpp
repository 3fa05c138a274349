// duet/coroutine.hpp — the one place that knows where the coroutine library
// lives.
//
// C++20 puts it in <coroutine>, namespace std. The libc++ shipped with
// Emscripten 3.1.6 (Debian 12) still has only <experimental/coroutine>,
// namespace std::experimental. Everything in duet spells these names as
// duet::coro::X so that no other file has to care.
#pragma once

#if __has_include(<coroutine>)
#include <coroutine>
namespace duet::coro {
using std::coroutine_handle;
using std::coroutine_traits;
using std::noop_coroutine;
using std::suspend_always;
using std::suspend_never;
}  // namespace duet::coro
#elif __has_include(<experimental/coroutine>)
#include <experimental/coroutine>
namespace duet::coro {
using std::experimental::coroutine_handle;
using std::experimental::coroutine_traits;
using std::experimental::noop_coroutine;
using std::experimental::suspend_always;
using std::experimental::suspend_never;
}  // namespace duet::coro
#else
#error "duet needs C++20 coroutines: neither <coroutine> nor <experimental/coroutine> was found"
#endif

namespace duet::coro {

// Symmetric transfer — await_suspend returning the coroutine to run next —
// keeps chains of completions from growing the stack. On wasm it needs
// tail calls, which Asyncify (wasm fibers) cannot handle; a build for wasm
// fibers defines DUET_NO_SYMMETRIC_TRANSFER and resumes the next coroutine
// from inside await_suspend instead (each nested completion then uses some
// stack). Awaiters write `transfer_t await_suspend(...)` and
// `return coro::transfer(next);`.
#if defined(DUET_NO_SYMMETRIC_TRANSFER)
using transfer_t = void;
inline void transfer(coroutine_handle<> next) {
  if (next) next.resume();
}
#else
using transfer_t = coroutine_handle<>;
inline coroutine_handle<> transfer(coroutine_handle<> next) noexcept { return next ? next : noop_coroutine(); }
#endif

}  // namespace duet::coro
