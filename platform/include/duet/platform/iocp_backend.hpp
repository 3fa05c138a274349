// duet/platform/iocp_backend.hpp — Windows I/O completion ports (the
// completion model; asyncio's IocpProactor, libuv's src/win).
//
// One completion port per loop. wait() takes completions in batches of up
// to 64 with GetQueuedCompletionStatusEx, for at most the loop's timeout,
// and reports each as an IoEvent for the operation's target with
// `result` = bytes transferred; the target reads the operation's status
// itself (WSAGetOverlappedResult). wake() posts one completion with a
// reserved key, which wait() swallows: the loop coalesces wakes, so a
// burst of posts costs one.
//
// Operations are submitted by the layer that owns the handles (native/):
// it associates each handle with the port (associate()) and passes an
// IocpOverlapped whose `target` is told when that operation completes.
// A completion is delivered exactly once per submitted operation, also
// for a cancelled one (CancelIoEx, closesocket) — whoever owns the
// OVERLAPPED and its buffers keeps them alive until then.
//
// Timers: waits take whole milliseconds and Windows ends them on its clock
// tick (15.6 ms by default, 1 ms after timeBeginPeriod). The timeout is
// rounded up; a wait that ends before the deadline in loop time (it can,
// by up to a tick) finds no timer due, and the loop waits again for the
// rest, so timers are never early — late by up to a tick.
#pragma once

// winsock2.h must come before windows.h.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <cstdint>
#include <optional>
#include <vector>

#include "duet/backend.hpp"

namespace duet::platform {

/// An OVERLAPPED that knows who to tell when it completes.
struct IocpOverlapped : OVERLAPPED {
  IocpOverlapped() : OVERLAPPED{} {}
  EventTarget* target = nullptr;
};

class IocpBackend final : public Backend {
 public:
  IocpBackend();
  IocpBackend(const IocpBackend&) = delete;
  IocpBackend& operator=(const IocpBackend&) = delete;
  ~IocpBackend() override;

  void wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) override;
  void wake() noexcept override;
  std::string_view name() const noexcept override { return "iocp"; }

  /// Associates a handle (a socket) with this port; its overlapped
  /// operations complete here. Throws OSError.
  void associate(HANDLE handle);
  HANDLE port() const noexcept { return port_; }
  /// Unique in the process, never reused (sockets remember their port by
  /// it: a new port may get a freed one's address).
  std::uint64_t id() const noexcept { return id_; }

  /// Completions taken by wait() so far (wakeups excluded).
  std::uint64_t completions() const noexcept { return completions_; }

 private:
  static constexpr ULONG_PTR kWakeKey = 0x5754'414b;  // "WAKE"
  static constexpr ULONG_PTR kIoKey = 1;
  HANDLE port_;
  std::uint64_t id_;
  std::vector<OVERLAPPED_ENTRY> entries_;
  std::uint64_t completions_ = 0;
};

}  // namespace duet::platform
