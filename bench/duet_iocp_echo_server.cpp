// duet's TCP echo server on Windows (W6 under Wine, issue 9): the server
// contract at the top of echo_client.cpp, with the completion-port sockets
// (duet/native/iocp.hpp): one task per connection, WSARecv up to 64 KiB,
// WSASend it back; one loop on one thread. Stdin's end (the harness closes
// its pipe) is watched by a thread that posts the stop to the loop.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <duet/duet.hpp>
#include <thread>
#include <vector>

#include "duet/native/iocp.hpp"

using duet::Coro;
namespace iocp = duet::native::iocp;

namespace {

Coro<void> echo(iocp::Socket peer) {
  std::vector<char> buf(64 * 1024);
  try {
    for (;;) {
      const std::size_t n = co_await iocp::recv(peer, std::span<char>(buf));
      if (n == 0) break;
      co_await iocp::send_all(peer, std::span<const char>(buf.data(), n));
    }
  } catch (const duet::OSError&) {
    // the client went away
  }
}

Coro<void> accept_loop(iocp::Socket& listener) {
  for (;;) {
    iocp::Socket peer = co_await iocp::accept(listener);
    peer.set_nodelay(true);
    duet::create_task(echo(std::move(peer)));
  }
}

Coro<int> serve(std::uint16_t port) {
  duet::Loop& loop = duet::get_running_loop();
  iocp::Socket listener = iocp::Socket::tcp(loop);
  listener.bind(iocp::Address::ipv4("127.0.0.1", port));
  listener.listen();
  std::printf("PORT %u\n", static_cast<unsigned>(listener.local_address().port()));
  std::fflush(stdout);
  duet::Event stop;
  std::thread stdin_watch([&] {
    char buf[256];
    while (std::fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    loop.call_soon_threadsafe([&] { stop.set(); });
  });
  auto accepting = duet::create_task(accept_loop(listener));
  co_await stop.wait();
  accepting.cancel();
  listener.close();
  stdin_watch.join();
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned port = 0;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = static_cast<unsigned>(std::atoi(argv[++i]));
  return duet::run(serve(static_cast<std::uint16_t>(port)));
}
