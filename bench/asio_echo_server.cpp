// Boost.Asio side of the TCP echo workload (W6): the server contract written
// at the top of echo_client.cpp, with C++20 coroutines (awaitable, co_spawn,
// use_awaitable) on one io_context run by one thread (concurrency hint 1,
// Asio's single-threaded configuration). Each connection is one coroutine:
// async_read_some of up to 64 KiB, async_write of what was read. Errors come
// back through redirect_error rather than exceptions, so a closing peer costs
// no throw.
#include <utility>  // Boost 1.74's asio needs it first with g++ 12

#include <unistd.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kReadSize = 64 * 1024;

asio::awaitable<void> echo(tcp::socket socket) {
  auto buffer = std::make_unique<char[]>(kReadSize);
  boost::system::error_code ec;
  for (;;) {
    const std::size_t n =
        co_await socket.async_read_some(asio::buffer(buffer.get(), kReadSize), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // eof or reset: the peer is gone
    co_await asio::async_write(socket, asio::buffer(buffer.get(), n), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      std::fprintf(stderr, "asio_echo_server: accept: %s\n", ec.message().c_str());
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
  }
}

/// Stops the loop when stdin reaches end of file (the contract's stop signal).
asio::awaitable<void> watch_stdin(asio::posix::stream_descriptor in, asio::io_context& ctx) {
  char scratch[256];
  boost::system::error_code ec;
  while (!ec) co_await in.async_read_some(asio::buffer(scratch), asio::redirect_error(asio::use_awaitable, ec));
  ctx.stop();
}

unsigned short parse_port(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "--port")) return static_cast<unsigned short>(std::atoi(argv[2]));
  std::fprintf(stderr, "usage: %s --port P   (see the contract in bench/echo_client.cpp)\n", argv[0]);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned short port = parse_port(argc, argv);
  try {
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    std::printf("PORT %u\n", unsigned(acceptor.local_endpoint().port()));
    std::fflush(stdout);

    asio::signal_set signals(ctx, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code&, int) { ctx.stop(); });
    // A duplicate, so that closing the descriptor leaves fd 0 alone.
    asio::co_spawn(ctx, watch_stdin(asio::posix::stream_descriptor(ctx, ::dup(0)), ctx), asio::detached);
    asio::co_spawn(ctx, accept_loop(acceptor), asio::detached);
    ctx.run();
    // Leaving the scope destroys the connections' coroutine frames with the
    // io_context's pending operations.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
