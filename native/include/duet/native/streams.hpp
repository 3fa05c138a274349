// duet/native/streams.hpp — TCP streams (asyncio's streams.py over a
// selector transport on POSIX, a proactor transport on Windows):
// open_connection, start_server, StreamReader, StreamWriter, Server.
//
//   auto [reader, writer] = co_await open_connection("127.0.0.1", port);
//   writer.write("ping\n");
//   co_await writer.drain();
//   std::string line = co_await reader.readline();
//   writer.close();
//   co_await writer.wait_closed();
//
// Bytes are std::string (a byte container with small-buffer storage).
//
// How a connection works (a transport per socket, inside):
//  * Reading: while the reader is not paused, the socket's read interest
//    stays registered, and when the backend reports it readable the bytes
//    are received at once (in process_events) into the reader's buffer,
//    waking a coroutine waiting in read*(). A buffer above 2 x limit
//    pauses reading until it drains to the limit (asyncio's flow control).
//    On Windows one WSARecv is always pending while reading is not paused,
//    and its completion feeds the reader's buffer the same way.
//  * Writing: write() sends at once when nothing is buffered; what the
//    kernel does not take is buffered and sent as the socket becomes
//    writable. On Windows write() hands the buffer to one WSASend at a
//    time, and what is written meanwhile waits for the next. drain() waits while the buffer is above the high-water
//    mark (64 KiB) until it is at or below the low one (16 KiB).
//  * Errors: a failed receive or send (ECONNRESET, EPIPE, ...) closes the
//    connection: readers raise the error (ConnectionResetError ...), drain()
//    raises it, wait_closed() raises it.
//  * Handles share the connection: copies of a StreamReader or StreamWriter
//    refer to the same one. The connection closes when close() is called
//    or the last handle is dropped; bytes already written are still sent
//    first (the connection keeps itself alive until they are).
//
// One coroutine may wait on a reader at a time (asyncio raises the same
// RuntimeError).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "duet/coro.hpp"
#include "duet/loop.hpp"
#include "duet/native/socket.hpp"

namespace duet::native {

/// asyncio's _DEFAULT_LIMIT: the reader's buffer limit (2**16).
inline constexpr std::size_t kDefaultStreamLimit = 64 * 1024;

namespace detail {
class ReaderState;
class Transport;
class ServerState;
struct ServerOwner;
}  // namespace detail

class StreamReader {
 public:
  /// A reader not bound to a socket, fed with feed_data/feed_eof (as
  /// asyncio.StreamReader()), on the running loop.
  explicit StreamReader(std::size_t limit = kDefaultStreamLimit);

  /// Up to n bytes; n < 0: everything until EOF. Empty at EOF.
  Coro<std::string> read(std::ptrdiff_t n = -1);
  /// Exactly n bytes, or IncompleteReadError with what came before EOF.
  Coro<std::string> readexactly(std::size_t n);
  /// Up to and including the separator. At EOF before it:
  /// IncompleteReadError (partial() has the rest). Separator not within
  /// the limit: LimitOverrunError, and the data stays in the buffer.
  Coro<std::string> readuntil(std::string separator = "\n");
  /// A line including "\n"; at EOF what is left (maybe empty). A line over
  /// the limit: ValueError, and the line is dropped (asyncio.readline).
  Coro<std::string> readline();

  /// EOF was received and the buffer is empty.
  bool at_eof() const noexcept;
  std::exception_ptr exception() const noexcept;
  std::size_t buffered() const noexcept;
  std::size_t limit() const noexcept;

  void feed_data(std::string_view data);
  void feed_eof();
  void set_exception(std::exception_ptr error);

 private:
  friend class detail::Transport;
  StreamReader(std::shared_ptr<detail::ReaderState> state, std::shared_ptr<void> keep_alive);

  std::shared_ptr<detail::ReaderState> state_;
  std::shared_ptr<void> keep_alive_;  // the connection, while a reader refers to it
};

class StreamWriter {
 public:
  /// Buffers and sends data. Throws RuntimeError after close() or
  /// write_eof(); after the connection was lost the data is dropped and
  /// drain() reports the loss (asyncio).
  void write(std::string_view data);
  void writelines(std::span<const std::string> lines);
  void writelines(std::initializer_list<std::string_view> lines);
  /// Waits until the write buffer is at or below the low-water mark when it
  /// went above the high one; raises the connection's error if it failed.
  Coro<void> drain();

  /// Shuts down the sending side once the buffer is sent (half-close).
  void write_eof();
  bool can_write_eof() const noexcept { return true; }
  /// Closes the connection once the buffer is sent.
  void close();
  /// Closes at once, dropping what is buffered.
  void abort();
  bool is_closing() const noexcept;
  /// Waits until the connection is closed; raises its error if it failed.
  Coro<void> wait_closed();

  SocketAddress peer_address() const;   // get_extra_info('peername')
  SocketAddress local_address() const;  // get_extra_info('sockname')
  std::size_t write_buffer_size() const noexcept;
  /// set_write_buffer_limits(high, low); low defaults to high / 4.
  void set_write_buffer_limits(std::size_t high, std::ptrdiff_t low = -1);
  NativeSocket fileno() const noexcept;

 private:
  friend class detail::Transport;
  explicit StreamWriter(std::shared_ptr<detail::Transport> transport);

  std::shared_ptr<detail::Transport> transport_;
};

struct Streams {
  StreamReader reader;
  StreamWriter writer;
};

struct StreamOptions {
  std::size_t limit = kDefaultStreamLimit;
  bool no_delay = true;  // TCP_NODELAY, as asyncio sets on every TCP socket
};

/// asyncio.open_connection: resolves host (getaddrinfo in the executor,
/// unless it is a numeric address), connects to each address in turn, and
/// returns the streams of the first that accepts. When all fail: that
/// error if there was one kind of error, else an OSError listing them.
Coro<Streams> open_connection(std::string host, std::uint16_t port, StreamOptions options = {});

/// Wraps a connected socket (made non-blocking) in streams.
Streams open_streams(Socket socket, StreamOptions options = {});

/// The handler of a server's connections, run as a task per connection.
using ConnectionHandler = std::function<Coro<void>(StreamReader, StreamWriter)>;

struct ServerOptions {
  std::size_t limit = kDefaultStreamLimit;
  int backlog = 100;
  bool reuse_address = true;  // SO_REUSEADDR; ignored on Windows (where it would let others take the port)
  bool start_serving = true;
  bool no_delay = true;
  /// After accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
  /// ENOMEM), accepting pauses for this long (asyncio's ACCEPT_RETRY_DELAY).
  Duration accept_retry_delay = std::chrono::seconds(1);
};

class Server {
 public:
  /// Stops listening and closes the listening sockets; connections already
  /// accepted stay open.
  void close();
  /// Waits until the server is closed and all its connections are.
  Coro<void> wait_closed();
  /// Starts accepting if it was created with start_serving = false.
  void start_serving();
  /// Serves until cancelled; then closes the server and waits for it.
  Coro<void> serve_forever();
  bool is_serving() const noexcept;
  /// The listening addresses (asyncio's [s.getsockname() for s in sockets]).
  std::vector<SocketAddress> addresses() const;
  /// The port of the first listening socket.
  std::uint16_t port() const;
  /// Connections accepted and not closed yet.
  std::size_t active_connections() const noexcept;

 private:
  friend Coro<Server> start_server(ConnectionHandler, std::string, std::uint16_t, ServerOptions);
  explicit Server(std::shared_ptr<detail::ServerOwner> owner) : owner_(std::move(owner)) {}
  std::shared_ptr<detail::ServerOwner> owner_;
};

/// asyncio.start_server: listens on host:port (every address host resolves
/// to; "" means all interfaces; port 0 picks a free port) and runs
/// handler(reader, writer) as a task for each connection. The server
/// closes (stops listening) when the last Server handle is dropped; the
/// connections it accepted go on.
Coro<Server> start_server(ConnectionHandler handler, std::string host, std::uint16_t port, ServerOptions options = {});

/// getaddrinfo for TCP, run in the default executor (as asyncio does); a
/// numeric host is converted without it. Raises GaiError.
Coro<std::vector<SocketAddress>> resolve(std::string host, std::uint16_t port, bool passive = false);

}  // namespace duet::native
