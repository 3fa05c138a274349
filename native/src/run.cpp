#include "duet/native/run.hpp"

#include "duet/native/executor.hpp"
#if !defined(_WIN32)
#include <signal.h>

#include "duet/native/signals.hpp"
#endif

namespace duet::native::detail {

struct NativeRun::State {
  bool interrupted = false;
  bool handling_sigint = false;
  Loop* loop = nullptr;
};

NativeRun::NativeRun() : state_(std::make_unique<State>()) {
  State* state = state_.get();
  hooks.started = [state](Loop& loop, TaskRef main) {
    (void)main;
    state->loop = &loop;
#if !defined(_WIN32)
    struct sigaction current {};
    if (::sigaction(SIGINT, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
        !(current.sa_flags & SA_SIGINFO)) {
      native::add_signal_handler(loop, SIGINT, [state, main]() mutable {
        if (state->interrupted) {
          // The second Ctrl+C: the default action, now.
          remove_signal_handler(*state->loop, SIGINT);
          ::raise(SIGINT);
          return;
        }
        state->interrupted = true;
        main.cancel();
      });
      state->handling_sigint = true;
    }
#endif
  };
  // Main is done: Ctrl+C gets its default action back before the cleanup
  // (asyncio's Runner restores default_int_handler at the same point).
  hooks.main_done = [state](Loop& loop) {
#if !defined(_WIN32)
    if (state->handling_sigint && !loop.is_closed()) remove_signal_handler(loop, SIGINT);
    state->handling_sigint = false;
#else
    (void)state;
    (void)loop;
#endif
  };
  hooks.before_close = [](Loop& loop) { shutdown_default_executor(loop); };
}

NativeRun::~NativeRun() = default;

bool NativeRun::interrupted() const noexcept {
  return state_->interrupted;
}

}  // namespace duet::native::detail
