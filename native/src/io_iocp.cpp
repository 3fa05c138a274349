// Socket operations over the loop's I/O completion port (Windows):
// asyncio's IocpProactor as coroutines. The operations' life rules are in
// iocp_ops.hpp; add_reader/add_writer are not available (asyncio's
// ProactorEventLoop raises NotImplementedError too).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <utility>

#include "duet/errors.hpp"
#include "duet/native/io.hpp"
#include "iocp_ops.hpp"

namespace duet::native {
namespace iocp {
namespace {

std::atomic<std::size_t> g_in_flight{0};

// Operations whose completion never came before the loop closed: their
// memory may still be written by the system, so it is never freed.
void keep_forever(std::shared_ptr<Op> op) {
  static auto* graveyard = new std::vector<std::shared_ptr<Op>>();
  graveyard->push_back(std::move(op));
}

}  // namespace

void Op::on_event(Loop&, const IoEvent&) {
  DWORD bytes = 0;
  // The status is in the OVERLAPPED itself; the handle is not used when
  // not waiting (the socket may be closed by now).
  const BOOL ok = ::GetOverlappedResult(reinterpret_cast<HANDLE>(socket), &ov, &bytes, FALSE);
  const int error = ok ? 0 : static_cast<int>(::GetLastError());
  completed = true;
  std::shared_ptr<Op> keep = service->release(this);  // freed when this returns, unless someone holds it
  std::function<void(int, std::size_t)> fn = std::move(on_complete);
  on_complete = nullptr;
  if (fn) fn(error, bytes);
}

void Op::cancel() noexcept {
  if (in_flight()) ::CancelIoEx(reinterpret_cast<HANDLE>(socket), &ov);
}

IoService::IoService(Loop& loop) : loop_(loop), backend_(dynamic_cast<platform::IocpBackend*>(&loop.backend())) {
  if (!backend_)
    throw RuntimeError("the loop's backend (" + std::string(loop.backend().name()) +
                       ") has no completion port; socket operations on Windows need the IOCP backend");
}

IoService::~IoService() {
  shutdown();
}

std::shared_ptr<Op> IoService::make(Socket& socket, std::string what) {
  if (closing_) throw RuntimeError("the loop is closing");
  socket.associate(loop_);
  return std::make_shared<Op>(*this, handle(socket), std::move(what));
}

int IoService::submitted(const std::shared_ptr<Op>& op, int error) noexcept {
  if (error != 0 && error != WSA_IO_PENDING) return error;
  op->submitted = true;
  try {
    in_flight_.emplace(op.get(), op);
  } catch (...) {
    keep_forever(op);  // out of memory: the op must outlive its completion anyway
  }
  g_in_flight.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

std::shared_ptr<Op> IoService::release(Op* op) noexcept {
  g_in_flight.fetch_sub(1, std::memory_order_relaxed);
  auto found = in_flight_.find(op);
  if (found == in_flight_.end()) return nullptr;
  std::shared_ptr<Op> owned = std::move(found->second);
  in_flight_.erase(found);
  return owned;
}

void IoService::add_hook(ShutdownHook* hook) {
  hooks_.push_back(hook);
}

void IoService::remove_hook(ShutdownHook* hook) noexcept {
  for (auto& h : hooks_)
    if (h == hook) {
      h = hooks_.back();
      hooks_.pop_back();
      return;
    }
}

void IoService::shutdown() noexcept {
  if (closing_) return;
  closing_ = true;
  // Connections first: they close their sockets, which aborts their I/O.
  std::vector<ShutdownHook*> hooks;
  hooks.swap(hooks_);
  for (ShutdownHook* h : hooks) h->on_loop_shutdown();
  for (auto& entry : in_flight_) {
    entry.second->on_complete = nullptr;  // nobody is left to tell
    entry.second->cancel();
  }
  // The system owns each operation's memory until its completion arrives:
  // wait for them (cancelled I/O completes promptly; bounded regardless).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<IoEvent> events;
  while (!in_flight_.empty() && std::chrono::steady_clock::now() < deadline) {
    events.clear();
    try {
      backend_->wait(std::chrono::milliseconds(50), events);
    } catch (...) {
      break;
    }
    for (const IoEvent& e : events)
      if (e.target) e.target->on_event(loop_, e);
  }
  for (auto& entry : in_flight_) {
    g_in_flight.fetch_sub(1, std::memory_order_relaxed);
    keep_forever(std::move(entry.second));
  }
  in_flight_.clear();
}

IoService& service_of(Loop& loop) {
  return loop.use_service<IoService>();
}

Future<std::size_t> completion(const std::shared_ptr<Op>& op, int error_of_call) {
  if (const int error = op->service->submitted(op, error_of_call))
    std::rethrow_exception(sys::os_error(error, op->what));
  Future<std::size_t> done(op->service->loop());
  op->on_complete = [done, what = op->what](int error, std::size_t bytes) mutable {
    if (done.done()) return;  // cancelled: the result is dropped
    if (aborted(error))
      // Not cancelled (CancelIoEx only follows a cancellation), so the
      // socket was closed under it: the error POSIX gives (FdTable::forget).
      done.set_exception(make_os_error(std::make_error_code(std::errc::bad_file_descriptor),
                                       what + ": the socket was closed while an operation waited on it"));
    else if (error)
      done.set_exception(sys::os_error(error, what));
    else
      done.set_result(bytes);
  };
  std::weak_ptr<Op> weak = op;
  done.add_done_callback([weak](const Future<std::size_t>& f) {
    if (!f.cancelled()) return;
    if (std::shared_ptr<Op> o = weak.lock()) o->cancel();
  });
  return done;
}

}  // namespace iocp

// ---- readiness: not on the completion port ---------------------------------------------

namespace detail {
void readiness_not_implemented(const char* what) {
  throw NotImplementedError(std::string(what) +
                            " is not available on Windows' completion-port loop (asyncio's ProactorEventLoop "
                            "has none either); use the sock_* operations or streams");
}
}  // namespace detail

bool remove_reader(Loop&, NativeSocket) {
  detail::readiness_not_implemented("remove_reader");
}
bool remove_writer(Loop&, NativeSocket) {
  detail::readiness_not_implemented("remove_writer");
}

std::size_t overlapped_operations_in_flight() noexcept {
  return iocp::g_in_flight.load(std::memory_order_relaxed);
}

// ---- socket operations --------------------------------------------------------------------

namespace {

using iocp::handle;

LPFN_CONNECTEX load_connect_ex(SOCKET s) {
  GUID guid = WSAID_CONNECTEX;
  LPFN_CONNECTEX fn = nullptr;
  DWORD bytes = 0;
  if (::WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn, sizeof fn, &bytes, nullptr, nullptr))
    throw_socket_error("WSAIoctl(WSAID_CONNECTEX)");
  return fn;
}

LPFN_CONNECTEX connect_ex(SOCKET s) {
  // The provider's ConnectEx, the same for every TCP socket of the process
  // (loaded once, thread-safely; a failed load is tried again next time).
  static const LPFN_CONNECTEX fn = load_connect_ex(s);
  return fn;
}

}  // namespace

Coro<std::pair<Socket, SocketAddress>> sock_accept(Socket& listener) {
  sys::check_open(listener, "sock_accept");
  iocp::IoService& service = iocp::service_of(get_running_loop());
  Socket accepted = Socket::tcp(listener.local_address().family());
  std::shared_ptr<iocp::Op> op = service.make(listener, "AcceptEx()");
  constexpr DWORD kAddress = sizeof(sockaddr_storage) + 16;
  op->buffer.resize(2 * kAddress);
  op->accepted = static_cast<SOCKET>(accepted.detach());  // the op owns it until done
  DWORD bytes = 0;
  const BOOL ok = ::AcceptEx(handle(listener), op->accepted, op->buffer.data(), 0, kAddress, kAddress, &bytes, &op->ov);
  Future<std::size_t> done = iocp::completion(op, iocp::call_error(ok != FALSE));
  co_await done;
  Socket result = Socket::adopt(static_cast<NativeSocket>(std::exchange(op->accepted, INVALID_SOCKET)));
  SOCKET listening = handle(listener);
  if (::setsockopt(handle(result), SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&listening),
                   sizeof listening))
    throw_socket_error("setsockopt(SO_UPDATE_ACCEPT_CONTEXT)");
  SocketAddress peer = result.peer_address();
  co_return std::pair<Socket, SocketAddress>(std::move(result), peer);
}

Coro<void> sock_connect(Socket& socket, SocketAddress address) {
  sys::check_open(socket, "sock_connect");
  iocp::IoService& service = iocp::service_of(get_running_loop());
  std::shared_ptr<iocp::Op> op = service.make(socket, "connect(" + address.to_string() + ")");
  // ConnectEx needs a bound socket: the wildcard address, any port.
  const SocketAddress any(address.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
  if (::bind(handle(socket), static_cast<const sockaddr*>(any.native()), static_cast<int>(any.native_size())) &&
      ::WSAGetLastError() != WSAEINVAL)  // WSAEINVAL: already bound
    throw_socket_error("bind(" + any.to_string() + ")");
  const BOOL ok = connect_ex(handle(socket))(handle(socket), static_cast<const sockaddr*>(address.native()),
                                             static_cast<int>(address.native_size()), nullptr, 0, nullptr, &op->ov);
  Future<std::size_t> done = iocp::completion(op, iocp::call_error(ok != FALSE));
  co_await done;
  if (::setsockopt(handle(socket), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0))
    throw_socket_error("setsockopt(SO_UPDATE_CONNECT_CONTEXT)");
}

Coro<std::size_t> sock_recv_into(Socket& socket, std::span<char> buffer) {
  sys::check_open(socket, "sock_recv_into");
  iocp::IoService& service = iocp::service_of(get_running_loop());
  std::shared_ptr<iocp::Op> op = service.make(socket, "recv()");
  // The op's own buffer: the caller's may be gone when a cancelled
  // receive completes.
  op->buffer.resize(std::min(buffer.size(), iocp::kMaxIo));
  WSABUF wsabuf{static_cast<ULONG>(op->buffer.size()), op->buffer.data()};
  DWORD flags = 0;
  const int rc = ::WSARecv(handle(socket), &wsabuf, 1, nullptr, &flags, &op->ov, nullptr);
  Future<std::size_t> done = iocp::completion(op, iocp::call_error(rc == 0));
  const std::size_t n = co_await done;
  std::memcpy(buffer.data(), op->buffer.data(), n);
  co_return n;
}

Coro<void> sock_sendall(Socket& socket, std::string_view data) {
  sys::check_open(socket, "sock_sendall");
  iocp::IoService& service = iocp::service_of(get_running_loop());
  while (!data.empty()) {
    std::shared_ptr<iocp::Op> op = service.make(socket, "send()");
    op->buffer.assign(data.substr(0, iocp::kMaxIo));
    WSABUF wsabuf{static_cast<ULONG>(op->buffer.size()), op->buffer.data()};
    const int rc = ::WSASend(handle(socket), &wsabuf, 1, nullptr, 0, &op->ov, nullptr);
    Future<std::size_t> done = iocp::completion(op, iocp::call_error(rc == 0));
    const std::size_t sent = co_await done;
    data.remove_prefix(sent);
  }
}

}  // namespace duet::native
