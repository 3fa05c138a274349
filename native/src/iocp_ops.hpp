// Overlapped operations on the loop's completion port (Windows), shared by
// the sock_* operations (io_iocp.cpp) and the stream transport
// (stream_io_iocp.cpp). Private to duet::native.
//
// An Op owns its OVERLAPPED and its buffer. From submission until its
// completion arrives the loop's IoService owns it, whatever happened to the
// caller meanwhile: a cancelled or closed operation is freed only when the
// system has said it is done with the memory. on_complete runs once, in
// process_events, unless the loop closed first.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "duet/future.hpp"
#include "duet/loop.hpp"
#include "duet/native/socket.hpp"
#include "duet/platform/iocp_backend.hpp"
#include "sys_socket.hpp"

namespace duet::native::iocp {

class IoService;

struct Op final : EventTarget {
  Op(IoService& owner, SOCKET s, std::string name) : service(&owner), socket(s), what(std::move(name)) {
    ov.target = this;
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  ~Op() {
    if (accepted != INVALID_SOCKET) ::closesocket(accepted);
  }

  void on_event(Loop& loop, const IoEvent& event) override;
  /// CancelIoEx for this operation, if it is still in flight.
  void cancel() noexcept;
  bool in_flight() const noexcept { return submitted && !completed; }

  platform::IocpOverlapped ov;
  IoService* service;
  SOCKET socket;
  std::string what;  // names the call in errors
  std::string buffer;
  SOCKET accepted = INVALID_SOCKET;  // AcceptEx: the new socket, until handed over
  /// (error, bytes): error is 0, or the Windows/Winsock error.
  std::function<void(int, std::size_t)> on_complete;
  bool submitted = false;
  bool completed = false;
};

/// A connection or server part that must let go when the loop closes.
class ShutdownHook {
 public:
  virtual void on_loop_shutdown() noexcept = 0;

 protected:
  ~ShutdownHook() = default;
};

class IoService final : public LoopService {
 public:
  explicit IoService(Loop& loop);
  ~IoService() override;

  Loop& loop() const noexcept { return loop_; }

  /// A new operation on `socket`, which is associated with this loop's
  /// port on first use (RuntimeError if it belongs to another loop).
  std::shared_ptr<Op> make(Socket& socket, std::string what);
  /// After the overlapped call, with call_error(ok) read right after it:
  /// 0 or WSA_IO_PENDING means a completion will come, and the service owns
  /// the op until then (returns 0). Otherwise the call failed at once and no
  /// completion will come: returns that error (the op is not in flight).
  int submitted(const std::shared_ptr<Op>& op, int error) noexcept;

  void add_hook(ShutdownHook* hook);
  void remove_hook(ShutdownHook* hook) noexcept;

  /// The loop closes: hooks let go (sockets close), every operation still in
  /// flight is cancelled without its callback, and their completions are
  /// awaited (bounded) so that their memory is freed safely.
  void shutdown() noexcept override;

 private:
  friend struct Op;
  std::shared_ptr<Op> release(Op* op) noexcept;

  Loop& loop_;
  platform::IocpBackend* backend_;
  std::unordered_map<Op*, std::shared_ptr<Op>> in_flight_;
  std::vector<ShutdownHook*> hooks_;
  bool closing_ = false;
};

/// The running loop's service (made on first use).
IoService& service_of(Loop& loop);

/// For an awaited operation, after its overlapped call (`error` as for
/// submitted()): a Future settled by the completion with the bytes
/// transferred, or OSError named after op->what. Throws that OSError at
/// once if the call failed. Cancelling the Future (the awaiting task is
/// cancelled) cancels the I/O; the op stays owned by the service until it
/// completes.
Future<std::size_t> completion(const std::shared_ptr<Op>& op, int error);

/// The overlapped call's error: 0 when it returned success, else
/// WSAGetLastError(). Read it right after the call, before anything else
/// can touch the thread's last error: a pending operation mistaken for a
/// failed one would be freed while the system still writes to it.
inline int call_error(bool ok) noexcept {
  return ok ? 0 : ::WSAGetLastError();
}

/// The most one WSABUF carries (its length is a ULONG); longer buffers go
/// in several operations.
inline constexpr std::size_t kMaxIo = std::size_t{1} << 30;

/// The operation was aborted: cancelled (CancelIoEx), or its socket was
/// closed. Windows reports ERROR_OPERATION_ABORTED for both; Wine 8 reports
/// a close as ERROR_HANDLES_CLOSED (STATUS_HANDLES_CLOSED).
inline bool aborted(int error) noexcept {
  return error == ERROR_OPERATION_ABORTED || error == sys::kErrorHandlesClosed;
}

inline SOCKET handle(const Socket& s) noexcept {
  return static_cast<SOCKET>(s.fileno());
}

}  // namespace duet::native::iocp
