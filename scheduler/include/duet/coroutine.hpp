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
