#include "duet/native/run.hpp"

#include "duet/native/executor.hpp"
#if !defined(_WIN32)
#include <signal.h>

#include "duet/native/signals.hpp"
#else
#include <windows.h>

#include <atomic>
#endif

namespace duet::native::detail {

struct NativeRun::State {
  std::atomic<bool> interrupted = false;
  bool handling_sigint = false;
  Loop* loop = nullptr;
  TaskRef main;
};

#if defined(_WIN32)
namespace {
// The run whose main Ctrl+C cancels (one at a time, as SIGINT's).
std::atomic<NativeRun::State*> g_console_run{nullptr};
}  // namespace

// Windows calls console control handlers on a thread of its own: the
// cancellation is posted to the loop. The second Ctrl+C (or Ctrl+Break)
// before main is done returns FALSE: the next handler, by default
// ExitProcess, as asyncio's second Ctrl+C raises at once.
BOOL WINAPI console_ctrl_handler(DWORD event) {
  if (event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT) return FALSE;
  NativeRun::State* state = g_console_run.load();
  if (!state || state->interrupted.exchange(true)) return FALSE;
  try {
    state->loop->call_soon_threadsafe([state] { state->main.cancel(); });
  } catch (...) {
    return FALSE;  // the loop is closed: let the default handler act
  }
  return TRUE;
}
#endif

NativeRun::NativeRun() : state_(std::make_unique<State>()) {
  State* state = state_.get();
  hooks.started = [state](Loop& loop, TaskRef main) {
    state->loop = &loop;
    state->main = main;
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
#else
    // asyncio on Windows: Ctrl+C cancels main (via signal.set_wakeup_fd);
    // here through SetConsoleCtrlHandler, for one run at a time.
    NativeRun::State* none = nullptr;
    if (g_console_run.compare_exchange_strong(none, state) && ::SetConsoleCtrlHandler(console_ctrl_handler, TRUE))
      state->handling_sigint = true;
    else if (g_console_run.load() == state)
      g_console_run.store(nullptr);
#endif
  };
  // Main is done: Ctrl+C gets its default action back before the cleanup
  // (asyncio's Runner restores default_int_handler at the same point).
  hooks.main_done = [state](Loop& loop) {
#if !defined(_WIN32)
    if (state->handling_sigint && !loop.is_closed()) remove_signal_handler(loop, SIGINT);
    state->handling_sigint = false;
#else
    (void)loop;
    if (state->handling_sigint) {
      ::SetConsoleCtrlHandler(console_ctrl_handler, FALSE);
      g_console_run.store(nullptr);
    }
    state->handling_sigint = false;
#endif
    state->main = TaskRef();
  };
  hooks.before_close = [](Loop& loop) { shutdown_default_executor(loop); };
}

NativeRun::~NativeRun() = default;

bool NativeRun::interrupted() const noexcept {
  return state_->interrupted;
}

}  // namespace duet::native::detail
