// duet side of the TCP echo workload (W6): the server contract written at
// the top of echo_client.cpp, with duet's streams API (start_server, one
// task per connection: read up to 64 KiB, write it back, drain), one loop
// on one thread. This is the code a user would write, not a tuned special
// case: the same StreamReader/StreamWriter as every duet program. The same
// source is the Windows server (over IOCP, run under Wine for issue 9's
// indicative figures); there a thread watches stdin, as Windows has no
// add_reader on a completion-port loop and no SIGTERM.
#ifndef _WIN32
#include <signal.h>
#include <unistd.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <duet/duet.hpp>
#include <string>
#ifdef _WIN32
#include <thread>
#endif

using duet::Coro;
using namespace duet::native;

namespace {

Coro<void> echo(StreamReader reader, StreamWriter writer) {
  for (;;) {
    std::string data = co_await reader.read(64 * 1024);
    if (data.empty()) break;
    writer.write(data);
    co_await writer.drain();
  }
  writer.close();
}

Coro<int> serve(std::uint16_t port) {
  duet::Loop& loop = duet::get_running_loop();
  Server server = co_await start_server(echo, "127.0.0.1", port);
  std::printf("PORT %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  duet::Event stop;
#ifdef _WIN32
  // End of stdin (the harness closed its pipe): stop.
  std::thread stdin_watch([&] {
    char buf[256];
    while (std::fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    loop.call_soon_threadsafe([&] { stop.set(); });
  });
  co_await stop.wait();
  server.close();
  stdin_watch.join();
#else
  // End of stdin (the harness closed its pipe) or SIGTERM/SIGINT: stop.
  add_reader(loop, STDIN_FILENO, [&] {
    char buf[256];
    if (::read(STDIN_FILENO, buf, sizeof buf) <= 0) {
      remove_reader(loop, STDIN_FILENO);
      stop.set();
    }
  });
  add_signal_handler(loop, SIGTERM, [&] { stop.set(); });
  add_signal_handler(loop, SIGINT, [&] { stop.set(); });
  co_await stop.wait();
  server.close();
#endif
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned port = 0;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = static_cast<unsigned>(std::atoi(argv[++i]));
  return duet::run(serve(static_cast<std::uint16_t>(port)));
}
