// TCP streams over a readiness backend (epoll, kqueue, poll): the
// transport is the socket's FdHandler and receives or sends as soon as the
// backend reports the socket ready (selector_events'
// _SelectorSocketTransport); the server accepts when a listener is
// readable.
#include <sys/socket.h>

#include <cerrno>

#include "posix_compat.hpp"
#include "stream_internal.hpp"
#include "sys_socket.hpp"

namespace duet::native::detail {

namespace {

std::exception_ptr os_error(int err, const char* what) {
  return make_os_error(std::error_code(err, std::generic_category()), what);
}

}  // namespace

// ---- the transport ----------------------------------------------------------------------

void Transport::init_io() {
  table_ = fd_table(loop_);
  socket_.attach(table_);
}

void Transport::start() {
  table_->set_handler(socket_.fileno(), Direction::read, this);
}

void Transport::on_ready(Direction direction) {
  auto keep = shared_from_this();  // a fatal error may drop the last handle
  if (direction == Direction::read)
    read_ready();
  else
    write_ready();
}

void Transport::pause_reading() noexcept {
  if (reading_) {
    reading_ = false;
    table_->clear_handler(socket_.fileno(), Direction::read);
  }
}

void Transport::resume_reading() noexcept {
  if (!reading_ && !closing_ && !read_eof_ && socket_.is_open()) {
    try {
      table_->set_handler(socket_.fileno(), Direction::read, this);
      reading_ = true;
    } catch (...) {
      fatal_error(std::current_exception());
    }
  }
}

void Transport::read_ready() {
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

void Transport::receive_now() noexcept {
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
    eof_received();
    return;
  }
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
  receive_failed(err);
}

void Transport::send_data(std::string_view data) {
  if (pending() > 0) {
    buffer_.append(data);
    return;
  }
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
}

void Transport::write_ready() {
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
  write_buffer_emptied();
}

void Transport::shutdown_write() {
  if (::shutdown(socket_.fileno(), SHUT_WR) < 0 && errno != ENOTCONN) {
    fatal_error(os_error(errno, "shutdown()"));
    return;
  }
  after_shutdown_write();
}

void Transport::discard_write_buffer() noexcept {
  buffer_.clear();
  sent_ = 0;
  table_->clear_handler(socket_.fileno(), Direction::write);
}

void Transport::release_io() noexcept {
  table_->clear_handler(socket_.fileno(), Direction::read);
  table_->clear_handler(socket_.fileno(), Direction::write);
}

// ---- the server -------------------------------------------------------------------------

void ServerState::listen_all() {
  for (auto& l : listeners_) table_->set_handler(l->socket.fileno(), Direction::read, l.get());
}

void ServerState::stop_listening(Listener& l) noexcept {
  table_->clear_handler(l.socket.fileno(), Direction::read);
}

void ServerState::close_listener(Listener& l) noexcept {
  stop_listening(l);
  l.socket.close();
}

// asyncio's _accept_connection: up to backlog connections per readiness.
void ServerState::accept_ready(Listener& listener) {
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

}  // namespace duet::native::detail
