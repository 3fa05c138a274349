// duet/platform/kqueue_backend.hpp — the readiness backend of macOS and the
// BSDs. Declared without OS headers; the essay on kqueue is in the .cpp.
// Untested here: no BSD or macOS machine was available.
#pragma once

#include <optional>
#include <vector>

#include "duet/platform/readiness_backend.hpp"

namespace duet::platform {

class KqueueBackend final : public ReadinessBackend {
 public:
  /// Creates the kqueue and its EVFILT_USER wakeup; throws OSError.
  KqueueBackend();
  KqueueBackend(const KqueueBackend&) = delete;
  KqueueBackend& operator=(const KqueueBackend&) = delete;
  ~KqueueBackend() override;

  void wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) override;
  void wake() noexcept override;
  std::string_view name() const noexcept override { return "kqueue"; }

  void watch(int fd, std::uint32_t interest, EventTarget* target) override;
  void unwatch(int fd) noexcept override;
  /// The kqueue fd: readable whenever wait() would not block, so a host
  /// loop can poll it in embedded mode.
  int pollable_fd() const noexcept override { return kqueue_fd_; }

 private:
  int kqueue_fd_ = -1;
};

}  // namespace duet::platform
