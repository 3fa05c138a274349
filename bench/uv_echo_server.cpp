// libuv side of the TCP echo workload (W6): the server contract written at
// the top of echo_client.cpp, on one uv_loop_t run by one thread.
//
// Each connection reads into its own 64 KiB buffer (uv_read_start) and
// answers with uv_try_write, which writes at once; only when the socket
// cannot take everything does the remainder go to a copied uv_write
// request, and reading pauses until it is written (the back-pressure that
// Asio's and the blocking server's read-then-write loops have by
// construction). This is how libuv's heavy users write (Node's StreamBase
// tries uv_try_write first): on the request/response path it costs one
// write(2) and no allocation, where a bare uv_write would also need a
// request and a buffer that outlives the callback.
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

constexpr std::size_t kReadSize = 64 * 1024;

struct Connection {
  uv_tcp_t tcp;  // tcp.data points back here
  char buffer[kReadSize];
};

/// The unwritten tail of one read, copied so that the connection's buffer
/// can take the next read.
struct PendingWrite {
  uv_write_t req;
  std::unique_ptr<char[]> bytes;
};

/// The close callback of every handle: connections own their memory
/// (data != nullptr), the other handles live in main.
void on_close(uv_handle_t* handle) { delete static_cast<Connection*>(handle->data); }

void close_connection(uv_stream_t* stream) {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(stream))) uv_close(reinterpret_cast<uv_handle_t*>(stream), on_close);
}

void on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(conn->buffer, sizeof conn->buffer);
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

void on_written(uv_write_t* req, int status) {
  std::unique_ptr<PendingWrite> done(static_cast<PendingWrite*>(req->data));
  if (status < 0) return close_connection(req->handle);  // also UV_ECANCELED: already closing
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(req->handle)) && uv_stream_get_write_queue_size(req->handle) == 0)
    uv_read_start(req->handle, on_alloc, on_read);
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) return close_connection(stream);  // UV_EOF or an error
  if (nread == 0) return;                          // EAGAIN
  uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
  const int written = uv_try_write(stream, &out, 1);
  if (written == nread) return;
  if (written < 0 && written != UV_EAGAIN) return close_connection(stream);
  const size_t sent = written < 0 ? 0 : size_t(written);
  auto pending = std::make_unique<PendingWrite>();
  pending->bytes = std::make_unique<char[]>(size_t(nread) - sent);
  std::memcpy(pending->bytes.get(), buf->base + sent, size_t(nread) - sent);
  uv_buf_t rest = uv_buf_init(pending->bytes.get(), static_cast<unsigned>(size_t(nread) - sent));
  pending->req.data = pending.get();
  if (uv_write(&pending->req, stream, &rest, 1, on_written) != 0) return close_connection(stream);
  pending.release();  // on_written owns it now
  uv_read_stop(stream);
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    std::fprintf(stderr, "uv_echo_server: listen: %s\n", uv_strerror(status));
    return;
  }
  auto* conn = new Connection;
  uv_tcp_init(server->loop, &conn->tcp);
  conn->tcp.data = conn;
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn->tcp);
  if (uv_accept(server, stream) != 0) return close_connection(stream);
  uv_tcp_nodelay(&conn->tcp, 1);
  uv_read_start(stream, on_alloc, on_read);
}

/// Ends the loop: every handle is closed, so uv_run returns.
void stop(uv_loop_t* loop) {
  uv_walk(
      loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, on_close); }, nullptr);
}

void on_stdin(uv_poll_t* poll, int status, int) {
  char scratch[256];
  const ssize_t n = status < 0 ? -1 : ::read(0, scratch, sizeof scratch);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) stop(poll->loop);
}

int parse_port(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "--port")) return std::atoi(argv[2]);
  std::fprintf(stderr, "usage: %s --port P   (see the contract in bench/echo_client.cpp)\n", argv[0]);
  std::exit(2);
}

int fail(const char* what, int err) {
  std::fprintf(stderr, "uv_echo_server: %s: %s\n", what, uv_strerror(err));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int port = parse_port(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);  // libuv writes with write(2): a reset peer must not kill the server
  uv_loop_t loop;
  uv_loop_init(&loop);

  uv_tcp_t listener;
  uv_tcp_init(&loop, &listener);
  listener.data = nullptr;
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (int r = uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&addr), 0)) return fail("bind", r);
  if (int r = uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 128, on_connection)) return fail("listen", r);
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &len);
  std::printf("PORT %u\n", unsigned(ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)));
  std::fflush(stdout);

  uv_signal_t sigterm, sigint;
  uv_signal_init(&loop, &sigterm);
  uv_signal_init(&loop, &sigint);
  sigterm.data = sigint.data = nullptr;
  uv_signal_start(&sigterm, [](uv_signal_t* s, int) { stop(s->loop); }, SIGTERM);
  uv_signal_start(&sigint, [](uv_signal_t* s, int) { stop(s->loop); }, SIGINT);
  uv_poll_t stdin_poll;
  if (int r = uv_poll_init(&loop, &stdin_poll, 0)) {
    std::fprintf(stderr, "uv_echo_server: cannot watch stdin (%s): stops on SIGTERM only\n", uv_strerror(r));
  } else {
    stdin_poll.data = nullptr;
    uv_poll_start(&stdin_poll, UV_READABLE, on_stdin);
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  if (int r = uv_loop_close(&loop)) return fail("loop close", r);
  return 0;
}
