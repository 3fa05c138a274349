// TCP streams over the loop's I/O completion port (Windows), as asyncio's
// _ProactorSocketTransport: while reading is not paused one WSARecv is
// always pending, and its completion feeds the reader's buffer; the write
// buffer goes out through one WSASend at a time, and what is written
// meanwhile waits for the next. The server keeps one AcceptEx pending per
// listening socket.
//
// A pending receive refers to its transport weakly (dropping the last
// handle closes the socket, which aborts it); a pending send holds its
// transport, so written bytes are sent even when every handle is dropped.
#include <algorithm>

#include "stream_internal.hpp"

namespace duet::native::detail {

namespace {

using iocp::handle;

// asyncio's proactor receives into 32 KiB (max_size 256 KiB on selectors);
// 64 KiB matches the POSIX transport's chunk.
constexpr std::size_t kRecvChunk = 64 * 1024;

bool peer_gave_up(int error) {
  return error == WSAECONNRESET || error == ERROR_NETNAME_DELETED || error == WSAECONNABORTED ||
         error == ERROR_CONNECTION_ABORTED;
}

}  // namespace

// ---- the transport ----------------------------------------------------------------------

void Transport::init_io() {
  iocp::IoService& service = iocp::service_of(loop_);
  socket_.associate(loop_);
  service.add_hook(this);
  service_ = &service;
  hooked_ = true;
}

void Transport::start() {
  submit_recv();
}

void Transport::pause_reading() noexcept {
  // The receive in flight completes and its bytes are kept; no new one is
  // submitted until reading resumes.
  reading_ = false;
}

void Transport::resume_reading() noexcept {
  if (!reading_ && !closing_ && !read_eof_ && socket_.is_open()) {
    reading_ = true;
    submit_recv();
  }
}

void Transport::receive_now() noexcept {
  // Completions feed the reader themselves: a woken reader has nothing to
  // receive here.
  reader_->clear_receive_pending();
}

void Transport::submit_recv() noexcept {
  if (recv_pending_ || !reading_ || closing_ || read_eof_ || connection_lost_ || !hooked_) return;
  try {
    std::shared_ptr<iocp::Op> op = service_->make(socket_, "recv()");
    recv_buffer_.resize(kRecvChunk);
    op->buffer = std::move(recv_buffer_);
    WSABUF wsabuf{static_cast<ULONG>(op->buffer.size()), op->buffer.data()};
    DWORD flags = 0;
    const int rc = ::WSARecv(handle(socket_), &wsabuf, 1, nullptr, &flags, &op->ov, nullptr);
    if (const int error = service_->submitted(op, iocp::call_error(rc == 0))) {
      receive_failed(error);
      return;
    }
    recv_pending_ = true;
    op->on_complete = [weak = weak_from_this(), raw = op.get()](int error, std::size_t bytes) {
      if (std::shared_ptr<Transport> self = weak.lock()) {
        self->recv_buffer_ = std::move(raw->buffer);
        self->recv_done(error, bytes);
      }
    };
  } catch (...) {
    fatal_error(std::current_exception());
  }
}

void Transport::recv_done(int error, std::size_t bytes) noexcept {
  recv_pending_ = false;
  if (connection_lost_ || closing_) return;  // closed meanwhile: what came is dropped, as after close() on POSIX
  if (error) {
    receive_failed(error);
    return;
  }
  if (bytes == 0) {
    eof_received();
    return;
  }
  try {
    std::memcpy(reader_->prepare(bytes), recv_buffer_.data(), bytes);
    reader_->commit(bytes);
  } catch (...) {
    fatal_error(std::current_exception());
    return;
  }
  submit_recv();  // unless the reader paused us
}

void Transport::send_data(std::string_view data) {
  buffer_.append(data);
  submit_send();
}

void Transport::submit_send() noexcept {
  if (in_flight_ > 0 || buffer_.empty() || connection_lost_ || !hooked_) return;
  try {
    std::shared_ptr<iocp::Op> op = service_->make(socket_, "send()");
    op->buffer = std::move(send_spare_);
    op->buffer.swap(buffer_);  // the op sends everything buffered; buffer_ collects what comes next
    // Over kMaxIo (a WSABUF's limit) the completion comes back short and
    // the rest goes next (send_done).
    WSABUF wsabuf{static_cast<ULONG>(std::min(op->buffer.size(), iocp::kMaxIo)), op->buffer.data()};
    const int rc = ::WSASend(handle(socket_), &wsabuf, 1, nullptr, 0, &op->ov, nullptr);
    if (const int error = service_->submitted(op, iocp::call_error(rc == 0))) {
      fatal_error(sys::os_error(error, "send()"));
      return;
    }
    in_flight_ = op->buffer.size();
    op->on_complete = [self = shared_from_this(), raw = op.get()](int error, std::size_t bytes) {
      self->send_done(*raw, error, bytes);
    };
  } catch (...) {
    fatal_error(std::current_exception());
  }
}

void Transport::send_done(iocp::Op& op, int error, std::size_t bytes) noexcept {
  in_flight_ = 0;
  // Force-closed meanwhile (the buffer was discarded): nothing more to do,
  // and drain() waiters get the error from connection_lost.
  if (connection_lost_ || lost_scheduled_) return;
  if (error) {
    fatal_error(sys::os_error(error, "send()"));
    return;
  }
  try {
    // A stream socket's WSASend completes with all of it or fails; should
    // it ever come back short, the rest goes first next time.
    if (bytes < op.buffer.size()) buffer_.insert(0, op.buffer, bytes);
    send_spare_ = std::move(op.buffer);
    send_spare_.clear();
  } catch (...) {
    fatal_error(std::current_exception());
    return;
  }
  maybe_resume_writing();
  if (!buffer_.empty()) {
    submit_send();
    return;
  }
  write_buffer_emptied();
}

void Transport::shutdown_write() {
  if (::shutdown(handle(socket_), SD_SEND) != 0) {
    const int error = ::WSAGetLastError();
    if (error != WSAENOTCONN) {
      fatal_error(sys::os_error(error, "shutdown()"));
      return;
    }
  }
  after_shutdown_write();
}

void Transport::discard_write_buffer() noexcept {
  // The WSASend in flight is aborted when the socket closes (in
  // connection_lost, scheduled right after this).
  buffer_.clear();
  in_flight_ = 0;
}

void Transport::release_io() noexcept {
  if (hooked_) {
    service_->remove_hook(this);
    hooked_ = false;
  }
}

// ---- the server -------------------------------------------------------------------------

void ServerState::listen_all() {
  for (auto& l : listeners_) submit_accept(*l);
}

void ServerState::stop_listening(Listener& l) noexcept {
  if (l.accept_op) l.accept_op->cancel();
}

void ServerState::close_listener(Listener& l) noexcept {
  stop_listening(l);
  l.socket.close();  // aborts the AcceptEx, whose op closes the socket it made
}

void ServerState::submit_accept(Listener& l) {
  if (!serving_ || backing_off_ || closed_ || !l.socket.is_open()) return;
  if (l.accept_op && l.accept_op->in_flight()) return;
  Socket accepted;
  try {
    accepted = Socket::tcp(l.socket.local_address().family());
  } catch (const OSError& e) {
    const int error = e.code().value();
    if (out_of_resources(error))
      back_off(error);
    else
      report(error, "accept() failed");
    return;
  }
  iocp::IoService& service = iocp::service_of(loop_);
  std::shared_ptr<iocp::Op> op = service.make(l.socket, "AcceptEx()");
  constexpr DWORD kAddress = sizeof(sockaddr_storage) + 16;
  op->buffer.resize(2 * kAddress);
  op->accepted = static_cast<SOCKET>(accepted.detach());
  DWORD bytes = 0;
  const BOOL ok = ::AcceptEx(handle(l.socket), op->accepted, op->buffer.data(), 0, kAddress, kAddress, &bytes, &op->ov);
  if (const int error = service.submitted(op, iocp::call_error(ok != FALSE))) {
    report(error, "accept() failed; the listening socket is closed");
    close_listener(l);
    return;
  }
  op->on_complete = [weak = weak_from_this(), listener = &l, raw = op.get()](int error, std::size_t) {
    if (std::shared_ptr<ServerState> self = weak.lock()) self->accept_done(*listener, *raw, error);
  };
  l.accept_op = std::move(op);
}

void ServerState::accept_done(Listener& l, iocp::Op& op, int error) {
  l.accept_op.reset();  // `op` itself lives until this returns
  if (closed_) return;  // the op closes the socket it made
  if (iocp::aborted(error)) {
    // Paused by back_off (stop_listening): submitted again here if the
    // retry timer already ran (its listen_all saw this op still in flight),
    // else by the timer. Or its socket was closed: nothing to do.
    submit_accept(l);
    return;
  }
  try {
    if (error == 0) {
      Socket socket = Socket::adopt(static_cast<NativeSocket>(std::exchange(op.accepted, INVALID_SOCKET)));
      SOCKET listening = handle(l.socket);
      std::optional<SocketAddress> peer;
      if (::setsockopt(handle(socket), SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&listening),
                       sizeof listening) == 0) {
        try {
          peer = socket.peer_address();
        } catch (const OSError&) {
          // Reset before we asked: nothing to serve.
        }
      }
      if (peer) {
        logged_resource_error_ = false;
        accept_connection(std::move(socket), *peer);
      }
    } else if (out_of_resources(error)) {
      back_off(error);
      return;
    } else if (!peer_gave_up(error)) {
      // asyncio's proactor logs the error and closes the listening socket
      // (clients are then refused, not left in a backlog nobody accepts).
      report(error, "accept() failed; the listening socket is closed");
      close_listener(l);
      return;
    }
    submit_accept(l);
  } catch (...) {
    ExceptionContext context;
    context.message = "accept failed; the listening socket is closed";
    context.exception = std::current_exception();
    loop_.call_exception_handler(context);
    close_listener(l);
  }
}

}  // namespace duet::native::detail
