// duet/native/socket.hpp — sockets and socket addresses, as Python's socket
// module gives them to asyncio: a Socket owns a socket and closes it; a
// SocketAddress is an IPv4 or IPv6 address and port.
//
// On POSIX a Socket is a non-blocking, close-on-exec fd. On Windows it is
// an overlapped SOCKET (WSA_FLAG_OVERLAPPED, not inheritable) that the
// first operation associates with the running loop's completion port; from
// then on it belongs to that loop (a socket can be associated with one port
// only, for life), and an operation from another loop raises RuntimeError.
//
// The awaitable operations on a Socket (sock_accept, sock_recv, ...) are in
// duet/native/io.hpp; this header is the synchronous part.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "duet/loop.hpp"

namespace duet::native {

class FdTable;

/// What a socket is to the operating system: an fd on POSIX, a SOCKET
/// (an unsigned handle) on Windows; fileno() returns it.
#ifdef _WIN32
using NativeSocket = std::uintptr_t;
inline constexpr NativeSocket kInvalidSocket = ~NativeSocket{0};
#else
using NativeSocket = int;
inline constexpr NativeSocket kInvalidSocket = -1;
#endif

/// An IPv4 or IPv6 address with a port (a sockaddr_storage inside).
class SocketAddress {
 public:
  SocketAddress() noexcept;
  /// From a numeric host ("127.0.0.1", "::1") and a port; throws ValueError
  /// for anything that is not a numeric address.
  SocketAddress(std::string_view numeric_host, std::uint16_t port);
  /// From a sockaddr of `length` bytes (AF_INET or AF_INET6).
  static SocketAddress from_native(const void* sockaddr, std::size_t length);

  int family() const noexcept;  // AF_INET, AF_INET6, or AF_UNSPEC when empty
  std::string host() const;     // "127.0.0.1", "::1"
  std::uint16_t port() const noexcept;
  /// "127.0.0.1:8080", "[::1]:8080".
  std::string to_string() const;

  const void* native() const noexcept { return storage_; }
  void* native() noexcept { return storage_; }
  std::size_t native_size() const noexcept;
  static constexpr std::size_t capacity() noexcept { return kStorage; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  static constexpr std::size_t kStorage = 128;  // sizeof(sockaddr_storage)
  alignas(8) unsigned char storage_[kStorage];
};

/// An owned socket. Closing it (close() or the destructor) first withdraws
/// it from the loop that watches it, failing the operations that wait on
/// it (on Windows they complete aborted), then closes it.
class Socket {
 public:
  Socket() noexcept = default;
  /// Takes ownership of `fd`; on POSIX makes it non-blocking.
  explicit Socket(NativeSocket fd);
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close(); }

  /// socket(family, type, protocol), non-blocking (overlapped on
  /// Windows); throws OSError.
  static Socket create(int family, int type, int protocol = 0);
  /// A TCP socket of the address's family.
  static Socket tcp(int family);
  /// Takes ownership of a socket that is already set up (accept4 with
  /// SOCK_NONBLOCK, or AcceptEx's) without a system call.
  static Socket adopt(NativeSocket fd) noexcept {
    Socket s;
    s.fd_ = fd;
    return s;
  }

  NativeSocket fileno() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ != kInvalidSocket; }
  explicit operator bool() const noexcept { return is_open(); }

  void bind(const SocketAddress& address);
  void listen(int backlog = 100);
  SocketAddress local_address() const;
  SocketAddress peer_address() const;
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  /// shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR (on Windows SD_RECEIVE,
  /// SD_SEND, SD_BOTH, which have the same values).
  void shutdown(int how);

  /// Withdraws the socket from its loop, then closes it. Idempotent.
  void close() noexcept;
  /// Gives up ownership without closing; the socket is withdrawn from its
  /// loop (on Windows it stays associated with the loop's port: the
  /// system cannot undo that).
  NativeSocket detach() noexcept;

#ifdef _WIN32
  /// Associates the socket with `loop`'s completion port on first use;
  /// RuntimeError when it is associated with another loop's port, or the
  /// loop does not run on the IOCP backend.
  void associate(Loop& loop);
#else
  /// The loop's fd table that watches this socket (set by the first wait).
  void attach(const std::shared_ptr<FdTable>& table) noexcept;
#endif

 private:
  void withdraw() noexcept;

  NativeSocket fd_ = kInvalidSocket;
#ifdef _WIN32
  std::uint64_t port_id_ = 0;  // the completion port it is associated with (0: none yet)
#else
  std::weak_ptr<FdTable> table_;
#endif
};

/// Raises the OSError for the last socket error (errno; WSAGetLastError()
/// on Windows), naming the call.
[[noreturn]] void throw_socket_error(const std::string& what);
#ifndef _WIN32
/// Raises the OSError for the current errno, naming the call.
using duet::throw_errno;
#endif

}  // namespace duet::native
