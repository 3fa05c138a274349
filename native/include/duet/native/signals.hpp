// duet/native/signals.hpp — Unix signals as loop callbacks (asyncio's
// loop.add_signal_handler).
//
// The C signal handler only writes the signal's number to a non-blocking
// self-pipe (one write(2), errno preserved); the pipe's read end is watched
// by the loop like any fd, and each signal that arrived runs its handler as
// an ordinary callback in the next iteration, never in signal context.
// Signals that arrive faster than the loop iterates are coalesced by the
// pipe only if it fills up (64 KiB of them).
//
// Dispositions belong to the process: a signal is handled by at most one
// loop at a time (RuntimeError otherwise), and removing the last handler
// restores the disposition that was there before.
#pragma once

#include <functional>
#include <utility>

#include "duet/context.hpp"
#include "duet/loop.hpp"

namespace duet::native {

namespace detail {
void add_signal_handler(Loop& loop, int sig, std::function<void()> fn, Context context);
}

/// Runs fn(args...) as a callback, in a copy of the current context, each
/// time `sig` arrives; replaces the loop's previous handler for it. Throws
/// ValueError for a number that is no signal, RuntimeError for SIGKILL and
/// SIGSTOP ("cannot be caught") or a signal another loop handles.
template <class F, class... Args>
void add_signal_handler(Loop& loop, int sig, F&& fn, Args&&... args) {
  detail::add_signal_handler(
      loop, sig, [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable { fn(args...); },
      copy_context());
}

/// Removes the handler and restores the previous disposition; false if the
/// loop had none for `sig`.
bool remove_signal_handler(Loop& loop, int sig);

}  // namespace duet::native
