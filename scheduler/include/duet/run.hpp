// duet/run.hpp — asyncio.run's sequence on a loop you provide. Native code
// calls duet::run (duet/native/run.hpp), which makes the loop itself.
//
// run_main(loop, main()): creates the main task and runs the loop until it
// is done; then, whatever happened, in this order: cancels every task still
// pending, runs the loop until they have all finished (an exception other
// than cancellation is reported to the exception handler: "unhandled
// exception during duet::run() shutdown"), closes the loop; then returns
// main's result or rethrows its exception. No task frame outlives the call.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "duet/coro.hpp"
#include "duet/errors.hpp"
#include "duet/gather.hpp"
#include "duet/loop.hpp"
#include "duet/task.hpp"

namespace duet {

namespace detail {
/// asyncio.runners._cancel_all_tasks.
void cancel_all_tasks(Loop& loop);
}  // namespace detail

/// What a driver adds to run_main's sequence (the native run() uses them
/// for SIGINT and the default executor).
struct RunHooks {
  /// After the main task is created, before the loop runs.
  std::function<void(Loop&, TaskRef main)> started;
  /// Once the loop stops running main (done, or the loop was stopped),
  /// before the remaining tasks are cancelled.
  std::function<void(Loop&)> main_done;
  /// After the remaining tasks are finished, before the loop closes (not
  /// called when the loop was closed by then).
  std::function<void(Loop&)> before_close;
};

template <class T>
T run_main(Loop& loop, Coro<T> main, const RunHooks& hooks = {}) {
  if (running_loop()) throw RuntimeError("duet::run() cannot be called from a running event loop");
  struct Shutdown {
    Loop& loop;
    const RunHooks& hooks;
    ~Shutdown() {
      try {
        if (hooks.main_done) hooks.main_done(loop);
      } catch (...) {
        ExceptionContext context;
        context.message = "error while shutting down in duet::run()";
        context.exception = std::current_exception();
        loop.call_exception_handler(context);
      }
      try {
        if (!loop.is_closed()) detail::cancel_all_tasks(loop);
      } catch (...) {
        ExceptionContext context;
        context.message = "error while cancelling the remaining tasks in duet::run()";
        context.exception = std::current_exception();
        loop.call_exception_handler(context);
      }
      try {
        if (hooks.before_close && !loop.is_closed()) hooks.before_close(loop);
      } catch (...) {
        ExceptionContext context;
        context.message = "error while shutting down in duet::run()";
        context.exception = std::current_exception();
        loop.call_exception_handler(context);
      }
      if (!loop.is_closed()) loop.close();
    }
  } shutdown{loop, hooks};
  Task<T> task = loop.create_task(std::move(main), "main");
  if (hooks.started) hooks.started(loop, task.ref());
  return loop.run_until_complete(Future<T>(task));
}

}  // namespace duet
