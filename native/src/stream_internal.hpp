// The inside of TCP streams, shared by the portable part (streams.cpp) and
// each platform's I/O part: stream_io_posix.cpp (readiness: the FdTable
// calls the transport when the socket is ready, and it receives and sends
// at once) and stream_io_iocp.cpp (completion: one WSARecv always pending
// into the reader, one WSASend in flight for the write buffer). Private to
// duet::native.
//
// The layout follows asyncio: StreamReader <- Transport (selector_events'
// _SelectorSocketTransport or proactor_events' _ProactorSocketTransport,
// plus StreamReaderProtocol, merged, since duet has one protocol) ->
// StreamWriter; Server owns listening sockets and counts the connections it
// accepted. Transport and ServerState are one class each whose I/O members
// are defined per platform (no virtual call on the hot path).
#pragma once

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/native/io.hpp"
#include "duet/native/streams.hpp"

#ifdef _WIN32
#include "iocp_ops.hpp"
#endif

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

// ---- the socket transport ---------------------------------------------------------------

class ServerState;
void connection_closed(ServerState& server) noexcept;

class Transport final :
#ifdef _WIN32
    public iocp::ShutdownHook,
#else
    public FdHandler,
#endif
    public ReadFlow,
    public std::enable_shared_from_this<Transport> {
 public:
  Transport(Loop& loop, Socket socket, std::size_t limit, std::optional<SocketAddress> peer);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport();

  // Starts reading (platform).
  void start();
  // Counted by the server from here on (after start() succeeded, so a
  // connection that failed to start is never counted, nor uncounted).
  void attach_server(std::shared_ptr<ServerState> server) noexcept {
    server_ = std::move(server);
  }

  Streams streams(const std::shared_ptr<Transport>& self) {
    return Streams{StreamReader(reader_, self), StreamWriter(self)};
  }

#ifdef _WIN32
  void on_loop_shutdown() noexcept override {
    loop_shutdown();
  }
#else
  // -- FdHandler: called in process_events.
  void on_ready(Direction direction) override;
  void on_shutdown() noexcept override {
    loop_shutdown();
  }
#endif
  // The loop is closing: the connection is lost now.
  void loop_shutdown() noexcept;

  // -- ReadFlow (platform)
  void pause_reading() noexcept override;
  void resume_reading() noexcept override;
  void receive_now() noexcept override;

  void write(std::string_view data);
  // A static coroutine holding the transport: the caller's handle may go
  // while it waits.
  static Coro<void> drain(std::shared_ptr<Transport> self) {
    Transport* transport = self.get();
    return transport->drain_impl(std::move(self));
  }
  void write_eof();
  void close();
  void abort();
  bool is_closing() const noexcept {
    return closing_;
  }
  Coro<void> wait_closed();

  const Socket& socket() const noexcept {
    return socket_;
  }
  // Read when the transport is made, so that they are still known once the
  // connection is closed (asyncio keeps them in the transport's extra info).
  SocketAddress peer_address();
  SocketAddress local_address();
#ifdef _WIN32
  std::size_t pending() const noexcept {
    return buffer_.size() + in_flight_;
  }
#else
  std::size_t pending() const noexcept {
    return buffer_.size() - sent_;
  }
#endif
  void set_limits(std::size_t high, std::ptrdiff_t low);

 private:
  Coro<void> drain_impl(std::shared_ptr<Transport> keep);

  // -- platform
  void init_io();                         // in the constructor
  void send_data(std::string_view data);  // write(): send or buffer (the transport is open)
  void shutdown_write();                  // write_eof() once the buffer is sent
  void discard_write_buffer() noexcept;   // force_close()
  void release_io() noexcept;             // connection_lost(): before the socket closes

  // -- shared by the platforms' parts
  void eof_received();          // the peer shut down its sending side
  void receive_failed(int error) noexcept;  // a receive failed with `error` (errno, or a Windows code)
  void write_buffer_emptied();  // every buffered byte is sent
  void after_shutdown_write();
  void maybe_resume_writing();
  void wake_drain_waiters(std::exception_ptr error);
  void fatal_error(std::exception_ptr error) noexcept {
    force_close(std::move(error));
  }
  void force_close(std::exception_ptr error) noexcept;  // asyncio's _force_close
  void schedule_connection_lost(std::exception_ptr error) noexcept;
  void connection_lost(std::exception_ptr error) noexcept;

  Loop& loop_;
  Socket socket_;
  std::shared_ptr<ReaderState> reader_;
  Future<void> closed_;
  std::shared_ptr<ServerState> server_;
  std::shared_ptr<Transport> self_;  // while bytes wait to be sent
  std::optional<SocketAddress> peer_;
  std::optional<SocketAddress> local_;
  std::string buffer_;  // bytes not yet sent (on POSIX from sent_)
  std::size_t high_water_ = 64 * 1024;
  std::size_t low_water_ = 16 * 1024;
  std::vector<Future<void>> drain_waiters_;
  std::exception_ptr lost_error_;
#ifdef _WIN32
  void submit_recv() noexcept;
  void recv_done(int error, std::size_t bytes) noexcept;
  void submit_send() noexcept;
  void send_done(iocp::Op& op, int error, std::size_t bytes) noexcept;
  iocp::IoService* service_ = nullptr;  // valid while hooked_ (the loop is open)
  std::string recv_buffer_;             // lent to each WSARecv, returned by its completion
  std::string send_spare_;              // the last WSASend's buffer, for the next
  std::size_t in_flight_ = 0;           // bytes of the WSASend in flight
  bool recv_pending_ = false;
  bool hooked_ = false;  // in the service's list of what to close with the loop
#else
  void read_ready();
  void write_ready();
  std::shared_ptr<FdTable> table_;
  std::size_t sent_ = 0;
#endif
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
                                          std::optional<SocketAddress> peer);

// ---- the server -------------------------------------------------------------------------

class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  struct Listener;

  ServerState(Loop& loop, ConnectionHandler handler, ServerOptions options);
  ~ServerState();

  void add_listener(Socket socket);
  void start_serving();
  void close();
  Coro<void> wait_closed();
  Coro<void> serve_forever();
  bool is_serving() const noexcept { return serving_; }
  std::size_t active() const noexcept { return active_; }
  std::vector<SocketAddress> addresses() const;
  void connection_closed() noexcept;

 private:
  void maybe_wake_closed() noexcept;
  // -- platform
  void listen_all();                          // accept on every listener
  void stop_listening(Listener& l) noexcept;  // no more accepts on it (pause)
  void close_listener(Listener& l) noexcept;  // and close it
  // -- shared
  void back_off(int error);  // accept ran out of resources: pause for the retry delay
  void report(int error, const char* message);
  void accept_connection(Socket socket, const SocketAddress& peer);
  static Coro<void> run_handler(std::shared_ptr<ServerState> server, StreamReader reader, StreamWriter writer);
#ifdef _WIN32
  void submit_accept(Listener& l);
  void accept_done(Listener& l, iocp::Op& op, int error);
#else
  void accept_ready(Listener& l);
  std::shared_ptr<FdTable> table_;
#endif
  static bool out_of_resources(int error) noexcept;

  Loop& loop_;
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

struct ServerState::Listener
#ifndef _WIN32
    final : FdHandler
#endif
{
  ServerState* server = nullptr;
  Socket socket;
#ifdef _WIN32
  std::shared_ptr<iocp::Op> accept_op;  // the AcceptEx in flight, if any
#else
  void on_ready(Direction) override {
    server->accept_ready(*this);
  }
#endif
};

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
}  // namespace duet::native
