// TCP streams, the portable part: the transport's and the server's logic
// that does not depend on how the socket does I/O, the public classes,
// resolving and connecting. The I/O itself is in stream_io_posix.cpp or
// stream_io_iocp.cpp; the layout is explained in stream_internal.hpp.
#include "duet/native/streams.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/native/executor.hpp"
#include "duet/native/io.hpp"
#include "duet/sleep.hpp"
#include "duet/task.hpp"
#include "stream_internal.hpp"
#include "sys_socket.hpp"

namespace duet::native {
namespace detail {

// ---- the transport ----------------------------------------------------------------------

Transport::Transport(Loop& loop, Socket socket, std::size_t limit, std::optional<SocketAddress> peer)
    : loop_(loop),
      socket_(std::move(socket)),
      reader_(std::make_shared<ReaderState>(loop, limit)),
      closed_(loop),
      peer_(std::move(peer)) {
  // Both names are read now, as asyncio's transport stores sockname and
  // peername in its extra info when it is made: once the connection is
  // closed the socket has neither. One that cannot be read now is asked
  // for again when wanted.
  try {
    local_ = socket_.local_address();
  } catch (const OSError&) {
  }
  try {
    if (!peer_) peer_ = socket_.peer_address();
  } catch (const OSError&) {
  }
  init_io();
  reader_->set_flow(this);
}

Transport::~Transport() {
  reader_->set_flow(nullptr);
  // The last handle is gone without close(): close now (asyncio warns
  // "unclosed transport" and closes in __del__).
  if (!connection_lost_) {
    release_io();
    socket_.close();
    if (!reader_->eof() && !reader_->exception()) reader_->feed_eof();
    if (server_) connection_closed(*server_);
  }
}

void Transport::loop_shutdown() noexcept {
  auto keep = shared_from_this();
  closing_ = true;  // is_closing() from now on, as after close()
  lost_scheduled_ = true;
  connection_lost(nullptr);
}

void Transport::write(std::string_view data) {
  if (eof_written_) throw RuntimeError("Cannot call write() after write_eof()");
  if (closed_by_user_) throw RuntimeError("write() on a closed stream");
  if (data.empty()) return;
  if (connection_lost_ || closing_) return;  // lost: drain() reports it (asyncio drops the data too)
  send_data(data);
  if (!write_paused_ && pending() > high_water_) write_paused_ = true;
}

Coro<void> Transport::drain_impl(std::shared_ptr<Transport> keep) {
  (void)keep;
  reader_->check_exception();
  if (closing_) {
    // Let connection_lost run if it is scheduled (asyncio sleeps 0 here).
    co_await yield_now();
  }
  if (connection_lost_) {
    if (lost_error_) std::rethrow_exception(lost_error_);
    // Closed without an error (our own close(), or EOF both ways): no
    // system call failed, so no "Connection reset by peer" either; asyncio
    // raises ConnectionResetError('Connection lost').
    throw ConnectionResetError(std::make_error_code(std::errc::connection_reset), "Connection lost",
                               OSError::message_only);
  }
  if (!write_paused_) co_return;
  Future<void> waiter(loop_);
  drain_waiters_.push_back(waiter);
  co_await waiter;
}

void Transport::write_eof() {
  if (closing_ || eof_written_) return;
  eof_written_ = true;
  if (pending() == 0) shutdown_write();
}

void Transport::close() {
  closed_by_user_ = true;
  if (closing_) return;
  closing_ = true;
  pause_reading();
  if (pending() == 0) schedule_connection_lost(nullptr);
}

void Transport::abort() {
  closed_by_user_ = true;
  force_close(nullptr);
}

Coro<void> Transport::wait_closed() {
  if (!closed_.done()) co_await closed_;
  if (lost_error_) std::rethrow_exception(lost_error_);
}

SocketAddress Transport::peer_address() {
  if (!peer_) peer_ = socket_.peer_address();
  return *peer_;
}

SocketAddress Transport::local_address() {
  if (!local_) local_ = socket_.local_address();
  return *local_;
}

void Transport::set_limits(std::size_t high, std::ptrdiff_t low) {
  const std::size_t lo = low < 0 ? high / 4 : static_cast<std::size_t>(low);
  if (lo > high) throw ValueError("high must be >= low");
  high_water_ = high;
  low_water_ = lo;
  if (!write_paused_ && pending() > high_water_) write_paused_ = true;
  maybe_resume_writing();
}

void Transport::eof_received() {
  // The writing side stays open (StreamReaderProtocol.eof_received keeps
  // the transport open).
  read_eof_ = true;
  pause_reading();
  reader_->feed_eof();
  if (eof_written_ && pending() == 0) {
    // Both directions are done: nothing more can happen.
    closing_ = true;
    schedule_connection_lost(nullptr);
  }
}

void Transport::receive_failed(int error) noexcept {
  // With bytes waiting to be sent the user is writing (and may never
  // read): the failure, a peer's RST most often, ended that send, and is
  // reported as the send's. The receive only met it first because a
  // failed socket is readable and writable at once and the read side is
  // served first (or, on IOCP, the WSARecv in flight completes first).
  fatal_error(sys::os_error(error, pending() > 0 ? "send()" : "recv()"));
}

void Transport::write_buffer_emptied() {
  if (closing_) {
    schedule_connection_lost(nullptr);
  } else if (eof_written_) {
    shutdown_write();
  }
  self_.reset();  // the caller holds a reference until it returns
}

void Transport::after_shutdown_write() {
  if (read_eof_) {
    closing_ = true;
    schedule_connection_lost(nullptr);
  }
}

void Transport::maybe_resume_writing() {
  if (write_paused_ && pending() <= low_water_) {
    write_paused_ = false;
    wake_drain_waiters(nullptr);
  }
}

void Transport::wake_drain_waiters(std::exception_ptr error) {
  std::vector<Future<void>> waiters;
  waiters.swap(drain_waiters_);
  for (Future<void>& w : waiters) {
    if (w.done()) continue;
    if (error)
      w.set_exception(error);
    else
      w.set_result();
  }
}

void Transport::force_close(std::exception_ptr error) noexcept {
  if (lost_scheduled_) return;
  if (pending() > 0) discard_write_buffer();
  closing_ = true;
  // self_ stays until connection_lost, which the scheduled callback keeps
  // alive itself.
  pause_reading();
  schedule_connection_lost(std::move(error));
}

void Transport::schedule_connection_lost(std::exception_ptr error) noexcept {
  if (lost_scheduled_) return;
  lost_scheduled_ = true;
  try {
    loop_.call_soon([self = shared_from_this(), error] { self->connection_lost(error); });
  } catch (...) {
    connection_lost(error);  // the loop is closing: right now
  }
}

// asyncio's _call_connection_lost and StreamReaderProtocol.connection_lost.
void Transport::connection_lost(std::exception_ptr error) noexcept {
  if (connection_lost_) return;
  connection_lost_ = true;
  lost_error_ = error;
  try {
    if (error) {
      reader_->set_exception(error);
    } else if (!reader_->eof()) {
      reader_->feed_eof();
    }
    wake_drain_waiters(error);
    if (!closed_.done()) closed_.set_result();
  } catch (...) {
    // Only a closed loop refuses: nobody can wait any more.
  }
  release_io();
  socket_.close();
  if (server_) connection_closed(*server_);
  self_.reset();  // the scheduled callback holds a reference until it returns
}

std::shared_ptr<Transport> make_transport(Loop& loop, Socket socket, std::size_t limit, bool no_delay,
                                          std::optional<SocketAddress> peer) {
  if (no_delay) {
    try {
      socket.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
    } catch (const OSError&) {
      // Not TCP (a socketpair in tests): nothing to do.
    }
  }
  auto transport = std::make_shared<Transport>(loop, std::move(socket), limit, std::move(peer));
  transport->start();
  return transport;
}

// ---- the server -------------------------------------------------------------------------

ServerState::ServerState(Loop& loop, ConnectionHandler handler, ServerOptions options)
    : loop_(loop), handler_(std::move(handler)), options_(options) {
#ifndef _WIN32
  table_ = fd_table(loop);
#endif
}

ServerState::~ServerState() {
  for (auto& l : listeners_) close_listener(*l);
  retry_timer_.cancel();
}

void ServerState::add_listener(Socket socket) {
  auto l = std::make_unique<Listener>();
  l->server = this;
  l->socket = std::move(socket);
#ifndef _WIN32
  l->socket.attach(table_);
#endif
  listeners_.push_back(std::move(l));
}

void ServerState::start_serving() {
  if (closed_) throw RuntimeError("server is closed");
  if (serving_) return;
  serving_ = true;
  if (!backing_off_) listen_all();
}

void ServerState::close() {
  if (closed_) return;
  closed_ = true;
  serving_ = false;
  backing_off_ = false;
  retry_timer_.cancel();
  for (auto& l : listeners_) close_listener(*l);
  if (serve_forever_) serve_forever_->cancel();
  maybe_wake_closed();
}

Coro<void> ServerState::wait_closed() {
  if (closed_ && active_ == 0) co_return;
  Future<void> waiter(loop_);
  closed_waiters_.push_back(waiter);
  co_await waiter;
}

Coro<void> ServerState::serve_forever() {
  if (serve_forever_) throw RuntimeError("server is already being awaited on serve_forever()");
  if (closed_) throw RuntimeError("server is closed");
  start_serving();
  serve_forever_.emplace(loop_);
  auto keep = shared_from_this();
  bool cancelled = false;
  try {
    co_await *serve_forever_;
  } catch (const CancelledError&) {
    cancelled = true;
  }
  // Cancelled (the only way out): close, wait until closed, re-raise.
  // Not in the handler: g++ 12 mis-compiles co_await inside catch.
  serve_forever_.reset();
  close();
  if (cancelled) {
    co_await wait_closed();
    throw CancelledError();
  }
}

std::vector<SocketAddress> ServerState::addresses() const {
  std::vector<SocketAddress> out;
  for (auto& l : listeners_)
    if (l->socket.is_open()) out.push_back(l->socket.local_address());
  return out;
}

void ServerState::connection_closed() noexcept {
  if (active_ > 0) --active_;
  maybe_wake_closed();
}

void ServerState::maybe_wake_closed() noexcept {
  if (!closed_ || active_ != 0) return;
  std::vector<Future<void>> waiters;
  waiters.swap(closed_waiters_);
  for (Future<void>& w : waiters)
    if (!w.done()) w.set_result();
}

bool ServerState::out_of_resources(int error) noexcept {
#ifdef _WIN32
  return error == WSAEMFILE || error == WSAENOBUFS || error == ERROR_NOT_ENOUGH_MEMORY ||
         error == ERROR_NO_SYSTEM_RESOURCES;
#else
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
#endif
}

void ServerState::back_off(int error) {
  // Logged once per episode: a server out of fds for minutes must not
  // flood the log; a success ends the episode.
  if (!logged_resource_error_) {
    logged_resource_error_ = true;
    report(error, "socket.accept() out of system resource; pausing accept for the retry delay");
  }
  // Still serving (is_serving() stays true, as asyncio's _serving), but
  // not accepting until the delay has passed.
  for (auto& l : listeners_) stop_listening(*l);
  backing_off_ = true;
  retry_timer_ = loop_.call_later(options_.accept_retry_delay, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self || self->closed_ || !self->backing_off_) return;
    self->backing_off_ = false;
    if (self->serving_) self->listen_all();
  });
}

void ServerState::report(int error, const char* message) {
  ExceptionContext context;
  context.message = message;
  context.exception = sys::os_error(error, "accept()");
  loop_.call_exception_handler(context);
}

Coro<void> ServerState::run_handler(std::shared_ptr<ServerState> server, StreamReader reader, StreamWriter writer) {
  std::exception_ptr error;
  try {
    co_await server->handler_(reader, writer);
  } catch (const CancelledError&) {
    writer.close();
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    ExceptionContext context;
    context.message = "Unhandled exception in client_connected_cb";
    context.exception = error;
    server->loop_.call_exception_handler(context);
    writer.close();  // asyncio 3.12: the transport is closed
  }
}

void ServerState::accept_connection(Socket socket, const SocketAddress& peer) {
  try {
    auto transport = make_transport(loop_, std::move(socket), options_.limit, options_.no_delay, peer);
    ++active_;
    transport->attach_server(shared_from_this());
    Streams s = transport->streams(transport);
    loop_.create_task(run_handler(shared_from_this(), std::move(s.reader), std::move(s.writer)), "connection");
  } catch (...) {
    ExceptionContext context;
    context.message = "Error setting up a connection";
    context.exception = std::current_exception();
    loop_.call_exception_handler(context);
  }
}

void connection_closed(ServerState& server) noexcept {
  server.connection_closed();
}

}  // namespace detail

// ---- StreamReader ---------------------------------------------------------------------------

StreamReader::StreamReader(std::size_t limit)
    : state_(std::make_shared<detail::ReaderState>(get_running_loop(), limit)) {}

StreamReader::StreamReader(std::shared_ptr<detail::ReaderState> state, std::shared_ptr<void> keep_alive)
    : state_(std::move(state)), keep_alive_(std::move(keep_alive)) {}

bool StreamReader::at_eof() const noexcept {
  return state_->eof() && state_->size() == 0;
}
std::exception_ptr StreamReader::exception() const noexcept {
  return state_->exception();
}
std::size_t StreamReader::buffered() const noexcept {
  return state_->size();
}
std::size_t StreamReader::limit() const noexcept {
  return state_->limit();
}
void StreamReader::feed_data(std::string_view data) {
  state_->feed_data(data);
}
void StreamReader::feed_eof() {
  state_->feed_eof();
}
void StreamReader::set_exception(std::exception_ptr error) {
  state_->set_exception(std::move(error));
}

Coro<std::string> StreamReader::read(std::ptrdiff_t n) {
  auto state = state_;  // the handle may be dropped while we wait
  state->check_exception();
  if (n == 0) co_return std::string();
  if (n < 0) {
    // Everything until EOF (asyncio reads limit-sized blocks; the effect
    // is the same: the whole rest of the stream).
    while (!state->eof()) {
      co_await state->wait_for_data("read");
      state->check_exception();
    }
    co_return state->take(state->size());
  }
  while (state->size() == 0 && !state->eof()) {  // a wakeup may find nothing (spurious readiness)
    co_await state->wait_for_data("read");
    state->check_exception();
  }
  co_return state->take(static_cast<std::size_t>(n));
}

Coro<std::string> StreamReader::readexactly(std::size_t n) {
  auto state = state_;
  state->check_exception();
  if (n == 0) co_return std::string();
  while (state->size() < n) {
    if (state->eof()) {
      std::string partial = state->take(state->size());
      throw IncompleteReadError(std::move(partial), n);
    }
    co_await state->wait_for_data("readexactly");
    state->check_exception();
  }
  co_return state->take(n);
}

Coro<std::string> StreamReader::readuntil(std::string separator) {
  auto state = state_;
  if (separator.empty()) throw ValueError("Separator should be at least one-byte string");
  state->check_exception();
  const std::size_t limit = state->limit();
  std::size_t offset = 0;  // where the search resumes: nothing before it can start a match
  for (;;) {
    const std::string_view data = state->view();
    if (data.size() - offset >= separator.size()) {
      const std::size_t found = data.find(separator, offset);
      if (found != std::string_view::npos) {
        if (found > limit) throw LimitOverrunError("Separator is found, but chunk is longer than limit", found);
        co_return state->take(found + separator.size());
      }
      offset = data.size() + 1 - separator.size();
      if (offset > limit) throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
    }
    if (state->eof()) {
      std::string partial = state->take(state->size());
      throw IncompleteReadError(std::move(partial), std::nullopt);
    }
    co_await state->wait_for_data("readuntil");
    state->check_exception();
  }
}

Coro<std::string> StreamReader::readline() {
  auto state = state_;
  std::string line;
  std::optional<std::size_t> overrun;
  std::string overrun_message;
  try {
    line = co_await readuntil("\n");
  } catch (const IncompleteReadError& e) {
    line = e.partial();
  } catch (const LimitOverrunError& e) {
    overrun = e.consumed();
    overrun_message = e.what();
  }
  if (overrun) {
    // asyncio drops the overlong line (with its separator when it is there)
    // so the next readline starts after it.
    const std::string_view data = state->view();
    if (data.substr(*overrun).starts_with("\n"))
      state->drop(*overrun + 1);
    else
      state->drop(data.size());
    throw ValueError(overrun_message);
  }
  co_return line;
}

// ---- StreamWriter ---------------------------------------------------------------------------

StreamWriter::StreamWriter(std::shared_ptr<detail::Transport> transport) : transport_(std::move(transport)) {}

void StreamWriter::write(std::string_view data) {
  transport_->write(data);
}
void StreamWriter::writelines(std::span<const std::string> lines) {
  for (const std::string& line : lines) transport_->write(line);
}
void StreamWriter::writelines(std::initializer_list<std::string_view> lines) {
  for (std::string_view line : lines) transport_->write(line);
}
Coro<void> StreamWriter::drain() {
  return detail::Transport::drain(transport_);
}
void StreamWriter::write_eof() {
  transport_->write_eof();
}
void StreamWriter::close() {
  transport_->close();
}
void StreamWriter::abort() {
  transport_->abort();
}
bool StreamWriter::is_closing() const noexcept {
  return transport_->is_closing();
}
Coro<void> StreamWriter::wait_closed() {
  auto transport = transport_;
  co_await transport->wait_closed();
}
SocketAddress StreamWriter::peer_address() const {
  return transport_->peer_address();
}
SocketAddress StreamWriter::local_address() const {
  return transport_->local_address();
}
std::size_t StreamWriter::write_buffer_size() const noexcept {
  return transport_->pending();
}
void StreamWriter::set_write_buffer_limits(std::size_t high, std::ptrdiff_t low) {
  transport_->set_limits(high, low);
}
NativeSocket StreamWriter::fileno() const noexcept {
  return transport_->socket().fileno();
}

// ---- Server ----------------------------------------------------------------------------------

void Server::close() {
  owner_->state->close();
}
Coro<void> Server::wait_closed() {
  auto owner = owner_;
  co_await owner->state->wait_closed();
}
void Server::start_serving() {
  owner_->state->start_serving();
}
Coro<void> Server::serve_forever() {
  auto owner = owner_;
  co_await owner->state->serve_forever();
}
bool Server::is_serving() const noexcept {
  return owner_->state->is_serving();
}
std::vector<SocketAddress> Server::addresses() const {
  return owner_->state->addresses();
}
std::uint16_t Server::port() const {
  auto addresses = owner_->state->addresses();
  if (addresses.empty()) throw RuntimeError("server is closed");
  return addresses.front().port();
}
std::size_t Server::active_connections() const noexcept {
  return owner_->state->active();
}

// ---- resolving, connecting, listening -------------------------------------------------------

namespace {

class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

const std::error_category& gai_category() {
  static const GaiCategory category;
  return category;
}

std::vector<SocketAddress> getaddrinfo_blocking(const std::string& host, std::uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
#ifdef _WIN32
  // Windows' AI_ADDRCONFIG ignores loopback: "localhost" would find nothing
  // on a machine with no other address (asyncio passes no flags either).
  hints.ai_flags = passive ? AI_PASSIVE : 0;
#else
  hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
#endif
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
#ifdef EAI_SYSTEM
    if (rc == EAI_SYSTEM) throw_errno("getaddrinfo(" + host + ")");
#endif
    throw GaiError(std::error_code(rc, gai_category()), "getaddrinfo(" + host + ")");
  }
  std::vector<SocketAddress> out;
  for (addrinfo* ai = result; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
      SocketAddress a = SocketAddress::from_native(ai->ai_addr, ai->ai_addrlen);
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
  ::freeaddrinfo(result);
  return out;
}

std::optional<SocketAddress> numeric(const std::string& host, std::uint16_t port) {
  try {
    return SocketAddress(host, port);
  } catch (const ValueError&) {
    return std::nullopt;
  }
}

}  // namespace

Coro<std::vector<SocketAddress>> resolve(std::string host, std::uint16_t port, bool passive) {
  if (auto address = numeric(host, port)) co_return std::vector<SocketAddress>{*address};
  // Named, not a temporary in the co_await: see to_thread's note on g++ 12.
  auto lookup = [host, port, passive] { return getaddrinfo_blocking(host, port, passive); };
  std::vector<SocketAddress> found = co_await to_thread(std::move(lookup));
  if (found.empty())
    throw GaiError(std::error_code(EAI_NONAME, gai_category()), "getaddrinfo(" + host + "): no IPv4/IPv6 address");
  co_return found;
}

Streams open_streams(Socket socket, StreamOptions options) {
  auto transport =
      detail::make_transport(get_running_loop(), std::move(socket), options.limit, options.no_delay, std::nullopt);
  return transport->streams(transport);
}

Coro<Streams> open_connection(std::string host, std::uint16_t port, StreamOptions options) {
  std::vector<SocketAddress> addresses = co_await resolve(host, port);
  std::vector<std::exception_ptr> errors;
  std::vector<std::string> messages;
  for (const SocketAddress& address : addresses) {
    Socket socket = Socket::tcp(address.family());
    std::exception_ptr failed;
    try {
      co_await sock_connect(socket, address);
    } catch (const OSError& e) {
      failed = std::current_exception();
      messages.emplace_back(e.what());
    }
    if (!failed) {
      auto transport =
          detail::make_transport(get_running_loop(), std::move(socket), options.limit, options.no_delay, address);
      co_return transport->streams(transport);
    }
    errors.push_back(failed);
  }
  // asyncio: one error, or all alike -> that error; else a combined one.
  if (std::all_of(messages.begin(), messages.end(), [&](const std::string& m) { return m == messages.front(); }))
    std::rethrow_exception(errors.front());
  std::string combined = "Multiple exceptions: ";
  for (std::size_t i = 0; i < messages.size(); ++i) combined += (i ? ", " : "") + messages[i];
  // No single errno (asyncio: errno None), so no ": Success" suffix either.
  throw OSError(std::error_code(), combined, OSError::message_only);
}

Coro<Server> start_server(ConnectionHandler handler, std::string host, std::uint16_t port, ServerOptions options) {
  if (!handler) throw ValueError("start_server: no handler");
  Loop& loop = get_running_loop();
  std::vector<SocketAddress> addresses = co_await resolve(host, port, /*passive=*/true);
  auto state = std::make_shared<detail::ServerState>(loop, std::move(handler), options);
  for (const SocketAddress& address : addresses) {
    Socket socket = Socket::tcp(address.family());
#ifndef _WIN32
    // Not on Windows: there SO_REUSEADDR lets another socket take the port
    // (asyncio does not set it on Windows either).
    if (options.reuse_address) socket.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
#endif
    // An IPv6 socket serves IPv6 only, so that "" can bind 0.0.0.0 and ::
    // side by side (asyncio does the same).
    if (address.family() == AF_INET6) socket.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    socket.bind(address);
    socket.listen(options.backlog);
    state->add_listener(std::move(socket));
  }
  if (options.start_serving) state->start_serving();
  co_return Server(std::make_shared<detail::ServerOwner>(std::move(state)));
}

}  // namespace duet::native
