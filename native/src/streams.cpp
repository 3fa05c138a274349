// TCP streams: the reader's buffer, the socket transport, the server.
// The layout follows asyncio: StreamReader <- Transport (selector_events'
// _SelectorSocketTransport plus StreamReaderProtocol, merged, since duet has
// one protocol) -> StreamWriter; Server owns listening sockets and counts
// the connections it accepted.
#include "duet/native/streams.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>

#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/native/executor.hpp"
#include "duet/native/io.hpp"
#include "duet/sleep.hpp"
#include "duet/task.hpp"
#include "posix_compat.hpp"

namespace duet::native {
namespace detail {

// ---- the reader's buffer ---------------------------------------------------------------

// Flow control from the reader back to its transport.
class ReadFlow {
 public:
  virtual void pause_reading() noexcept = 0;
  virtual void resume_reading() noexcept = 0;
  /// Receives what the socket has now into the reader's buffer (or its
  /// EOF or error).
  virtual void receive_now() noexcept = 0;

 protected:
  ~ReadFlow() = default;
};

class ReaderState {
 public:
  ReaderState(Loop& loop, std::size_t limit) : loop_(loop), limit_(limit) {
    if (limit == 0) throw ValueError("Limit cannot be <= 0");
  }

  Loop& loop() const noexcept { return loop_; }
  std::size_t limit() const noexcept { return limit_; }
  std::size_t size() const noexcept { return tail_ - head_; }
  std::string_view view() const noexcept { return std::string_view(data_.get() + head_, size()); }
  bool eof() const noexcept { return eof_; }
  std::exception_ptr exception() const noexcept { return exception_; }
  void set_flow(ReadFlow* flow) noexcept { flow_ = flow; }

  // Room for n more bytes at the end (not initialised: a std::string would
  // zero 64 KiB per receive); commit(k) keeps k of them.
  char* prepare(std::size_t n) {
    if (capacity_ - tail_ < n) make_room(n);
    return data_.get() + tail_;
  }
  void commit(std::size_t used) {
    tail_ += used;
    if (used) after_feed();
  }

  void feed_data(std::string_view data) {
    if (eof_) throw RuntimeError("feed_data after feed_eof");
    if (data.empty()) return;
    std::memcpy(prepare(data.size()), data.data(), data.size());
    commit(data.size());
  }
  void feed_eof() {
    eof_ = true;
    wake();
  }
  bool has_waiter() const noexcept { return waiter_.has_value(); }
  // Readiness while a reader waits: wake it and let it receive the bytes
  // itself when it runs.
  void wake_to_receive() {
    receive_pending_ = true;
    wake();
  }
  void clear_receive_pending() noexcept { receive_pending_ = false; }
  void set_exception(std::exception_ptr error) {
    exception_ = std::move(error);
    if (waiter_ && !waiter_->done()) waiter_->set_exception(exception_);
    waiter_.reset();
  }

  // Removes and returns the first n buffered bytes.
  std::string take(std::size_t n) {
    n = std::min(n, size());
    std::string out(data_.get() + head_, n);
    drop(n);
    return out;
  }
  void drop(std::size_t n) {
    head_ += std::min(n, size());
    if (head_ == tail_) head_ = tail_ = 0;
    maybe_resume();
  }

  // Waits for data or EOF (asyncio's _wait_for_data).
  // What read*() awaits for more data or EOF (asyncio's _wait_for_data).
  // An awaiter, not a coroutine: no frame per wait on the hot path.
  class DataAwaiter {
   public:
    DataAwaiter(ReaderState& self, Future<void> waiter) : self_(self), waiter_(std::move(waiter)) {}
    DataAwaiter(const DataAwaiter&) = delete;
    DataAwaiter& operator=(const DataAwaiter&) = delete;
    // Withdrawn however the wait ends (woken, cancelled, frame destroyed),
    // unless another reader's wait took the slot meanwhile.
    ~DataAwaiter() {
      if (self_.waiter_ && self_.waiter_->base() == waiter_.base()) self_.waiter_.reset();
    }
    bool await_ready() const noexcept { return waiter_.done(); }
    void await_suspend(coro::coroutine_handle<> where) { waiter_.operator co_await().await_suspend(where); }
    void await_resume() {
      waiter_.operator co_await().await_resume();
      // Woken by readiness with the bytes still in the kernel: receive
      // them now, in this task's turn (see Transport::read_ready).
      if (self_.receive_pending_) {
        self_.receive_pending_ = false;
        if (self_.flow_) self_.flow_->receive_now();
      }
    }

   private:
    ReaderState& self_;
    Future<void> waiter_;
  };

  DataAwaiter wait_for_data(const char* who) {
    if (waiter_)
      throw RuntimeError(std::string(who) + "() called while another coroutine is already waiting for incoming data");
    if (eof_) throw RuntimeError("_wait_for_data after EOF");
    // Paused with a full buffer and still asked for more (readuntil
    // searching): resume, or nothing would ever come.
    if (paused_) {
      paused_ = false;
      if (flow_) flow_->resume_reading();
    }
    Future<void> waiter(loop_);
    waiter_.emplace(waiter);
    return DataAwaiter(*this, std::move(waiter));
  }

  void check_exception() const {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  void wake() {
    if (waiter_ && !waiter_->done()) waiter_->set_result();
    waiter_.reset();
  }
  void after_feed() {
    wake();
    if (flow_ && !paused_ && size() > 2 * limit_) {
      paused_ = true;
      flow_->pause_reading();
    }
  }
  void maybe_resume() {
    if (paused_ && size() <= limit_) {
      paused_ = false;
      if (flow_) flow_->resume_reading();
    }
  }
  // Moves the unread bytes to the front when that makes room (amortised
  // O(1) per byte: only when the consumed part is at least half), else
  // grows geometrically.
  void make_room(std::size_t n) {
    const std::size_t unread = size();
    if (head_ > 0 && capacity_ - unread >= n && head_ >= unread) {
      std::memmove(data_.get(), data_.get() + head_, unread);
    } else {
      const std::size_t capacity = std::max(unread + n, capacity_ * 2);
      std::unique_ptr<char[]> bigger(new char[capacity]);
      if (unread) std::memcpy(bigger.get(), data_.get() + head_, unread);
      data_ = std::move(bigger);
      capacity_ = capacity;
    }
    head_ = 0;
    tail_ = unread;
  }

  Loop& loop_;
  std::size_t limit_;
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;  // first unread byte
  std::size_t tail_ = 0;  // end of the received bytes
  bool eof_ = false;
  bool paused_ = false;
  bool receive_pending_ = false;  // a waiter was woken to receive the bytes itself
  std::exception_ptr exception_;
  std::optional<Future<void>> waiter_;
  ReadFlow* flow_ = nullptr;
};

// ---- the server's shared state (declared here for Transport) -----------------------------

class ServerState;
void connection_closed(ServerState& server) noexcept;

// ---- the socket transport ---------------------------------------------------------------

class Transport final : public FdHandler, public ReadFlow, public std::enable_shared_from_this<Transport> {
 public:
  Transport(Loop& loop, Socket socket, std::size_t limit, std::optional<SocketAddress> peer)
      : loop_(loop),
        table_(fd_table(loop)),
        socket_(std::move(socket)),
        reader_(std::make_shared<ReaderState>(loop, limit)),
        closed_(loop),
        peer_(std::move(peer)) {
    socket_.attach(table_);
    reader_->set_flow(this);
  }
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  ~Transport() {
    reader_->set_flow(nullptr);
    // The last handle is gone without close(): close now (asyncio warns
    // "unclosed transport" and closes in __del__).
    if (!connection_lost_) {
      socket_.close();
      if (!reader_->eof() && !reader_->exception()) reader_->feed_eof();
      if (server_) connection_closed(*server_);
    }
  }

  void start() { table_->set_handler(socket_.fileno(), Direction::read, this); }
  // Counted by the server from here on (after start() succeeded, so a
  // connection that failed to start is never counted, nor uncounted).
  void attach_server(std::shared_ptr<ServerState> server) noexcept { server_ = std::move(server); }

  Streams streams(const std::shared_ptr<Transport>& self) {
    return Streams{StreamReader(reader_, self), StreamWriter(self)};
  }

  // -- FdHandler: called in process_events.
  void on_ready(Direction direction) override {
    auto keep = shared_from_this();  // a fatal error may drop the last handle
    if (direction == Direction::read)
      read_ready();
    else
      write_ready();
  }

  void on_shutdown() noexcept override {
    auto keep = shared_from_this();
    lost_scheduled_ = true;
    connection_lost(nullptr);
  }

  // -- ReadFlow
  void pause_reading() noexcept override {
    if (reading_) {
      reading_ = false;
      table_->clear_handler(socket_.fileno(), Direction::read);
    }
  }
  void resume_reading() noexcept override {
    if (!reading_ && !closing_ && !read_eof_ && socket_.is_open()) {
      try {
        table_->set_handler(socket_.fileno(), Direction::read, this);
        reading_ = true;
      } catch (...) {
        fatal_error(std::current_exception());
      }
    }
  }

  void write(std::string_view data) {
    if (eof_written_) throw RuntimeError("Cannot call write() after write_eof()");
    if (closed_by_user_) throw RuntimeError("write() on a closed stream");
    if (data.empty()) return;
    if (connection_lost_ || closing_) return;  // lost: drain() reports it (asyncio drops the data too)
    if (pending() == 0) {
      const ssize_t n = ::send(socket_.fileno(), data.data(), data.size(), compat::kSendFlags);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        fatal_error(os_error(errno, "send()"));
        return;
      }
      if (n > 0) data.remove_prefix(static_cast<std::size_t>(n));
      if (data.empty()) return;
      buffer_.append(data);
      try {
        table_->set_handler(socket_.fileno(), Direction::write, this);
      } catch (...) {
        // Part of the data may be sent already: the stream cannot go on.
        fatal_error(std::current_exception());
        return;
      }
      // Buffered bytes are sent even if every handle is dropped (asyncio's
      // writer callback keeps its transport): the transport keeps itself
      // until the buffer is empty or the connection is lost.
      self_ = shared_from_this();
    } else {
      buffer_.append(data);
    }
    if (!write_paused_ && pending() > high_water_) write_paused_ = true;
  }

  // A static coroutine holding the transport: the caller's handle may go
  // while it waits.
  static Coro<void> drain(std::shared_ptr<Transport> self) {
    Transport* transport = self.get();
    return transport->drain_impl(std::move(self));
  }
  Coro<void> drain_impl(std::shared_ptr<Transport> keep) {
    (void)keep;
    reader_->check_exception();
    if (closing_) {
      // Let connection_lost run if it is scheduled (asyncio sleeps 0 here).
      co_await yield_now();
    }
    if (connection_lost_) {
      if (lost_error_) std::rethrow_exception(lost_error_);
      throw_os_error(std::make_error_code(std::errc::connection_reset), "Connection lost");
    }
    if (!write_paused_) co_return;
    Future<void> waiter(loop_);
    drain_waiters_.push_back(waiter);
    co_await waiter;
  }

  void write_eof() {
    if (closing_ || eof_written_) return;
    eof_written_ = true;
    if (pending() == 0) shutdown_write();
  }

  void close() {
    closed_by_user_ = true;
    if (closing_) return;
    closing_ = true;
    pause_reading();
    if (pending() == 0) schedule_connection_lost(nullptr);
  }

  void abort() {
    closed_by_user_ = true;
    force_close(nullptr);
  }

  bool is_closing() const noexcept { return closing_; }

  Coro<void> wait_closed() {
    if (!closed_.done()) co_await closed_;
    if (lost_error_) std::rethrow_exception(lost_error_);
  }

  const Socket& socket() const noexcept { return socket_; }
  // Cached, so that it is still known once the connection is closed
  // (asyncio keeps it in the transport's extra info).
  SocketAddress peer_address() {
    if (!peer_) peer_ = socket_.peer_address();
    return *peer_;
  }
  SocketAddress local_address() {
    if (!local_) local_ = socket_.local_address();
    return *local_;
  }
  std::size_t pending() const noexcept { return buffer_.size() - sent_; }
  void set_limits(std::size_t high, std::ptrdiff_t low) {
    const std::size_t lo = low < 0 ? high / 4 : static_cast<std::size_t>(low);
    if (lo > high) throw ValueError("high must be >= low");
    high_water_ = high;
    low_water_ = lo;
    if (!write_paused_ && pending() > high_water_) write_paused_ = true;
    maybe_resume_writing();
  }

 private:
  static std::exception_ptr os_error(int err, const char* what) {
    return make_os_error(std::error_code(err, std::generic_category()), what);
  }

  void read_ready() {
    if (!reading_ || connection_lost_) return;
    // A reader is waiting: wake it, and it receives the bytes itself when
    // its task runs, so that each connection's receive and its reply's
    // send happen together (as a callback loop does them), instead of
    // every receive of the batch first and then every send. Measured on the
    // TCP echo: fewer context switches, the peers' replies leave earlier.
    // The fd stays readable (level-triggered), so if the reader is
    // cancelled before it runs, the next poll reports it again.
    if (reader_->has_waiter()) {
      reader_->wake_to_receive();
      return;
    }
    receive_now();
  }

  void receive_now() noexcept override {
    if (!reading_ || connection_lost_) return;
    reader_->clear_receive_pending();
    // Received straight into the reader's buffer: one copy, kernel to
    // buffer. 64 KiB per call, asyncio's max_size is 256 KiB; several calls
    // per readiness would starve other connections.
    constexpr std::size_t kChunk = 64 * 1024;
    char* space;
    try {
      space = reader_->prepare(kChunk);
    } catch (...) {
      fatal_error(std::current_exception());
      return;
    }
    const ssize_t n = ::recv(socket_.fileno(), space, kChunk, 0);
    const int err = errno;
    reader_->commit(n > 0 ? static_cast<std::size_t>(n) : 0);
    if (n > 0) return;
    if (n == 0) {
      // EOF: the peer shut down its sending side. The writing side stays
      // open (StreamReaderProtocol.eof_received keeps the transport open).
      read_eof_ = true;
      pause_reading();
      reader_->feed_eof();
      if (eof_written_ && pending() == 0) {
        // Both directions are done: nothing more can happen.
        closing_ = true;
        schedule_connection_lost(nullptr);
      }
      return;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
    fatal_error(os_error(err, "recv()"));
  }

  void write_ready() {
    if (connection_lost_) return;
    while (pending() > 0) {
      const ssize_t n = ::send(socket_.fileno(), buffer_.data() + sent_, pending(), compat::kSendFlags);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fatal_error(os_error(errno, "send()"));
        return;
      }
      sent_ += static_cast<std::size_t>(n);
    }
    if (sent_ >= buffer_.size() / 2 || pending() == 0) {
      buffer_.erase(0, sent_);
      sent_ = 0;
    }
    maybe_resume_writing();
    if (pending() > 0) return;
    table_->clear_handler(socket_.fileno(), Direction::write);
    if (closing_) {
      schedule_connection_lost(nullptr);
    } else if (eof_written_) {
      shutdown_write();
    }
    self_.reset();  // the caller (on_ready) holds a reference until it returns
  }

  void shutdown_write() {
    if (::shutdown(socket_.fileno(), SHUT_WR) < 0 && errno != ENOTCONN) {
      fatal_error(os_error(errno, "shutdown()"));
      return;
    }
    if (read_eof_) {
      closing_ = true;
      schedule_connection_lost(nullptr);
    }
  }

  void maybe_resume_writing() {
    if (write_paused_ && pending() <= low_water_) {
      write_paused_ = false;
      wake_drain_waiters(nullptr);
    }
  }

  void wake_drain_waiters(std::exception_ptr error) {
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

  void fatal_error(std::exception_ptr error) noexcept { force_close(std::move(error)); }

  // asyncio's _force_close.
  void force_close(std::exception_ptr error) noexcept {
    if (lost_scheduled_) return;
    if (pending() > 0) {
      buffer_.clear();
      sent_ = 0;
      table_->clear_handler(socket_.fileno(), Direction::write);
    }
    closing_ = true;
    // self_ stays until connection_lost, which the scheduled callback keeps
    // alive itself.
    pause_reading();
    schedule_connection_lost(std::move(error));
  }

  void schedule_connection_lost(std::exception_ptr error) noexcept {
    if (lost_scheduled_) return;
    lost_scheduled_ = true;
    try {
      loop_.call_soon([self = shared_from_this(), error] { self->connection_lost(error); });
    } catch (...) {
      connection_lost(error);  // the loop is closing: right now
    }
  }

  // asyncio's _call_connection_lost and StreamReaderProtocol.connection_lost.
  void connection_lost(std::exception_ptr error) noexcept {
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
    table_->clear_handler(socket_.fileno(), Direction::read);
    table_->clear_handler(socket_.fileno(), Direction::write);
    socket_.close();
    if (server_) connection_closed(*server_);
    self_.reset();  // the scheduled callback holds a reference until it returns
  }

  Loop& loop_;
  std::shared_ptr<FdTable> table_;
  Socket socket_;
  std::shared_ptr<ReaderState> reader_;
  Future<void> closed_;
  std::shared_ptr<ServerState> server_;
  std::shared_ptr<Transport> self_;  // while bytes wait to be sent
  std::optional<SocketAddress> peer_;
  std::optional<SocketAddress> local_;
  std::string buffer_;  // bytes not yet sent, from sent_
  std::size_t sent_ = 0;
  std::size_t high_water_ = 64 * 1024;
  std::size_t low_water_ = 16 * 1024;
  std::vector<Future<void>> drain_waiters_;
  std::exception_ptr lost_error_;
  bool reading_ = true;
  bool read_eof_ = false;
  bool write_paused_ = false;
  bool eof_written_ = false;
  bool closing_ = false;
  bool closed_by_user_ = false;
  bool lost_scheduled_ = false;
  bool connection_lost_ = false;
};

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

class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  struct Listener final : FdHandler {
    ServerState* server = nullptr;
    Socket socket;
    void on_ready(Direction) override { server->accept_ready(*this); }
  };

  ServerState(Loop& loop, ConnectionHandler handler, ServerOptions options)
      : loop_(loop), table_(fd_table(loop)), handler_(std::move(handler)), options_(options) {}
  ~ServerState() {
    for (auto& l : listeners_) {
      table_->clear_handler(l->socket.fileno(), Direction::read);
      l->socket.close();
    }
    retry_timer_.cancel();
  }

  void add_listener(Socket socket) {
    auto l = std::make_unique<Listener>();
    l->server = this;
    l->socket = std::move(socket);
    l->socket.attach(table_);
    listeners_.push_back(std::move(l));
  }

  void start_serving() {
    if (closed_) throw RuntimeError("server is closed");
    if (serving_) return;
    serving_ = true;
    if (!backing_off_) listen_all();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    serving_ = false;
    backing_off_ = false;
    retry_timer_.cancel();
    for (auto& l : listeners_) {
      table_->clear_handler(l->socket.fileno(), Direction::read);
      l->socket.close();
    }
    if (serve_forever_) serve_forever_->cancel();
    maybe_wake_closed();
  }

  Coro<void> wait_closed() {
    if (closed_ && active_ == 0) co_return;
    Future<void> waiter(loop_);
    closed_waiters_.push_back(waiter);
    co_await waiter;
  }

  Coro<void> serve_forever() {
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

  bool is_serving() const noexcept { return serving_; }
  std::size_t active() const noexcept { return active_; }
  std::vector<SocketAddress> addresses() const {
    std::vector<SocketAddress> out;
    for (auto& l : listeners_)
      if (l->socket.is_open()) out.push_back(l->socket.local_address());
    return out;
  }

  void connection_closed() noexcept {
    if (active_ > 0) --active_;
    maybe_wake_closed();
  }

 private:
  void maybe_wake_closed() noexcept {
    if (!closed_ || active_ != 0) return;
    std::vector<Future<void>> waiters;
    waiters.swap(closed_waiters_);
    for (Future<void>& w : waiters)
      if (!w.done()) w.set_result();
  }

  static bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

  // asyncio's _accept_connection: up to backlog connections per readiness.
  void accept_ready(Listener& listener) {
    auto keep = shared_from_this();
    for (int i = 0; i < options_.backlog && serving_ && !backing_off_; ++i) {
      SocketAddress peer;
      socklen_t length = SocketAddress::capacity();
      const int fd = compat::accept(listener.socket.fileno(), static_cast<sockaddr*>(peer.native()), &length);
      if (fd < 0) {
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
        if (out_of_resources(err)) {
          back_off(err);
          return;
        }
        report(err, "accept() failed");
        return;
      }
      logged_resource_error_ = false;
      accept_connection(Socket::adopt(fd), peer);
    }
  }

  void back_off(int err) {
    // Logged once per episode: a server out of fds for minutes must not
    // flood the log; a success ends the episode.
    if (!logged_resource_error_) {
      logged_resource_error_ = true;
      report(err, "socket.accept() out of system resource; pausing accept for the retry delay");
    }
    // Still serving (is_serving() stays true, as asyncio's _serving), but
    // not accepting until the delay has passed.
    for (auto& l : listeners_) table_->clear_handler(l->socket.fileno(), Direction::read);
    backing_off_ = true;
    retry_timer_ = loop_.call_later(options_.accept_retry_delay, [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self || self->closed_ || !self->backing_off_) return;
      self->backing_off_ = false;
      if (self->serving_) self->listen_all();
    });
  }

  void listen_all() {
    for (auto& l : listeners_) table_->set_handler(l->socket.fileno(), Direction::read, l.get());
  }

  void report(int err, const char* message) {
    ExceptionContext context;
    context.message = message;
    context.exception = make_os_error(std::error_code(err, std::generic_category()), "accept()");
    loop_.call_exception_handler(context);
  }

  static Coro<void> run_handler(std::shared_ptr<ServerState> server, StreamReader reader, StreamWriter writer) {
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

  void accept_connection(Socket socket, const SocketAddress& peer) {
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

  Loop& loop_;
  std::shared_ptr<FdTable> table_;
  ConnectionHandler handler_;
  ServerOptions options_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::size_t active_ = 0;
  bool serving_ = false;
  bool backing_off_ = false;  // accept() ran out of resources: waiting for the retry delay
  bool closed_ = false;
  bool logged_resource_error_ = false;
  TimerHandle retry_timer_;
  std::optional<Future<void>> serve_forever_;
  std::vector<Future<void>> closed_waiters_;
};

void connection_closed(ServerState& server) noexcept {
  server.connection_closed();
}

// What Server handles share: the server closes when the last handle goes,
// whatever connections (which refer to the state, not to this) still run.
struct ServerOwner {
  std::shared_ptr<ServerState> state;
  explicit ServerOwner(std::shared_ptr<ServerState> s) : state(std::move(s)) {}
  ServerOwner(const ServerOwner&) = delete;
  ServerOwner& operator=(const ServerOwner&) = delete;
  ~ServerOwner() { state->close(); }
};

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
      throw IncompleteReadError(std::move(partial), 0);
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
int StreamWriter::fileno() const noexcept {
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
  hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    if (rc == EAI_SYSTEM) throw_errno("getaddrinfo(" + host + ")");
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
  throw OSError(std::error_code(), combined);  // no single errno (asyncio: errno None)
}

Coro<Server> start_server(ConnectionHandler handler, std::string host, std::uint16_t port, ServerOptions options) {
  if (!handler) throw ValueError("start_server: no handler");
  Loop& loop = get_running_loop();
  std::vector<SocketAddress> addresses = co_await resolve(host, port, /*passive=*/true);
  auto state = std::make_shared<detail::ServerState>(loop, std::move(handler), options);
  for (const SocketAddress& address : addresses) {
    Socket socket = Socket::tcp(address.family());
    if (options.reuse_address) socket.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
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
