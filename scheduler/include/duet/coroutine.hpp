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

// Handing control from one coroutine to the next — a Coro starting inline
// in its caller, a finished Coro returning to it — must not grow the
// stack, however long a chain of synchronous completions gets:
// `for (...) s += co_await one();` runs a million iterations in one step.
//
// Symmetric transfer (await_suspend returning the coroutine to run next)
// promises that only when the compiler turns the resumption into a tail
// call. clang does so at every optimisation level and under the
// sanitizers (it marks the call musttail). g++ 12 does not at -O0, -O1,
// -Og or with AddressSanitizer or ThreadSanitizer — and no macro tells
// those apart from -O2 — so each completion there keeps a native frame
// alive until the chain ends: about 10,000 iterations overflow an
// ASan build. On WebAssembly duet builds without -mtail-call (Emscripten
// 3.1.6's tail calls leak shadow-stack frames; Asyncify, under the fibers
// flavour, cannot handle them at all): the same position.
//
// There duet runs a trampoline instead: transfer() parks the next
// coroutine in a thread-local slot and returns noop_coroutine(), so the
// current coroutine suspends and its resume() returns to coro::resume(),
// the loop every resumption of a duet coroutine goes through, which then
// resumes the parked one. The stack stays flat in any build. The cost, in
// a g++ -O2 build: about 2 ns more per synchronous Coro await (11.5 ns
// against 9.2 ns in a loop of a million); a program built only at -O2 or
// above, without sanitizers, may define DUET_TRAMPOLINE=0 to avoid it.
//
// The two modes interoperate: coro::resume() always drains the slot, so a
// library built one way and a program built the other work together (each
// translation unit picks its own mode; mixing them is safe). Awaiters
// write `transfer_t await_suspend(...)` and `return coro::transfer(next);`.
// Define DUET_TRAMPOLINE to 0 or 1 to override the choice.
#if !defined(DUET_TRAMPOLINE)
#if (defined(__GNUC__) && !defined(__clang__)) || (defined(__wasm__) && !defined(__wasm_tail_call__))
#define DUET_TRAMPOLINE 1
#else
#define DUET_TRAMPOLINE 0
#endif
#endif

namespace detail {
struct Trampoline {
  coroutine_handle<> next;  // parked by transfer(), resumed by resume()
  bool active = false;      // a coro::resume() is below us on this thread
};
inline thread_local constinit Trampoline t_trampoline;
}  // namespace detail

/// Resumes `h` and every coroutine it transfers to, on a flat stack. The
/// one way duet resumes a coroutine.
inline void resume(coroutine_handle<> h) noexcept {
  detail::Trampoline& t = detail::t_trampoline;
  const bool outer = t.active;
  t.active = true;
  h.resume();
  while (t.next) {
    coroutine_handle<> next = t.next;
    t.next = nullptr;
    next.resume();
  }
  t.active = outer;
}

#if defined(__wasm__) && !defined(__wasm_tail_call__)
// Without wasm tail calls, LLVM refuses an await_suspend that returns a
// handle ("'tail-call' feature not enabled"): it returns void, and the
// trampoline is the only way on.
using transfer_t = void;
inline void transfer(coroutine_handle<> next) noexcept {
  if (!next) return;
  detail::Trampoline& t = detail::t_trampoline;
  if (t.active)
    t.next = next;
  else
    resume(next);  // nothing drains below us (a foreign resumer): drain here
}
#else
using transfer_t = coroutine_handle<>;

/// What an await_suspend returns to run `next` (nothing, if null).
inline coroutine_handle<> transfer(coroutine_handle<> next) noexcept {
  if (!next) return noop_coroutine();
#if DUET_TRAMPOLINE
  detail::Trampoline& t = detail::t_trampoline;
  if (t.active) {
    t.next = next;
  } else {
    // Nothing drains below us (a coroutine type of the user's resumed this
    // chain by hand): run the chain here, in a trampoline of its own.
    resume(next);
  }
  return noop_coroutine();
#else
  return next;
#endif
}
#endif

}  // namespace duet::coro
