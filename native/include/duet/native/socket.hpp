// duet/native/socket.hpp — sockets and socket addresses, as Python's socket
// module gives them to asyncio: a Socket owns a non-blocking fd and closes
// it; a SocketAddress is an IPv4 or IPv6 address and port.
//
// The awaitable operations on a Socket (sock_accept, sock_recv, ...) are in
// duet/native/io.hpp; this header is the synchronous part.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace duet::native {

class FdTable;

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

/// An owned socket fd, always non-blocking and close-on-exec. Closing it
/// (close() or the destructor) first withdraws it from the loop that
/// watches it, failing the operations that wait on it, then closes the fd.
class Socket {
 public:
  Socket() noexcept = default;
  /// Takes ownership of `fd` and makes it non-blocking.
  explicit Socket(int fd);
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close(); }

  /// socket(family, type, protocol), non-blocking; throws OSError.
  static Socket create(int family, int type, int protocol = 0);
  /// A TCP socket of the address's family.
  static Socket tcp(int family);
  /// Takes ownership of an fd that is already non-blocking (accept4 with
  /// SOCK_NONBLOCK) without a system call.
  static Socket adopt(int fd) noexcept {
    Socket s;
    s.fd_ = fd;
    return s;
  }

  int fileno() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }

  void bind(const SocketAddress& address);
  void listen(int backlog = 100);
  SocketAddress local_address() const;
  SocketAddress peer_address() const;
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  /// shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR.
  void shutdown(int how);

  /// Withdraws the fd from its loop, then closes it. Idempotent.
  void close() noexcept;
  /// Gives up ownership without closing; the fd is withdrawn from its loop.
  int detach() noexcept;

  /// The loop's fd table that watches this socket (set by the first wait).
  void attach(const std::shared_ptr<FdTable>& table) noexcept;

 private:
  void withdraw() noexcept;

  int fd_ = -1;
  std::weak_ptr<FdTable> table_;
};

/// Raises the OSError for the current errno, naming the call.
[[noreturn]] void throw_errno(const std::string& what);

}  // namespace duet::native
