// duet/platform/epoll_backend.hpp — the Linux readiness backend.
// Declared without OS headers; the essay on epoll is in the .cpp.
#pragma once

#include <optional>
#include <vector>

#include "duet/platform/readiness_backend.hpp"

namespace duet::platform {

class EpollBackend final : public ReadinessBackend {
 public:
  /// Creates the epoll instance and its eventfd; throws OSError.
  EpollBackend();
  EpollBackend(const EpollBackend&) = delete;
  EpollBackend& operator=(const EpollBackend&) = delete;
  ~EpollBackend() override;

  void wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) override;
  void wake() noexcept override;
  std::string_view name() const noexcept override { return "epoll"; }

  void watch(int fd, std::uint32_t interest, EventTarget* target) override;
  void unwatch(int fd) noexcept override;
  /// The epoll fd: readable whenever wait() would not block, so a host loop
  /// (GLib, libuv) can poll it in embedded mode.
  int pollable_fd() const noexcept override { return epoll_fd_; }

 private:
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<bool> watched_;  // by fd: in the epoll set (ADD vs MOD)
};

}  // namespace duet::platform
