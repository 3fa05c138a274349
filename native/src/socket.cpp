#include "duet/native/socket.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>

#include "duet/errors.hpp"
#include "sys_socket.hpp"
#ifdef _WIN32
#include "duet/platform/iocp_backend.hpp"
#else
#include <fcntl.h>

#include "duet/native/io.hpp"
#include "posix_compat.hpp"
#endif

namespace duet::native {

static_assert(sizeof(sockaddr_storage) <= 128);

// ---- errors ---------------------------------------------------------------------

namespace sys {

#ifdef _WIN32

int last_error() noexcept {
  return ::WSAGetLastError();
}

// Windows and Winsock errors, compared equal to the errc Python's errno
// table gives them (GCC 12's system_category maps none of the socket
// ones), so that `e.code() == std::errc::connection_refused` and the choice
// of OSError subclass work as on POSIX; value() stays the Windows error.
class WindowsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "windows"; }
  std::string message(int code) const override { return std::system_category().message(code); }
  std::error_condition default_error_condition(int code) const noexcept override {
    switch (code) {
      case WSAECONNREFUSED:
      case ERROR_CONNECTION_REFUSED:
      case ERROR_PORT_UNREACHABLE:
        return std::errc::connection_refused;
      case WSAEISCONN:
        return std::errc::already_connected;
      case WSAEALREADY:
        return std::errc::connection_already_in_progress;
      case WSAEINPROGRESS:
        return std::errc::operation_in_progress;
      case WSAENETDOWN:
        return std::errc::network_down;
      case WSAENETRESET:
        return std::errc::network_reset;
      case WSAEINTR:
        return std::errc::interrupted;
      case WSAECONNRESET:
      case ERROR_NETNAME_DELETED:
        return std::errc::connection_reset;
      case WSAECONNABORTED:
      case ERROR_CONNECTION_ABORTED:
        return std::errc::connection_aborted;
      case WSAESHUTDOWN:
      case ERROR_BROKEN_PIPE:
        return std::errc::broken_pipe;
      case WSAEWOULDBLOCK:
        return std::errc::operation_would_block;
      case WSAENOTSOCK:
        return std::errc::not_a_socket;
      case WSAEBADF:
      case ERROR_INVALID_HANDLE:
        return std::errc::bad_file_descriptor;
      case WSAEADDRINUSE:
        return std::errc::address_in_use;
      case WSAEADDRNOTAVAIL:
        return std::errc::address_not_available;
      case WSAETIMEDOUT:
      case ERROR_SEM_TIMEOUT:
        return std::errc::timed_out;
      case WSAENOTCONN:
      case ERROR_CONNECTION_INVALID:
        return std::errc::not_connected;
      case WSAEINVAL:
        return std::errc::invalid_argument;
      case WSAEMFILE:
        return std::errc::too_many_files_open;
      case WSAENOBUFS:
        return std::errc::no_buffer_space;
      case WSAEACCES:
      case ERROR_ACCESS_DENIED:
        return std::errc::permission_denied;
      case WSAEHOSTUNREACH:
      case ERROR_HOST_UNREACHABLE:
        return std::errc::host_unreachable;
      case WSAENETUNREACH:
      case ERROR_NETWORK_UNREACHABLE:
        return std::errc::network_unreachable;
      case WSAEAFNOSUPPORT:
        return std::errc::address_family_not_supported;
      case ERROR_OPERATION_ABORTED:
      case kErrorHandlesClosed:
        return std::errc::operation_canceled;
      default:
        return std::error_condition(code, *this);
    }
  }
};

std::exception_ptr os_error(int code, const std::string& what) {
  static const WindowsCategory category;
  return make_os_error(std::error_code(code, category), what);
}

void startup() {
  static std::once_flag once;
  std::call_once(once, [] {
    WSADATA data;
    if (const int rc = ::WSAStartup(MAKEWORD(2, 2), &data)) throw_os_error(rc, "WSAStartup()");
  });
}

#else

int last_error() noexcept {
  return errno;
}

std::exception_ptr os_error(int code, const std::string& what) {
  return make_os_error(std::error_code(code, std::generic_category()), what);
}

void startup() {}

#endif

void throw_os_error(int code, const std::string& what) {
  std::rethrow_exception(os_error(code, what));
}

}  // namespace sys

void throw_socket_error(const std::string& what) {
  sys::throw_os_error(sys::last_error(), what);
}

// ---- SocketAddress -------------------------------------------------------------

SocketAddress::SocketAddress() noexcept {
  std::memset(storage_, 0, sizeof storage_);
  reinterpret_cast<sockaddr*>(storage_)->sa_family = AF_UNSPEC;
}

SocketAddress::SocketAddress(std::string_view numeric_host, std::uint16_t port) : SocketAddress() {
  sys::startup();
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
  sys::startup();
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

const char* level_name(int how) {
  return how == 0 ? "shutdown(SHUT_RD)" : how == 1 ? "shutdown(SHUT_WR)" : "shutdown(SHUT_RDWR)";
}

#ifdef _WIN32
SOCKET native(NativeSocket fd) {
  return static_cast<SOCKET>(fd);
}
#else
int native(NativeSocket fd) {
  return fd;
}
#endif

}  // namespace

Socket::Socket(NativeSocket fd) : fd_(fd) {
  if (fd == kInvalidSocket) throw ValueError("Socket: invalid socket");
#ifndef _WIN32
  if (!compat::set_nonblocking_cloexec(fd)) {
    fd_ = kInvalidSocket;  // the caller keeps ownership when adoption fails
    throw_errno("fcntl(O_NONBLOCK)");
  }
#endif
}

#ifdef _WIN32
Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, kInvalidSocket)), port_id_(std::exchange(other.port_id_, 0)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, kInvalidSocket);
    port_id_ = std::exchange(other.port_id_, 0);
  }
  return *this;
}

Socket Socket::create(int family, int type, int protocol) {
  sys::startup();
  const SOCKET s = ::WSASocketW(family, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) throw_socket_error("socket()");
  return adopt(static_cast<NativeSocket>(s));
}

void Socket::associate(Loop& loop) {
  auto* backend = dynamic_cast<platform::IocpBackend*>(&loop.backend());
  if (!backend)
    throw RuntimeError("the loop's backend (" + std::string(loop.backend().name()) +
                       ") has no completion port; socket operations on Windows need the IOCP backend");
  if (port_id_ == backend->id()) return;
  if (port_id_ != 0)
    throw RuntimeError("socket " + std::to_string(fd_) +
                       " belongs to another loop's completion port (a socket serves one loop for life)");
  backend->associate(reinterpret_cast<HANDLE>(native(fd_)));
  port_id_ = backend->id();
}

void Socket::withdraw() noexcept {}

void Socket::close() noexcept {
  if (fd_ == kInvalidSocket) return;
  // Pending overlapped operations complete with ERROR_OPERATION_ABORTED;
  // each owns its memory until then.
  ::closesocket(native(std::exchange(fd_, kInvalidSocket)));
  port_id_ = 0;
}

NativeSocket Socket::detach() noexcept {
  port_id_ = 0;
  return std::exchange(fd_, kInvalidSocket);
}
#else
Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, kInvalidSocket)), table_(std::move(other.table_)) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, kInvalidSocket);
    table_ = std::move(other.table_);
  }
  return *this;
}

Socket Socket::create(int family, int type, int protocol) {
  const int fd = compat::socket(family, type, protocol);
  if (fd < 0) throw_errno("socket()");
  return adopt(fd);
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

NativeSocket Socket::detach() noexcept {
  withdraw();
  return std::exchange(fd_, kInvalidSocket);
}
#endif

Socket Socket::tcp(int family) {
  return create(family, SOCK_STREAM, IPPROTO_TCP);
}

void Socket::bind(const SocketAddress& address) {
  if (::bind(native(fd_), static_cast<const sockaddr*>(address.native()),
             static_cast<sys::socklen>(address.native_size())) != 0)
    throw_socket_error("bind(" + address.to_string() + ")");
}

void Socket::listen(int backlog) {
  if (::listen(native(fd_), backlog) != 0) throw_socket_error("listen()");
}

SocketAddress Socket::local_address() const {
  SocketAddress address;
  sys::socklen length = SocketAddress::capacity();
  if (::getsockname(native(fd_), static_cast<sockaddr*>(address.native()), &length) != 0)
    throw_socket_error("getsockname()");
  return address;
}

SocketAddress Socket::peer_address() const {
  SocketAddress address;
  sys::socklen length = SocketAddress::capacity();
  if (::getpeername(native(fd_), static_cast<sockaddr*>(address.native()), &length) != 0)
    throw_socket_error("getpeername()");
  return address;
}

void Socket::set_option(int level, int name, int value) {
  if (::setsockopt(native(fd_), level, name, reinterpret_cast<const char*>(&value), sizeof value) != 0)
    throw_socket_error("setsockopt()");
}

int Socket::get_option(int level, int name) const {
  int value = 0;
  sys::socklen length = sizeof value;
  if (::getsockopt(native(fd_), level, name, reinterpret_cast<char*>(&value), &length) != 0)
    throw_socket_error("getsockopt()");
  return value;
}

void Socket::shutdown(int how) {
  if (::shutdown(native(fd_), how) != 0) throw_socket_error(level_name(how));
}

}  // namespace duet::native
