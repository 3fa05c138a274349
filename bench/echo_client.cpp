// The TCP echo load generator (W6): one client for every server, so that the
// server is the only thing that changes between implementations. Plain
// blocking sockets, one thread per connection, TCP_NODELAY.
//
// Server contract. Every echo server (asio_echo_server, uv_echo_server,
// blocking_echo_server, and duet_echo_server) follows it, so that
// bench/run_bench.py only needs its name:
//
//   <server> --port P
//
//   - Binds 127.0.0.1:P (P = 0: the kernel picks a free port) and listens,
//     then prints exactly one line "PORT <n>\n" on stdout and flushes it.
//     Nothing else goes to stdout; diagnostics go to stderr.
//   - Serves any number of connections at once: TCP_NODELAY on each accepted
//     socket; reads up to 64 KiB and writes back exactly what was read, in
//     order, until the peer closes. The event-loop servers run one loop on
//     one thread.
//   - Stops when stdin reaches end of file (the harness closes its end of the
//     pipe; this also ends a server whose harness died) or on SIGTERM or
//     SIGINT: it stops serving and exits with status 0. So stdin must stay
//     open while it serves: a pipe, or a terminal (Ctrl-D stops it), not
//     /dev/null.
//
// run_bench.py starts the server with stdin and stdout as pipes, waits up to
// 10 s for the PORT line, reads the server's utime+stime from
// /proc/<pid>/stat, runs this client, reads them again, then closes stdin and
// waits; after 5 s it sends SIGTERM, after 5 more SIGKILL. A server that does
// not exit with status 0 fails the run.
//
// Client:
//
//   echo_client --port P [--connections C] [--messages N] [--size S]
//               [--warmup W] [--duration-cap SECONDS]
//
// Each of the C connections sends an S-byte message (default 1024), reads
// exactly S bytes back, checks them, and repeats: W warm-up requests
// (default 100), then all connections start the measured phase together and
// each makes N requests (default 10000) or stops at the duration cap
// (default 10 s), whichever comes first. Prints JSON lines for workload
// "tcp_echo_c<C>": requests_per_s (measured requests over the time from the
// common start to the last connection's end), requests, requests_total
// (with warm-up: what the server served), elapsed_s and capped (1 if the
// cap ended it). Any error (refused connection, early close, wrong bytes,
// no reply within 10 s) prints a message and exits with status 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <barrier>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int port = 0;
  int connections = 1;
  long messages = 10'000;
  long size = 1024;
  long warmup = 100;
  double duration_cap_s = 10.0;
};

[[noreturn]] void fail(const char* what, int conn, int err) {
  std::fprintf(stderr, "echo_client: connection %d: %s%s%s\n", conn, what, err ? ": " : "",
               err ? std::strerror(err) : "");
  std::_Exit(1);  // from any thread: a broken run has nothing to report
}

Options parse_options(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> const char* {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "echo_client: %s needs a value\n", argv[i]);
      std::exit(2);
    }
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--port")
      o.port = std::atoi(value(i));
    else if (a == "--connections")
      o.connections = std::atoi(value(i));
    else if (a == "--messages")
      o.messages = std::atol(value(i));
    else if (a == "--size")
      o.size = std::atol(value(i));
    else if (a == "--warmup")
      o.warmup = std::atol(value(i));
    else if (a == "--duration-cap")
      o.duration_cap_s = std::atof(value(i));
    else {
      std::fprintf(stderr,
                   "usage: echo_client --port P [--connections C] [--messages N] [--size S] [--warmup W] "
                   "[--duration-cap SECONDS]\n");
      std::exit(2);
    }
  }
  if (o.port <= 0 || o.port > 65535 || o.connections < 1 || o.messages < 1 || o.size < 1 || o.size > 65536 ||
      o.warmup < 0 || o.duration_cap_s <= 0) {
    std::fprintf(stderr, "echo_client: bad arguments (port 1..65535, size 1..65536, counts positive)\n");
    std::exit(2);
  }
  return o;
}

/// One connection's socket and the bytes it sends: request k is
/// pattern[k % 256 ..][0, size), so consecutive replies differ and a reply
/// from the wrong request (or shifted by a byte) fails the check.
class Connection {
 public:
  Connection(int index, const Options& o) : index_(index), size_(o.size), pattern_(o.size + 256), reply_(o.size) {
    std::mt19937 rng(unsigned(index) + 1);
    for (auto& b : pattern_) b = char(rng());
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) fail("socket", index_, errno);
    const int one = 1;
    if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail("TCP_NODELAY", index_, errno);
    // A server that stops answering fails the run instead of hanging it.
    const timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(std::uint16_t(o.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("connect", index_, errno);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { ::close(fd_); }

  /// Requests until `count` are done or `deadline` has passed; returns how many were done.
  long run(long count, Clock::time_point deadline) {
    long done = 0;
    for (; done < count && Clock::now() < deadline; ++done) request(sent_++);
    return done;
  }

 private:
  void request(long k) {
    const char* msg = pattern_.data() + k % 256;
    for (long off = 0; off < size_;) {
      const ssize_t n = ::send(fd_, msg + off, size_t(size_ - off), MSG_NOSIGNAL);
      if (n < 0 && errno != EINTR) fail("send", index_, errno);
      if (n > 0) off += n;
    }
    for (long off = 0; off < size_;) {
      const ssize_t n = ::recv(fd_, reply_.data() + off, size_t(size_ - off), 0);
      if (n == 0) fail("server closed the connection", index_, 0);
      if (n < 0 && errno != EINTR) fail(errno == EAGAIN ? "no reply within 10 s" : "recv", index_, errno);
      if (n > 0) off += n;
    }
    if (std::memcmp(reply_.data(), msg, size_t(size_)) != 0) fail("reply differs from the request", index_, 0);
  }

  int index_;
  int fd_ = -1;
  long size_;
  long sent_ = 0;
  std::vector<char> pattern_;
  std::vector<char> reply_;
};

struct Outcome {
  long warmup = 0;
  long requests = 0;
  Clock::time_point end;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  const auto cap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_cap_s));
  std::vector<Outcome> outcomes(size_t(o.connections));
  Clock::time_point start;  // written by main before the second barrier phase completes
  std::barrier sync(o.connections + 1);

  std::vector<std::thread> threads;
  for (int i = 0; i < o.connections; ++i) {
    threads.emplace_back([&, i] {
      Connection conn(i, o);
      outcomes[size_t(i)].warmup = conn.run(o.warmup, Clock::now() + cap);
      sync.arrive_and_wait();  // every connection warmed up
      sync.arrive_and_wait();  // main has taken the start time
      outcomes[size_t(i)].requests = conn.run(o.messages, start + cap);
      outcomes[size_t(i)].end = Clock::now();
    });
  }
  sync.arrive_and_wait();
  start = Clock::now();
  sync.arrive_and_wait();
  for (auto& t : threads) t.join();

  long requests = 0, warmup = 0;
  Clock::time_point end = start;
  for (const Outcome& r : outcomes) {
    requests += r.requests;
    warmup += r.warmup;
    if (r.end > end) end = r.end;
  }
  const double elapsed = std::chrono::duration<double>(end - start).count();
  const bool capped = requests < o.messages * o.connections;
  const std::string workload = "tcp_echo_c" + std::to_string(o.connections);
  bench::report("echo_client", workload.c_str(), "requests_per_s", elapsed > 0 ? requests / elapsed : 0, "1/s");
  bench::report("echo_client", workload.c_str(), "requests", double(requests), "requests");
  bench::report("echo_client", workload.c_str(), "requests_total", double(requests + warmup),
                "requests");
  bench::report("echo_client", workload.c_str(), "elapsed_s", elapsed, "s");
  bench::report("echo_client", workload.c_str(), "capped", capped ? 1 : 0, "bool");
  return 0;
}
