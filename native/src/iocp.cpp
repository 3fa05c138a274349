#include "duet/native/iocp.hpp"

#include <mswsock.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/platform/iocp_backend.hpp"

namespace duet::native::iocp {
namespace {

std::atomic<std::size_t> g_in_flight{0};

void startup() {
  static std::once_flag once;
  std::call_once(once, [] {
    WSADATA data;
    if (int rc = ::WSAStartup(MAKEWORD(2, 2), &data))
      throw OSError(std::error_code(rc, std::system_category()), "WSAStartup");
  });
}

// The OSError subclass Python would raise, for a Windows or Winsock error.
std::exception_ptr os_error(int code, const std::string& what) {
  const std::error_code ec(code, std::system_category());
  const std::string text = what + ": " + ec.message();
  switch (code) {
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED:
      return std::make_exception_ptr(ConnectionRefusedError(ec, text));
    case WSAECONNRESET:
    case ERROR_NETNAME_DELETED:
      return std::make_exception_ptr(ConnectionResetError(ec, text));
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED:
      return std::make_exception_ptr(ConnectionAbortedError(ec, text));
    default:
      return std::make_exception_ptr(OSError(ec, text));
  }
}
[[noreturn]] void throw_wsa(const std::string& what) {
  std::rethrow_exception(os_error(::WSAGetLastError(), what));
}

// One overlapped operation. It owns its OVERLAPPED and buffers and keeps
// itself alive (self) from submission until its completion arrives.
struct Op final : EventTarget {
  platform::IocpOverlapped ov;
  SOCKET socket;
  std::vector<char> buffer;
  SOCKET accepted = INVALID_SOCKET;  // AcceptEx: the new socket until handed over
  Future<std::size_t> done;
  std::shared_ptr<Op> self;
  const char* what;

  Op(Loop& loop, SOCKET s, const char* name) : socket(s), done(loop), what(name) { ov.target = this; }
  ~Op() {
    if (accepted != INVALID_SOCKET) ::closesocket(accepted);
  }

  void on_event(Loop&, const IoEvent&) override {
    DWORD bytes = 0;
    // The status is in the OVERLAPPED itself; the handle is not used when
    // not waiting (the socket may be closed by now).
    const BOOL ok = ::GetOverlappedResult(reinterpret_cast<HANDLE>(socket), &ov, &bytes, FALSE);
    const int error = ok ? 0 : static_cast<int>(::GetLastError());
    std::shared_ptr<Op> keep = std::move(self);  // freed when this returns, unless awaited
    g_in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (done.done()) return;  // cancelled: the result is dropped
    if (error) {
      done.set_exception(os_error(error, what));
    } else {
      done.set_result(bytes);
    }
  }
};

std::shared_ptr<Op> new_op(Socket& s, const char* what) {
  if (!s.is_open())
    throw OSError(std::error_code(WSAENOTSOCK, std::system_category()), std::string(what) + ": the socket is closed");
  return std::make_shared<Op>(s.loop(), s.handle(), what);
}

// After the submitting call: either pending/succeeded (a completion will
// come), or failed at once (none will).
void submitted(const std::shared_ptr<Op>& op, bool ok) {
  if (!ok) {
    const int error = ::WSAGetLastError();
    if (error != WSA_IO_PENDING) std::rethrow_exception(os_error(error, op->what));
  }
  op->self = op;
  g_in_flight.fetch_add(1, std::memory_order_relaxed);
  // Cancelling the awaiting task cancels `done`: cancel the I/O too. The
  // operation stays alive until the cancelled completion arrives.
  std::weak_ptr<Op> weak = op;
  op->done.add_done_callback([weak](const Future<std::size_t>& f) {
    if (!f.cancelled()) return;
    if (std::shared_ptr<Op> o = weak.lock())
      if (o->self) ::CancelIoEx(reinterpret_cast<HANDLE>(o->socket), &o->ov);
  });
}

Coro<std::size_t> wait(std::shared_ptr<Op> op) {
  Future<std::size_t> done = op->done;
  std::size_t n = co_await done;
  co_return n;
}

template <class Fn>
Fn extension(SOCKET s, GUID guid) {
  Fn fn = nullptr;
  DWORD bytes = 0;
  if (::WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn, sizeof fn, &bytes, nullptr, nullptr))
    throw_wsa("WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)");
  return fn;
}

}  // namespace

// ---- Address ----------------------------------------------------------------

Address Address::ip(std::string_view host, std::uint16_t port) {
  startup();
  Address a;
  const std::string h(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = ::htons(port);
    a.length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = ::htons(port);
    a.length = sizeof(sockaddr_in6);
  } else {
    throw ValueError("duet::native::iocp::Address: not a numeric IP address: '" + h + "'");
  }
  return a;
}

std::uint16_t Address::port() const noexcept {
  if (storage.ss_family == AF_INET6) return ::ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return ::ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

std::string Address::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(port());
  }
  ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(port());
}

// ---- Socket -----------------------------------------------------------------

Socket Socket::tcp(Loop& loop, int family) {
  startup();
  auto* backend = dynamic_cast<platform::IocpBackend*>(&loop.backend());
  if (!backend) throw RuntimeError("duet::native::iocp::Socket needs a loop on the IOCP backend");
  SOCKET s =
      ::WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) throw_wsa("WSASocketW");
  try {
    backend->associate(reinterpret_cast<HANDLE>(s));
  } catch (...) {
    ::closesocket(s);
    throw;
  }
  return Socket(loop, s, family);
}

Socket::Socket(Socket&& other) noexcept
    : loop_(other.loop_), socket_(std::exchange(other.socket_, INVALID_SOCKET)), family_(other.family_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    loop_ = other.loop_;
    socket_ = std::exchange(other.socket_, INVALID_SOCKET);
    family_ = other.family_;
  }
  return *this;
}

void Socket::close() noexcept {
  if (socket_ == INVALID_SOCKET) return;
  ::closesocket(std::exchange(socket_, INVALID_SOCKET));  // pending operations complete, aborted
}

void Socket::bind(const Address& address) {
  if (::bind(socket_, reinterpret_cast<const sockaddr*>(&address.storage), address.length)) throw_wsa("bind");
}

void Socket::listen(int backlog) {
  if (::listen(socket_, backlog)) throw_wsa("listen");
}

Address Socket::local_address() const {
  Address a;
  a.length = sizeof a.storage;
  if (::getsockname(socket_, reinterpret_cast<sockaddr*>(&a.storage), &a.length)) throw_wsa("getsockname");
  return a;
}

Address Socket::peer_address() const {
  Address a;
  a.length = sizeof a.storage;
  if (::getpeername(socket_, reinterpret_cast<sockaddr*>(&a.storage), &a.length)) throw_wsa("getpeername");
  return a;
}

void Socket::set_nodelay(bool on) {
  BOOL value = on ? TRUE : FALSE;
  if (::setsockopt(socket_, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&value), sizeof value))
    throw_wsa("setsockopt(TCP_NODELAY)");
}

void Socket::shutdown_send() {
  if (::shutdown(socket_, SD_SEND)) throw_wsa("shutdown(SD_SEND)");
}

// ---- operations -------------------------------------------------------------

Coro<Socket> accept(Socket& listener) {
  Socket accepted = Socket::tcp(listener.loop(), listener.family());
  std::shared_ptr<Op> op = new_op(listener, "AcceptEx");
  constexpr DWORD kAddress = sizeof(sockaddr_storage) + 16;
  op->buffer.resize(2 * kAddress);
  op->accepted = std::exchange(accepted.socket_, INVALID_SOCKET);  // the op owns it until done
  DWORD bytes = 0;
  const BOOL ok =
      ::AcceptEx(listener.handle(), op->accepted, op->buffer.data(), 0, kAddress, kAddress, &bytes, &op->ov);
  submitted(op, ok != FALSE);
  co_await wait(op);
  accepted.socket_ = std::exchange(op->accepted, INVALID_SOCKET);
  SOCKET listening = listener.handle();
  if (::setsockopt(accepted.socket_, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&listening),
                   sizeof listening))
    throw_wsa("setsockopt(SO_UPDATE_ACCEPT_CONTEXT)");
  co_return accepted;
}

Coro<void> connect(Socket& socket, Address address) {
  // ConnectEx needs a bound socket: the wildcard address, any port.
  Address any = Address::ip(address.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
  if (::bind(socket.handle(), reinterpret_cast<const sockaddr*>(&any.storage), any.length) &&
      ::WSAGetLastError() != WSAEINVAL)  // WSAEINVAL: already bound
    throw_wsa("bind");
  GUID guid = WSAID_CONNECTEX;
  auto connect_ex = extension<LPFN_CONNECTEX>(socket.handle(), guid);
  std::shared_ptr<Op> op = new_op(socket, "ConnectEx");
  const BOOL ok = connect_ex(socket.handle(), reinterpret_cast<const sockaddr*>(&address.storage), address.length,
                             nullptr, 0, nullptr, &op->ov);
  submitted(op, ok != FALSE);
  co_await wait(op);
  if (::setsockopt(socket.handle(), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0))
    throw_wsa("setsockopt(SO_UPDATE_CONNECT_CONTEXT)");
}

Coro<std::size_t> recv(Socket& socket, std::span<char> buffer) {
  std::shared_ptr<Op> op = new_op(socket, "WSARecv");
  op->buffer.resize(buffer.size());
  WSABUF wsabuf{static_cast<ULONG>(op->buffer.size()), op->buffer.data()};
  DWORD flags = 0;
  const int rc = ::WSARecv(socket.handle(), &wsabuf, 1, nullptr, &flags, &op->ov, nullptr);
  submitted(op, rc == 0);
  const std::size_t n = co_await wait(op);
  std::memcpy(buffer.data(), op->buffer.data(), n);
  co_return n;
}

Coro<void> send_all(Socket& socket, std::span<const char> data) {
  while (!data.empty()) {
    std::shared_ptr<Op> op = new_op(socket, "WSASend");
    op->buffer.assign(data.begin(), data.end());
    WSABUF wsabuf{static_cast<ULONG>(op->buffer.size()), op->buffer.data()};
    const int rc = ::WSASend(socket.handle(), &wsabuf, 1, nullptr, 0, &op->ov, nullptr);
    submitted(op, rc == 0);
    const std::size_t sent = co_await wait(op);
    data = data.subspan(sent);
  }
}

std::size_t operations_in_flight() noexcept {
  return g_in_flight.load(std::memory_order_relaxed);
}

}  // namespace duet::native::iocp
