// duet/native/io.hpp — fd readiness at the loop level (asyncio's
// add_reader/add_writer) and the awaitable socket operations (loop.sock_*).
//
// On POSIX every operation is "try, then wait": the system call is made at
// once on the non-blocking fd, and only when it would block does the
// operation register interest with the loop's readiness backend and wait
// for the fd to be ready, then try again (selector_events.py does the
// same).
//
// On Windows the same operations are "submit, then complete" over the
// loop's I/O completion port (asyncio's IocpProactor): sock_accept is
// AcceptEx, sock_connect ConnectEx, sock_recv_into WSARecv, sock_sendall
// WSASend. Each operation owns its OVERLAPPED and buffer and lives until
// its completion arrives, also when its caller is gone: cancelling it calls
// CancelIoEx and the memory is freed only when the cancelled completion has
// come, so no completion ever writes to freed memory. A recv that completed
// with data just as it was cancelled loses that data (asyncio's proactor
// does the same); the socket stays usable. add_reader/add_writer raise
// NotImplementedError there, as on asyncio's ProactorEventLoop.
//
// On POSIX each loop has one FdTable (a loop service, made on first use).
// Per fd it holds what waits for readability and for writability: a
// callback (add_reader), one waiting operation, or a transport's handler.
// It keeps the backend's interest equal to what is waiting, and when the
// backend reports readiness it schedules the callback, wakes the
// operation, or calls the handler.
//
// Cancelling an operation (its task is cancelled, or a timeout fires)
// withdraws it and leaves the socket usable; on POSIX bytes not yet
// received stay in the kernel for the next operation. On Windows a
// cancelled receive leaves the socket usable too, but a cancelled connect
// or send leaves it in an undefined state (Winsock's rule for cancelled
// overlapped I/O): close it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "duet/context.hpp"
#include "duet/coro.hpp"
#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/loop.hpp"
#include "duet/native/socket.hpp"

#ifndef _WIN32
namespace duet::platform {
class ReadinessBackend;
}
#endif

namespace duet::native {

enum class Direction : std::uint8_t { read = 0, write = 1 };

#ifndef _WIN32
/// What a transport implements to do its I/O as soon as the backend
/// reports readiness, inside process_events (no callback hop). It must not
/// run user code: it reads or writes, then wakes futures.
class FdHandler {
 public:
  virtual void on_ready(Direction direction) = 0;
  /// The loop is closing: let go of the fd (its table is going away).
  virtual void on_shutdown() noexcept {}

 protected:
  ~FdHandler() = default;
};

class FdTable : public std::enable_shared_from_this<FdTable> {
 public:
  FdTable(Loop& loop, platform::ReadinessBackend& backend);
  FdTable(const FdTable&) = delete;
  FdTable& operator=(const FdTable&) = delete;
  ~FdTable();

  Loop& loop() const noexcept { return loop_; }

  /// asyncio's add_reader/add_writer: fn runs as a loop callback, in
  /// `context`, each iteration the fd is ready, until removed. Replaces a
  /// callback already there; RuntimeError if an operation or a transport
  /// waits in that direction.
  void add_callback(int fd, Direction direction, std::function<void()> fn, Context context);
  /// Removes the callback; false if there was none.
  bool remove_callback(int fd, Direction direction);

  /// A future that is done when the fd is ready in `direction` (or has an
  /// error). One operation at a time per fd and direction: RuntimeError
  /// names the fd otherwise. Pair with cancel_wait().
  Future<void> wait(int fd, Direction direction);
  /// Withdraws a wait that is still registered (it was cancelled, or its
  /// awaiting frame is destroyed). No-op when that wait already fired.
  void cancel_wait(int fd, Direction direction, const duet::detail::FutureBase* which) noexcept;

  /// A transport's handler, called in process_events while registered.
  void set_handler(int fd, Direction direction, FdHandler* handler);
  void clear_handler(int fd, Direction direction) noexcept;

  /// The fd is about to be closed: its interest is withdrawn, its waiting
  /// operations fail with OSError(EBADF), its callbacks and handlers are
  /// dropped.
  void forget(int fd) noexcept;

  /// Withdraws everything (the loop closes).
  void shutdown() noexcept;

 private:
  struct Watch;
  Watch& watch_of(int fd);       // made on first use
  Watch* find(int fd) noexcept;  // nullptr when never watched
  void update_interest(Watch& watch, bool force = false);

  Loop& loop_;
  platform::ReadinessBackend* backend_;
  std::vector<std::unique_ptr<Watch>> watches_;  // by fd; kept for the table's life
};

/// The fd table of `loop` (made on first use). Throws RuntimeError when the
/// loop's backend is not a readiness backend.
const std::shared_ptr<FdTable>& fd_table(Loop& loop);

#endif

// ---- asyncio's loop.add_reader / add_writer ------------------------------------------

#ifdef _WIN32
namespace detail {
[[noreturn]] void readiness_not_implemented(const char* what);
}
/// Not on Windows' completion-port loop: NotImplementedError, as asyncio's
/// ProactorEventLoop raises.
template <class F, class... Args>
void add_reader(Loop&, NativeSocket, F&&, Args&&...) {
  detail::readiness_not_implemented("add_reader");
}
template <class F, class... Args>
void add_writer(Loop&, NativeSocket, F&&, Args&&...) {
  detail::readiness_not_implemented("add_writer");
}
bool remove_reader(Loop& loop, NativeSocket fd);
bool remove_writer(Loop& loop, NativeSocket fd);

/// Overlapped operations submitted and not yet completed, in the process
/// (for tests and leak checks: it returns to its old value once every
/// socket is closed and the loop has run).
std::size_t overlapped_operations_in_flight() noexcept;
#else
/// fn(args...) runs as a callback whenever fd is readable, in a copy of
/// the current context, until remove_reader (loop.add_reader).
template <class F, class... Args>
void add_reader(Loop& loop, int fd, F&& fn, Args&&... args) {
  fd_table(loop)->add_callback(
      fd, Direction::read, [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable { fn(args...); },
      copy_context());
}
template <class F, class... Args>
void add_writer(Loop& loop, int fd, F&& fn, Args&&... args) {
  fd_table(loop)->add_callback(
      fd, Direction::write, [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable { fn(args...); },
      copy_context());
}
bool remove_reader(Loop& loop, int fd);
bool remove_writer(Loop& loop, int fd);

// ---- awaitable socket operations (on the running loop) ---------------------------------

/// Awaits readiness of `socket` in `direction` through the running loop's
/// fd table; withdrawn when the awaiting coroutine is cancelled.
class ReadyAwaiter {
 public:
  ReadyAwaiter(Socket& socket, Direction direction);
  ReadyAwaiter(const ReadyAwaiter&) = delete;
  ReadyAwaiter& operator=(const ReadyAwaiter&) = delete;
  ~ReadyAwaiter() { table_->cancel_wait(fd_, direction_, future_.base()); }

  bool await_ready() const noexcept { return future_.done(); }
  void await_suspend(coro::coroutine_handle<> where) { future_.operator co_await().await_suspend(where); }
  void await_resume() { future_.operator co_await().await_resume(); }

 private:
  std::shared_ptr<FdTable> table_;
  int fd_;
  Direction direction_;
  Future<void> future_;
};
#endif

// ---- awaitable socket operations (on the running loop) ---------------------------------

/// Accepts a connection (loop.sock_accept): the new socket (non-blocking)
/// and the peer's address.
Coro<std::pair<Socket, SocketAddress>> sock_accept(Socket& listener);
/// Connects (loop.sock_connect); ConnectionRefusedError etc. on failure.
Coro<void> sock_connect(Socket& socket, SocketAddress address);
/// Receives up to buffer.size() bytes; 0 means EOF (loop.sock_recv_into).
Coro<std::size_t> sock_recv_into(Socket& socket, std::span<char> buffer);
/// Receives up to max_bytes; empty means EOF (loop.sock_recv).
Coro<std::string> sock_recv(Socket& socket, std::size_t max_bytes);
/// Sends all of `data` (loop.sock_sendall). `data` must stay valid until
/// the operation is done. Cancelled midway, part of it may have been sent.
Coro<void> sock_sendall(Socket& socket, std::string_view data);

}  // namespace duet::native
