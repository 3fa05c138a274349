// The physical reference of the TCP echo workload (W6): the server contract
// written at the top of echo_client.cpp with no event loop at all, one thread
// per connection blocked in recv(2) and send(2). What the event-loop servers
// add on top of the kernel's work is measured against this.
//
// The main thread waits in ppoll(2) for a connection, for stdin's end of
// file, or for SIGTERM/SIGINT: the signals are blocked in every thread and
// let through only inside that ppoll, so they cannot interrupt a worker.
// Stopping shuts every connection down, which wakes its worker, and joins.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <thread>

namespace {

constexpr std::size_t kReadSize = 64 * 1024;

volatile std::sig_atomic_t g_stop = 0;

/// One connection. `fd` is closed by the main thread after joining, never by
/// the worker, so a shutdown(2) from main can never hit a reused descriptor.
struct Worker {
  int fd;
  std::atomic<bool> done{false};
  std::thread thread;

  explicit Worker(int f) : fd(f), thread([this] { serve(); }) {}

  void serve() {
    auto buffer = std::make_unique<char[]>(kReadSize);
    for (;;) {
      const ssize_t n = ::recv(fd, buffer.get(), kReadSize, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // end of file, reset, or shut down by main
      if (!send_all(buffer.get(), size_t(n))) break;
    }
    done.store(true, std::memory_order_release);
  }

  bool send_all(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return false;
      p += k;
      n -= size_t(k);
    }
    return true;
  }

  void join_and_close() {
    thread.join();
    ::close(fd);
  }
};

int listen_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(std::uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

/// True once stdin has reached end of file (or failed): the contract's stop.
bool stdin_closed() {
  char scratch[256];
  const ssize_t n = ::read(0, scratch, sizeof scratch);
  return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

int parse_port(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "--port")) return std::atoi(argv[2]);
  std::fprintf(stderr, "usage: %s --port P   (see the contract in bench/echo_client.cpp)\n", argv[0]);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const int port = parse_port(argc, argv);
  sigset_t stop_signals, unblocked;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &unblocked);  // inherited by every worker
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);  // no SA_RESTART: ppoll returns EINTR
  sigaction(SIGINT, &sa, nullptr);

  const int listener = listen_loopback(port);
  if (listener < 0) {
    std::perror("blocking_echo_server: bind/listen");
    return 1;
  }
  std::printf("PORT %d\n", bound_port(listener));
  std::fflush(stdout);

  std::list<Worker> workers;  // a list: Worker holds a running thread and does not move
  while (!g_stop) {
    pollfd fds[2] = {{listener, POLLIN, 0}, {0, POLLIN, 0}};
    if (::ppoll(fds, 2, nullptr, &unblocked) < 0) {
      if (errno == EINTR) continue;
      std::perror("blocking_echo_server: ppoll");
      break;
    }
    if (fds[1].revents && stdin_closed()) break;
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    workers.remove_if([](Worker& w) {
      if (!w.done.load(std::memory_order_acquire)) return false;
      w.join_and_close();
      return true;
    });
    workers.emplace_back(fd);
  }

  for (Worker& w : workers) ::shutdown(w.fd, SHUT_RDWR);
  for (Worker& w : workers) w.join_and_close();
  ::close(listener);
  return 0;
}
