// The physical reference of bulk transfer over loopback TCP: one thread
// sends 1 GiB (smoke: 16 MiB) with blocking send(2), another receives it
// with blocking recv(2), both in 64 KiB calls (the echo servers' read size),
// in one process, socket buffers left to the kernel's autotuning. What a
// stream layer on an event loop reaches is to be read against this.
//
// Bounded by bytes and by time: the sender stops after the total or after
// the cap (30 s, smoke 5 s) and shuts its side down; MiB_per_s is what the
// receiver got over the time from the first send to the receiver's end of
// file, MiB_moved says how much that was. Impl "reference".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "bench_common.hpp"

namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr double kMiB = 1024.0 * 1024.0;

[[noreturn]] void fail(const char* what) {
  std::perror(what);
  std::exit(1);
}

/// A connected pair over 127.0.0.1: {sending end, receiving end}.
std::pair<int, int> loopback_pair() {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail("bulk_reference: listen");
  const int out = ::socket(AF_INET, SOCK_STREAM, 0);
  if (out < 0 || ::connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bulk_reference: connect");
  const int in = ::accept(listener, nullptr, nullptr);
  if (in < 0) fail("bulk_reference: accept");
  ::close(listener);
  return {out, in};
}

void bulk_transfer(const bench::Args& args) {
  const long total = args.scale(1L << 30, 16L << 20);
  const double cap_ns = args.smoke ? 5e9 : 30e9;
  const auto [out, in] = loopback_pair();

  long received = 0;
  double end_ns = 0;
  std::thread receiver([&, in = in] {
    auto buffer = std::make_unique<char[]>(kChunk);
    for (;;) {
      const ssize_t n = ::recv(in, buffer.get(), kChunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("bulk_reference: recv");
      if (n == 0) break;
      received += n;
    }
    end_ns = bench::now_ns();
  });

  auto buffer = std::make_unique<char[]>(kChunk);
  for (std::size_t i = 0; i < kChunk; ++i) buffer[i] = char(i * 131);
  const double start_ns = bench::now_ns();
  long sent = 0;
  while (sent < total && bench::now_ns() - start_ns < cap_ns) {
    const ssize_t n = ::send(out, buffer.get(), std::min<std::size_t>(kChunk, std::size_t(total - sent)), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("bulk_reference: send");
    sent += n;
  }
  ::shutdown(out, SHUT_WR);
  receiver.join();
  ::close(out);
  ::close(in);
  if (received != sent) {
    std::fprintf(stderr, "bulk_reference: sent %ld bytes, received %ld\n", sent, received);
    std::exit(1);
  }
  const double seconds = (end_ns - start_ns) / 1e9;
  bench::report("reference", "bulk_transfer", "MiB_per_s", received / kMiB / seconds, "MiB/s");
  bench::report("reference", "bulk_transfer", "MiB_moved", received / kMiB, "MiB");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("bulk_transfer")) bulk_transfer(args);
  return 0;
}
