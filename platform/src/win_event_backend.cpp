// The Windows backend until the IOCP one lands: it performs no I/O and
// waits on one auto-reset event object, which wake() sets.
//
// Windows waits take milliseconds and, by default, end on a system tick
// (about 15.6 ms). The timeout is rounded up to whole milliseconds; a wait
// may still end up to a tick *later* than asked, never earlier in loop
// time, and process_ready runs a timer only once time() has reached its
// deadline, so timers are late by at most a tick and never early.
#include <windows.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

#include "duet/errors.hpp"
#include "duet/platform/platform.hpp"

namespace duet::platform {
namespace {

class WinEventBackend final : public Backend {
 public:
  WinEventBackend() : event_(::CreateEventW(nullptr, FALSE, FALSE, nullptr)) {
    if (!event_) throw std::system_error(static_cast<int>(::GetLastError()), std::system_category(), "CreateEventW");
  }
  WinEventBackend(const WinEventBackend&) = delete;
  WinEventBackend& operator=(const WinEventBackend&) = delete;
  ~WinEventBackend() override { ::CloseHandle(event_); }

  void wait(std::optional<Duration> timeout, std::vector<IoEvent>&) override {
    DWORD ms = INFINITE;
    if (timeout) {
      auto rounded = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
      ms = rounded <= 0 ? 0 : rounded >= static_cast<long long>(INFINITE) ? INFINITE - 1 : static_cast<DWORD>(rounded);
    }
    DWORD r = ::WaitForSingleObject(event_, ms);
    if (r == WAIT_FAILED)
      throw std::system_error(static_cast<int>(::GetLastError()), std::system_category(), "WaitForSingleObject");
  }

  void wake() noexcept override { ::SetEvent(event_); }
  std::string_view name() const noexcept override { return "win-event"; }

 private:
  HANDLE event_;
};

}  // namespace

std::unique_ptr<Backend> make_default_backend() { return std::make_unique<WinEventBackend>(); }

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name.empty()) return make_default_backend();
  throw ValueError("duet: no backend named '" + std::string(name) + "' in this build");
}

}  // namespace duet::platform
