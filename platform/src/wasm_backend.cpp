// The Emscripten backend until the browser driver lands: wasm on the main
// thread must never block, so wait() returns at once and performs no I/O.
// run_forever() with only a future timer pending therefore spins until the
// timer is due; this is acceptable for the test runner under Node and is
// exactly what the web driver (which schedules host macrotasks and one
// setTimeout instead of calling wait) replaces.
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
};

}  // namespace

std::unique_ptr<Backend> make_default_backend() { return std::make_unique<NonBlockingBackend>(); }

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name.empty()) return make_default_backend();
  throw ValueError("duet: no backend named '" + std::string(name) + "' in this build");
}

}  // namespace duet::platform
