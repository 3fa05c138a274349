// The readiness backends against real fds: every case runs on the system's
// best backend (epoll here, kqueue on the BSDs and macOS) and on poll, since
// they promise the same contract (duet/platform/readiness_backend.hpp).
//
// Timing: a wait is only ever checked not to end *before* its timeout; the
// upper bounds are sanity limits far beyond any scheduling delay.
#include "duet/platform/readiness_backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "duet/errors.hpp"
#include "duet/platform/platform.hpp"

using namespace std::chrono_literals;
using duet::IoEvent;
using duet::platform::ReadinessBackend;
namespace flags = duet::event_flags;
using steady = std::chrono::steady_clock;

namespace {

#if defined(__linux__)
constexpr const char* kBest = "epoll";
#else
constexpr const char* kBest = "kqueue";
#endif

constexpr auto kSanityLimit = 5s;  // far beyond any scheduling delay

std::unique_ptr<ReadinessBackend> make_readiness_backend(const std::string& name) {
  auto backend = duet::platform::make_backend(name);
  auto* readiness = dynamic_cast<ReadinessBackend*>(backend.get());
  REQUIRE(readiness != nullptr);
  backend.release();
  return std::unique_ptr<ReadinessBackend>(readiness);
}

/// An owner of fds for the test to register; never called, since the tests
/// read the backend's IoEvents themselves.
struct Target final : duet::EventTarget {
  void on_event(duet::Loop&, const IoEvent&) override {}
};

/// Two connected fds (a socketpair or a pipe), closed at the end.
struct FdPair {
  int fd[2] = {-1, -1};
  static FdPair sockets() {
    FdPair p;
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, p.fd) == 0);
    return p;
  }
  static FdPair pipe() {
    FdPair p;
    REQUIRE(::pipe(p.fd) == 0);
    return p;
  }
  FdPair() = default;
  FdPair(FdPair&& other) noexcept : fd{other.fd[0], other.fd[1]} { other.fd[0] = other.fd[1] = -1; }
  FdPair& operator=(FdPair&&) = delete;
  ~FdPair() {
    close(0);
    close(1);
  }
  void close(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
  void send(int i) const { REQUIRE(::write(fd[i], "x", 1) == 1); }
};

/// The flags reported for `target`, merged (kqueue reports read and write
/// filters as separate events).
std::uint32_t flags_for(const std::vector<IoEvent>& events, const Target& target) {
  std::uint32_t result = 0;
  for (const auto& event : events)
    if (event.target == &target) result |= event.flags;
  return result;
}

std::vector<IoEvent> wait_for(ReadinessBackend& backend, std::optional<duet::Duration> timeout) {
  std::vector<IoEvent> events;
  backend.wait(timeout, events);
  return events;
}

/// Open fds below a bound, to show a backend closes what it opens.
int count_open_fds() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) ++n;
  return n;
}

std::atomic<int> signals_seen{0};
void on_sigusr1(int) {
  signals_seen.fetch_add(1);
}

/// SIGUSR1 handled without SA_RESTART while in scope, so a blocked wait
/// fails with EINTR.
struct Sigusr1Handler {
  struct sigaction old {};
  Sigusr1Handler() {
    struct sigaction sa {};
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);
  }
  ~Sigusr1Handler() { ::sigaction(SIGUSR1, &old, nullptr); }
};

}  // namespace

TEST_CASE("a backend is named and closes every fd it opened", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  const int before = count_open_fds();
  {
    auto backend = make_readiness_backend(name);
    CHECK(backend->name() == name);
    auto pair = FdPair::sockets();
    Target target;
    backend->watch(pair.fd[0], flags::readable | flags::writable, &target);
    backend->wake();
    wait_for(*backend, 0ns);
  }
  CHECK(count_open_fds() == before);
}

TEST_CASE("a socket with data is reported readable, and again by every wait until it is drained",
          "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  Target target;
  backend->watch(pair.fd[0], flags::readable, &target);
  CHECK(flags_for(wait_for(*backend, 20ms), target) == 0);

  pair.send(1);
  CHECK(flags_for(wait_for(*backend, kSanityLimit), target) & flags::readable);
  // Level-triggered: nothing was read, so the next wait says it again.
  CHECK(flags_for(wait_for(*backend, kSanityLimit), target) & flags::readable);

  char byte;
  REQUIRE(::read(pair.fd[0], &byte, 1) == 1);
  CHECK(flags_for(wait_for(*backend, 20ms), target) == 0);
}

TEST_CASE("a socket with buffer space is reported writable, and not readable", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  Target target;
  backend->watch(pair.fd[0], flags::writable, &target);
  const auto seen = flags_for(wait_for(*backend, kSanityLimit), target);
  CHECK(seen & flags::writable);
  CHECK_FALSE(seen & flags::readable);
}

TEST_CASE("watch() again replaces the interest and the target", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  pair.send(1);  // fd[0] is now readable and writable
  Target first, second;

  backend->watch(pair.fd[0], flags::readable, &first);
  auto seen = flags_for(wait_for(*backend, kSanityLimit), first);
  CHECK(seen & flags::readable);
  CHECK_FALSE(seen & flags::writable);

  backend->watch(pair.fd[0], flags::writable, &first);
  seen = flags_for(wait_for(*backend, kSanityLimit), first);
  CHECK(seen & flags::writable);
  CHECK_FALSE(seen & flags::readable);

  backend->watch(pair.fd[0], flags::writable, &second);
  const auto events = wait_for(*backend, kSanityLimit);
  CHECK(flags_for(events, second) & flags::writable);
  CHECK(flags_for(events, first) == 0);
}

TEST_CASE("an unwatched fd is no longer reported", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  pair.send(1);
  Target target;
  backend->watch(pair.fd[0], flags::readable, &target);
  REQUIRE(flags_for(wait_for(*backend, kSanityLimit), target) & flags::readable);

  SECTION("by unwatch()") {
    backend->unwatch(pair.fd[0]);
  }
  SECTION("by watch() with no interest") {
    backend->watch(pair.fd[0], 0, &target);
  }
  CHECK(wait_for(*backend, 20ms).empty());

  // Unwatching again, or an fd never watched, is a no-op.
  backend->unwatch(pair.fd[0]);
  backend->unwatch(pair.fd[1]);
  backend->unwatch(-1);
}

TEST_CASE("unwatching one of several fds leaves the others reported to their own targets", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  FdPair pairs[3] = {FdPair::sockets(), FdPair::sockets(), FdPair::sockets()};
  Target targets[3];
  for (int i = 0; i < 3; ++i) {
    pairs[i].send(1);
    backend->watch(pairs[i].fd[0], flags::readable, &targets[i]);
  }
  auto events = wait_for(*backend, kSanityLimit);
  for (auto& target : targets) CHECK(flags_for(events, target) == flags::readable);

  backend->unwatch(pairs[0].fd[0]);  // the first: the last takes its place in poll's set
  events = wait_for(*backend, kSanityLimit);
  CHECK(flags_for(events, targets[0]) == 0);
  CHECK(flags_for(events, targets[1]) == flags::readable);
  CHECK(flags_for(events, targets[2]) == flags::readable);

  backend->unwatch(pairs[2].fd[0]);
  events = wait_for(*backend, kSanityLimit);
  CHECK(flags_for(events, targets[0]) == 0);
  CHECK(flags_for(events, targets[1]) == flags::readable);
  CHECK(flags_for(events, targets[2]) == 0);

  backend->watch(pairs[0].fd[0], flags::readable, &targets[0]);
  events = wait_for(*backend, kSanityLimit);
  CHECK(flags_for(events, targets[0]) == flags::readable);
  CHECK(flags_for(events, targets[1]) == flags::readable);
  CHECK(flags_for(events, targets[2]) == 0);
}

TEST_CASE("watch() of a closed or invalid fd throws OSError naming the fd", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  Target target;
  const auto interest = GENERATE(flags::readable, flags::writable);
  int fd = -1;
  SECTION("a closed fd") {
    auto pair = FdPair::sockets();
    fd = pair.fd[0];
    pair.close(0);
  }
  SECTION("-1") {}
  try {
    backend->watch(fd, interest, &target);
    FAIL("watch(" << fd << ") did not throw");
  } catch (const duet::OSError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("fd " + std::to_string(fd)) != std::string::npos);
    CHECK(e.code() == std::errc::bad_file_descriptor);
  }
  // The failed watch left nothing behind.
  CHECK(wait_for(*backend, 0ns).empty());
}

TEST_CASE("a closed peer is reported as hangup or error, whatever the interest", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  Target target;
  auto check_reported = [&](FdPair& pair, int watched, std::uint32_t interest) {
    INFO("interest " << interest);
    backend->watch(pair.fd[watched], interest, &target);
    pair.close(1 - watched);
    CHECK(flags_for(wait_for(*backend, kSanityLimit), target) & (flags::hangup | flags::error));
    backend->unwatch(pair.fd[watched]);
  };
  SECTION("a socket") {
    const auto interest = GENERATE(flags::readable, flags::writable);
    auto pair = FdPair::sockets();
    check_reported(pair, 0, interest);
  }
  SECTION("the read end of a pipe") {
    auto pair = FdPair::pipe();
    check_reported(pair, 0, flags::readable);
  }
  SECTION("the write end of a pipe") {
    auto pair = FdPair::pipe();
    check_reported(pair, 1, flags::writable);
  }
}

TEST_CASE("wait(0) returns at once with nothing ready", "[platform][readiness][timeout]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  Target target;
  backend->watch(pair.fd[0], flags::readable, &target);
  const auto start = steady::now();
  CHECK(wait_for(*backend, 0ns).empty());
  CHECK(steady::now() - start < kSanityLimit);
}

TEST_CASE("a wait with nothing ready never ends before its timeout", "[platform][readiness][timeout]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  // Not whole milliseconds too: a timeout rounded down would end early.
  const duet::Duration timeout = GENERATE(duet::Duration(1ms), duet::Duration(1500us), duet::Duration(2100us),
                                          duet::Duration(10ms), duet::Duration(25ms));
  INFO("backend " << name << ", timeout " << timeout.count() << " ns");
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  Target target;
  backend->watch(pair.fd[0], flags::readable, &target);
  const auto start = steady::now();
  CHECK(wait_for(*backend, timeout).empty());
  const auto waited = steady::now() - start;
  CHECK(waited >= timeout);
  CHECK(waited < kSanityLimit);
}

TEST_CASE("wake() from another thread ends a wait with no timeout, and reports nothing",
          "[platform][readiness][wakeup]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);  // most likely blocked by now; either way it must return
    backend->wake();
  });
  const auto events = wait_for(*backend, std::nullopt);
  waker.join();
  CHECK(events.empty());
}

TEST_CASE("a wake() before the wait makes the next wait return at once, and only that one",
          "[platform][readiness][wakeup]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  const int wakes = GENERATE(1, 3);
  INFO("backend " << name << ", " << wakes << " wakes");
  auto backend = make_readiness_backend(name);
  for (int i = 0; i < wakes; ++i) backend->wake();
  const auto start = steady::now();
  CHECK(wait_for(*backend, 1h).empty());
  CHECK(steady::now() - start < kSanityLimit);
  // The wakes were consumed together: the wait after blocks again.
  const auto again = steady::now();
  CHECK(wait_for(*backend, 20ms).empty());
  CHECK(steady::now() - again >= 20ms);
}

TEST_CASE("a signal during a wait does not end it early (EINTR is retried with the time left)",
          "[platform][readiness][signal]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  Sigusr1Handler handler;
  signals_seen = 0;
  const pthread_t waiter = ::pthread_self();
  std::atomic<bool> done{false};
  const auto start = steady::now();

  SECTION("a wait with a timeout") {
    std::thread killer([&] {
      do {
        ::pthread_kill(waiter, SIGUSR1);
        std::this_thread::sleep_for(5ms);
      } while (!done);
    });
    const auto events = wait_for(*backend, 100ms);
    const auto waited = steady::now() - start;
    done = true;
    killer.join();
    CHECK(events.empty());
    CHECK(waited >= 100ms);
  }
  SECTION("a wait with no timeout, ended by a wake() after the signals") {
    std::thread killer([&] {
      const auto began = steady::now();  // after `start`
      while (steady::now() - began < 50ms) {
        ::pthread_kill(waiter, SIGUSR1);
        std::this_thread::sleep_for(5ms);
      }
      backend->wake();
    });
    const auto events = wait_for(*backend, std::nullopt);
    const auto waited = steady::now() - start;
    killer.join();
    CHECK(events.empty());
    CHECK(waited >= 50ms);  // the wake comes 50 ms after `start` at the earliest
  }
  CHECK(signals_seen > 0);
}

TEST_CASE("watch() from another thread during a wait with no timeout is seen by that wait",
          "[platform][readiness][threads]") {
  // The kernel's set for epoll and kqueue; for poll, the wait is woken and
  // polls the new set.
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  auto pair = FdPair::sockets();
  pair.send(1);  // readable before it is watched
  Target target;
  std::thread watcher([&] {
    std::this_thread::sleep_for(20ms);  // most likely blocked by now
    backend->watch(pair.fd[0], flags::readable, &target);
  });
  const auto events = wait_for(*backend, std::nullopt);
  watcher.join();
  CHECK(flags_for(events, target) & flags::readable);
}

TEST_CASE("pollable_fd() is readable when a wait would not block, or -1 for poll", "[platform][readiness]") {
  const std::string name = GENERATE(as<std::string>{}, kBest, "poll");
  INFO("backend " << name);
  auto backend = make_readiness_backend(name);
  if (name == "poll") {
    CHECK(backend->pollable_fd() == -1);
    return;
  }
  REQUIRE(backend->pollable_fd() >= 0);
  auto pair = FdPair::sockets();
  Target target;
  backend->watch(pair.fd[0], flags::readable, &target);
  pollfd host{backend->pollable_fd(), POLLIN, 0};
  CHECK(::poll(&host, 1, 0) == 0);
  pair.send(1);
  CHECK(::poll(&host, 1, 5000) == 1);
  CHECK(host.revents & POLLIN);
}
