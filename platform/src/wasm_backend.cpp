// The Emscripten backend for blocking runs (run_forever under Node or in a
// Worker): wasm must never block its JavaScript thread, so wait() returns
// at once and performs no I/O. run_forever() with only a future timer
// pending therefore spins until the timer is due, and no JavaScript callback
// (a settled promise, a host timer) runs meanwhile. On the browser's main
// thread a blocking run is refused outright; the web driver
// (duet/web/driver.hpp) runs the loop as a guest of the JavaScript event
// loop instead.
#include <emscripten.h>

#include <memory>

#include "duet/errors.hpp"
#include "duet/platform/platform.hpp"

namespace duet::platform {
namespace {

class NonBlockingBackend final : public Backend {
 public:
  void wait(std::optional<Duration> timeout, std::vector<IoEvent>&) override {
    // Nothing is scheduled and nothing can arrive (one thread, no I/O): a
    // real wait would never end. Say so instead of hanging the page.
    if (!timeout)
      throw RuntimeError(
          "duet: the loop has nothing scheduled and would wait forever; on the web the loop "
          "must run as a guest of the JavaScript event loop");
  }
  void wake() noexcept override {}
  std::string_view name() const noexcept override { return "wasm-nonblocking"; }
  const char* blocking_run_refusal() const noexcept override { return platform::blocking_run_refusal(); }
};

}  // namespace

bool on_browser_main_thread() noexcept {
  // A window with a document: the page's own thread (not a Worker, not Node).
  return EM_ASM_INT({ return (typeof window === 'object' && typeof document === 'object') ? 1 : 0; }) != 0;
}

const char* blocking_run_refusal() noexcept {
  if (!on_browser_main_thread()) return nullptr;
  return "duet: run_forever()/run_until_complete() cannot run on the browser's main thread: they would "
         "block it, so the page could neither render nor deliver the events the loop waits for. Use "
         "duet::web::start(main) (duet/web/driver.hpp), which runs the loop as a guest of the browser's "
         "event loop and returns at once";
}

std::unique_ptr<Backend> make_default_backend() { return std::make_unique<NonBlockingBackend>(); }

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name.empty()) return make_default_backend();
  throw ValueError("duet: no backend named '" + std::string(name) + "' in this build");
}

}  // namespace duet::platform
