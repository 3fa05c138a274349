// Bulk transfer through duet's streams over loopback TCP, read against
// bulk_reference (raw blocking send/recv, one thread per side): a sender
// loop on one thread writes 1 GiB (smoke: 16 MiB) in 64 KiB writes, each
// followed by drain() (the flow control a real program uses), to a
// receiver loop on another thread that reads it with read(64 KiB) until
// EOF. Bounded by bytes and by time (30 s, smoke 5 s), as the reference.
#include <atomic>
#include <cstdio>
#include <duet/duet.hpp>
#include <string>
#include <thread>

#include "bench_common.hpp"

using duet::Coro;
using namespace duet::native;

namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr double kMiB = 1024.0 * 1024.0;

std::atomic<std::uint16_t> g_port{0};
std::atomic<long> g_received{0};
std::atomic<double> g_end_ns{0};

Coro<void> receive(StreamReader reader, StreamWriter writer) {
  long received = 0;
  for (;;) {
    std::string data = co_await reader.read(kChunk);
    if (data.empty()) break;
    received += static_cast<long>(data.size());
  }
  g_end_ns = bench::now_ns();
  g_received = received;
  writer.close();
}

Coro<void> receiver() {
  duet::Event done;
  auto handler = [&done](StreamReader reader, StreamWriter writer) -> Coro<void> {
    co_await receive(reader, writer);
    done.set();
  };
  Server server = co_await start_server(handler, "127.0.0.1", 0);
  g_port = server.port();
  co_await done.wait();
  server.close();
  co_await server.wait_closed();
}

Coro<long> sender(long total, double cap_ns, double start_ns) {
  auto [reader, writer] = co_await open_connection("127.0.0.1", g_port.load());
  const std::string chunk(kChunk, 'b');
  long sent = 0;
  while (sent < total && bench::now_ns() - start_ns < cap_ns) {
    writer.write(chunk);
    sent += static_cast<long>(kChunk);
    co_await writer.drain();
  }
  writer.write_eof();
  co_await reader.read();  // the receiver closes after EOF
  writer.close();
  co_return sent;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  const long total = args.scale(1L << 30, 16L << 20);
  const double cap_ns = args.smoke ? 5e9 : 30e9;
  std::thread receiving([] { duet::run(receiver()); });
  while (g_port == 0) std::this_thread::yield();
  const double start = bench::now_ns();
  const long sent = duet::run(sender(total, cap_ns, start));
  receiving.join();
  const double seconds = (g_end_ns - start) / 1e9;
  if (g_received != sent) {
    std::fprintf(stderr, "duet_bulk_bench: sent %ld bytes, received %ld\n", sent, g_received.load());
    return 1;
  }
  bench::report("duet", "bulk_transfer", "MiB_per_s", g_received / kMiB / seconds, "MiB/s");
  bench::report("duet", "bulk_transfer", "MiB_moved", g_received / kMiB, "MiB");
}
