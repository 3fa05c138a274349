#include "duet/native/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "duet/errors.hpp"
#include "duet/native/io.hpp"
#include "posix_compat.hpp"

namespace duet::native {

static_assert(sizeof(sockaddr_storage) <= 128);

void throw_errno(const std::string& what) {
  const int err = errno;
  throw_os_error(std::error_code(err, std::generic_category()), what);
}

// ---- SocketAddress -------------------------------------------------------------

SocketAddress::SocketAddress() noexcept {
  std::memset(storage_, 0, sizeof storage_);
  reinterpret_cast<sockaddr*>(storage_)->sa_family = AF_UNSPEC;
}

SocketAddress::SocketAddress(std::string_view numeric_host, std::uint16_t port) : SocketAddress() {
  std::string host(numeric_host);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(storage_);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(storage_);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return;
  }
  throw ValueError("not a numeric IPv4 or IPv6 address: '" + host + "'");
}

SocketAddress SocketAddress::from_native(const void* address, std::size_t length) {
  SocketAddress result;
  if (length > sizeof result.storage_) throw ValueError("socket address too long");
  std::memcpy(result.storage_, address, length);
  return result;
}

int SocketAddress::family() const noexcept {
  return reinterpret_cast<const sockaddr*>(storage_)->sa_family;
}

std::size_t SocketAddress::native_size() const noexcept {
  switch (family()) {
    case AF_INET:
      return sizeof(sockaddr_in);
    case AF_INET6:
      return sizeof(sockaddr_in6);
    default:
      return sizeof(sockaddr_storage);
  }
}

std::string SocketAddress::host() const {
  char text[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(storage_)->sin_addr, text, sizeof text);
  else if (family() == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(storage_)->sin6_addr, text, sizeof text);
  return text;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const {
  if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  if (family() == AF_INET) return host() + ":" + std::to_string(port());
  return "<no address>";
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.family() == b.family() && a.port() == b.port() && a.host() == b.host();
}

// ---- Socket -------------------------------------------------------------------------

namespace {

void make_non_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
}

}  // namespace

Socket::Socket(int fd) : fd_(fd) {
  if (fd < 0) throw ValueError("Socket: invalid fd " + std::to_string(fd));
  try {
    make_non_blocking(fd);
  } catch (...) {
    fd_ = -1;  // the caller keeps ownership when adoption fails
    throw;
  }
}

Socket::Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)), table_(std::move(other.table_)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    table_ = std::move(other.table_);
  }
  return *this;
}

Socket Socket::create(int family, int type, int protocol) {
  const int fd = compat::socket(family, type, protocol);
  if (fd < 0) throw_errno("socket()");
  Socket s;
  s.fd_ = fd;
  return s;
}

Socket Socket::tcp(int family) {
  return create(family, SOCK_STREAM);
}

void Socket::bind(const SocketAddress& address) {
  if (::bind(fd_, static_cast<const sockaddr*>(address.native()), static_cast<socklen_t>(address.native_size())) < 0)
    throw_errno("bind(" + address.to_string() + ")");
}

void Socket::listen(int backlog) {
  if (::listen(fd_, backlog) < 0) throw_errno("listen()");
}

SocketAddress Socket::local_address() const {
  SocketAddress address;
  socklen_t length = SocketAddress::capacity();
  if (::getsockname(fd_, static_cast<sockaddr*>(address.native()), &length) < 0) throw_errno("getsockname()");
  return address;
}

SocketAddress Socket::peer_address() const {
  SocketAddress address;
  socklen_t length = SocketAddress::capacity();
  if (::getpeername(fd_, static_cast<sockaddr*>(address.native()), &length) < 0) throw_errno("getpeername()");
  return address;
}

void Socket::set_option(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) < 0) throw_errno("setsockopt()");
}

int Socket::get_option(int level, int name) const {
  int value = 0;
  socklen_t length = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &length) < 0) throw_errno("getsockopt()");
  return value;
}

void Socket::shutdown(int how) {
  if (::shutdown(fd_, how) < 0) throw_errno("shutdown()");
}

void Socket::attach(const std::shared_ptr<FdTable>& table) noexcept {
  if (table_.expired()) table_ = table;
}

void Socket::withdraw() noexcept {
  if (std::shared_ptr<FdTable> table = table_.lock()) table->forget(fd_);
  table_.reset();
}

void Socket::close() noexcept {
  if (fd_ < 0) return;
  withdraw();
  ::close(fd_);  // even on EINTR the fd is gone (Linux, POSIX.1-2024)
  fd_ = -1;
}

int Socket::detach() noexcept {
  withdraw();
  return std::exchange(fd_, -1);
}

}  // namespace duet::native
