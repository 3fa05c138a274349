// duet/native/run.hpp — duet::run(main()), as asyncio.run(main()): a fresh
// loop on this system's backend, main run to completion, remaining tasks
// cancelled and finished, the default executor shut down (its jobs' results
// delivered), the loop closed; main's result returned or its exception
// rethrown. See duet/run.hpp for the exact sequence.
//
// SIGINT (POSIX): while main runs, and when SIGINT has its default
// disposition (nobody, e.g. a host program, installed a handler), Ctrl+C
// cancels the main task instead of killing the process, so that its
// cleanup runs; run() then throws KeyboardInterrupt, as asyncio.Runner
// does. A second Ctrl+C before main has finished kills the process the
// default way. The disposition is restored as soon as main is done, before
// the remaining tasks are cancelled (asyncio.Runner does the same).
#pragma once

#include <memory>

#include "duet/native/event_loop.hpp"
#include "duet/run.hpp"

namespace duet {

namespace native::detail {
/// The hooks native run() adds to run_main, with the state they share.
struct NativeRun {
  NativeRun();
  ~NativeRun();
  NativeRun(const NativeRun&) = delete;
  NativeRun& operator=(const NativeRun&) = delete;
  RunHooks hooks;
  /// Whether SIGINT cancelled main (then run() throws KeyboardInterrupt).
  bool interrupted() const noexcept;

  struct State;

 private:
  std::unique_ptr<State> state_;
};
#if defined(_WIN32)
/// The console control handler run() installs (exposed for tests: Windows
/// calls it on a thread of its own with CTRL_C_EVENT).
int __stdcall console_ctrl_handler(unsigned long event);
#endif
}  // namespace native::detail

template <class T>
T run(Coro<T> main, LoopOptions options = {}) {
  if (running_loop()) throw RuntimeError("duet::run() cannot be called from a running event loop");
  auto loop = native::new_event_loop(options);
  native::detail::NativeRun native_run;
  try {
    return run_main(*loop, std::move(main), native_run.hooks);
  } catch (const CancelledError&) {
    if (native_run.interrupted()) throw KeyboardInterrupt();
    throw;
  }
}

}  // namespace duet
