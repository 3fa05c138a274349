// duet/native/iocp.hpp — TCP sockets on Windows over the loop's I/O
// completion port (platform::IocpBackend): asyncio's IocpProactor
// (windows_events.py) as coroutines.
//
//   duet::native::iocp::Socket listener = duet::native::iocp::Socket::tcp(loop);
//   listener.bind(duet::native::iocp::Address::ipv4("127.0.0.1", 0));
//   listener.listen();
//   duet::native::iocp::Socket peer = co_await duet::native::iocp::accept(listener);   // AcceptEx
//   std::size_t n = co_await duet::native::iocp::recv(peer, buffer);                   // WSARecv; 0 at EOF
//   co_await duet::native::iocp::send_all(peer, reply);                                // WSASend until all sent
//
// Every operation is one overlapped call whose completion the backend
// delivers to the operation, which then settles the Future the caller
// awaits. The operation owns its OVERLAPPED and its buffers, and lives until
// its completion has arrived — also when the caller is gone:
//
//   * Cancelling the awaiting task cancels the Future at once and calls
//     CancelIoEx for that operation; the kernel's cancelled completion
//     arrives later and only then is the operation (and the memory the
//     kernel was writing to) freed. No completion ever touches freed memory.
//     A recv that completed with data just as it was cancelled loses that
//     data (asyncio's proactor does the same); the socket stays usable.
//   * Closing a socket with operations pending (close(), or the Socket
//     destroyed) makes them complete with ERROR_OPERATION_ABORTED: their
//     Futures fail with OSError.
//
// Errors are duet's OSError tree: ConnectionRefusedError for
// WSAECONNREFUSED/ERROR_CONNECTION_REFUSED, ConnectionResetError for
// WSAECONNRESET/ERROR_NETNAME_DELETED, ConnectionAbortedError for
// WSAECONNABORTED/ERROR_CONNECTION_ABORTED; code() is the Windows error in
// std::system_category().
#pragma once

#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "duet/coro.hpp"
#include "duet/loop.hpp"

namespace duet::native::iocp {

/// An IPv4 or IPv6 socket address.
struct Address {
  sockaddr_storage storage{};
  int length = 0;

  /// A numeric IPv4 or IPv6 address and a port; ValueError otherwise.
  static Address ip(std::string_view host, std::uint16_t port);
  static Address ipv4(std::string_view host, std::uint16_t port) { return ip(host, port); }
  std::uint16_t port() const noexcept;
  int family() const noexcept { return storage.ss_family; }
  std::string to_string() const;
};

/// An overlapped TCP socket associated with a loop's completion port.
class Socket {
 public:
  Socket() noexcept = default;
  /// A new TCP socket (family AF_INET or AF_INET6) on `loop`, which must
  /// use the IOCP backend (the default on Windows). Throws OSError.
  static Socket tcp(Loop& loop, int family = AF_INET);
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  /// Closes the socket: pending operations complete with an error.
  ~Socket() { close(); }

  void bind(const Address& address);
  void listen(int backlog = SOMAXCONN);
  Address local_address() const;
  Address peer_address() const;
  /// setsockopt(TCP_NODELAY).
  void set_nodelay(bool on);
  /// shutdown(SD_SEND): the peer reads EOF.
  void shutdown_send();
  void close() noexcept;

  SOCKET handle() const noexcept { return socket_; }
  bool is_open() const noexcept { return socket_ != INVALID_SOCKET; }
  Loop& loop() const noexcept { return *loop_; }
  int family() const noexcept { return family_; }

 private:
  Socket(Loop& loop, SOCKET s, int family) noexcept : loop_(&loop), socket_(s), family_(family) {}
  friend Coro<Socket> accept(Socket& listener);
  Loop* loop_ = nullptr;
  SOCKET socket_ = INVALID_SOCKET;
  int family_ = AF_INET;
};

/// AcceptEx: the next connection on a listening socket.
Coro<Socket> accept(Socket& listener);
/// ConnectEx (binding to the wildcard address first, as ConnectEx needs).
Coro<void> connect(Socket& socket, Address address);
/// WSARecv into `buffer`: the number of bytes received, 0 at EOF.
Coro<std::size_t> recv(Socket& socket, std::span<char> buffer);
/// WSASend until every byte is sent.
Coro<void> send_all(Socket& socket, std::span<const char> data);

/// Operations submitted and not yet completed (for tests: after every
/// socket is closed and the loop ran, this returns to what it was).
std::size_t operations_in_flight() noexcept;

}  // namespace duet::native::iocp
