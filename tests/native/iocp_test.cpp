// The IOCP backend and the socket operations over it (duet/native/io.hpp:
// the same sock_* as on POSIX), for real on 127.0.0.1 — under Wine here. The cases follow the issue:
// wakeup while blocked, a cancelled recv then reuse, closing with a
// pending accept, 200 concurrent connections, guest mode over IOCP, and
// run()'s Ctrl+C (asyncio on Windows cancels main and raises
// KeyboardInterrupt).
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <duet/duet.hpp>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "duet/platform/iocp_backend.hpp"
#include "native/socket_helpers.hpp"
#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using namespace duet::native;

namespace {

// Receives until `n` bytes or EOF.
Coro<std::string> recv_exactly(Socket& s, std::size_t n) {
  std::string out;
  std::vector<char> buf(16384);
  while (out.size() < n) {
    const std::size_t got =
        co_await sock_recv_into(s, std::span<char>(buf.data(), std::min(buf.size(), n - out.size())));
    if (got == 0) break;
    out.append(buf.data(), got);
  }
  co_return out;
}

// A listening socket on 127.0.0.1, any port.
Socket listener() {
  Socket l = Socket::tcp(AF_INET);
  l.bind(SocketAddress("127.0.0.1", 0));
  l.listen();
  return l;
}

// Accepts one connection on l.
Coro<Socket> accept_one(Socket& l) {
  auto accepted = co_await sock_accept(l);
  co_return std::move(accepted.first);
}

// Runs the loop until nothing is in flight (cancelled completions arrive).
Coro<void> settle(std::size_t in_flight) {
  for (int i = 0; i < 200 && overlapped_operations_in_flight() > in_flight; ++i) co_await duet::sleep(5ms);
}

}  // namespace

TEST_CASE("IOCP backend: wake() from another thread ends a blocked wait", "[iocp]") {
  duet::platform::IocpBackend backend;
  std::vector<duet::IoEvent> events;
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    backend.wake();
  });
  const auto start = std::chrono::steady_clock::now();
  backend.wait(std::nullopt, events);  // no timeout: only the wake ends it
  waker.join();
  CHECK(events.empty());  // the wakeup is swallowed
  CHECK(std::chrono::steady_clock::now() - start >= 40ms);
  // A timeout ends a wait without a wake, never early.
  const auto t0 = std::chrono::steady_clock::now();
  backend.wait(30ms, events);
  CHECK(std::chrono::steady_clock::now() - t0 >= 30ms);
}

TEST_CASE("IOCP: call_soon_threadsafe wakes a loop blocked in its wait; wakes are coalesced", "[iocp]") {
  auto loop = duet::native::new_event_loop();
  CHECK(loop->backend().name() == "iocp");
  duet::Future<int> got = loop->create_future<int>();
  std::atomic<int> sum{0};
  std::thread poster([&] {
    std::this_thread::sleep_for(50ms);
    for (int i = 1; i <= 1000; ++i) loop->call_soon_threadsafe([&sum, i] { sum += i; });
    loop->call_soon_threadsafe([&] { got.set_result(sum.load()); });
  });
  const int total = loop->run_until_complete(got);
  poster.join();
  CHECK(total == 500500);
  CHECK(loop->statistics().wakeups < 100);
}

TEST_CASE("IOCP: echo over 127.0.0.1, addresses, EOF", "[iocp]") {
  auto loop = duet::native::new_event_loop();
  const std::size_t in_flight = overlapped_operations_in_flight();
  auto main = [&]() -> Coro<void> {
    Socket l = listener();
    const SocketAddress where = l.local_address();
    CHECK(where.to_string().rfind("127.0.0.1:", 0) == 0);
    auto server = [&]() -> Coro<void> {
      Socket peer = co_await accept_one(l);
      std::string got = co_await recv_exactly(peer, 5);
      const std::string reply = "echo:" + got;
      co_await sock_sendall(peer, reply);
      peer.shutdown(SHUT_WR);
    };
    auto task = duet::create_task(server());
    Socket c = Socket::tcp(AF_INET);
    co_await sock_connect(c, where);
    CHECK(c.peer_address().port() == where.port());
    co_await sock_sendall(c, "hello");
    std::string reply = co_await recv_exactly(c, 100);  // stops at EOF
    CHECK(reply == "echo:hello");
    co_await task;
  };
  loop->run_until_complete(main());
  loop->run_until_complete(settle(in_flight));
  CHECK(overlapped_operations_in_flight() == in_flight);
}

TEST_CASE("IOCP: connecting to a closed port raises ConnectionRefusedError", "[iocp]") {
  auto loop = duet::native::new_event_loop();
  auto main = [&]() -> Coro<bool> {
    SocketAddress nobody;
    {
      Socket l = listener();
      nobody = l.local_address();
    }  // closed: nothing listens there now
    Socket c = Socket::tcp(AF_INET);
    try {
      co_await sock_connect(c, nobody);
    } catch (const duet::ConnectionRefusedError&) {
      co_return true;
    }
    co_return false;
  };
  CHECK(loop->run_until_complete(main()));
}

TEST_CASE("IOCP: a cancelled recv is withdrawn (CancelIoEx) and the socket stays usable", "[iocp]") {
  auto loop = duet::native::new_event_loop();
  const std::size_t in_flight = overlapped_operations_in_flight();
  auto main = [&]() -> Coro<void> {
    Socket l = listener();
    auto accepting = duet::create_task(accept_one(l));
    Socket c = Socket::tcp(AF_INET);
    co_await sock_connect(c, l.local_address());
    Socket peer = co_await accepting;
    // Nothing is sent: the recv times out (its task is cancelled).
    std::vector<char> buf(64);
    const bool timed_out =
        co_await duet::test::raises<duet::TimeoutError>(duet::timeout(50ms, sock_recv_into(c, std::span<char>(buf))));
    CHECK(timed_out);
    // The cancelled operation completes (aborted) and is freed.
    co_await settle(in_flight + 0);
    CHECK(overlapped_operations_in_flight() == in_flight);
    // The socket still works both ways.
    co_await sock_sendall(peer, "after the cancel");
    std::string got = co_await recv_exactly(c, 16);
    CHECK(got == "after the cancel");
    co_await sock_sendall(c, "and back");
    std::string back = co_await recv_exactly(peer, 8);
    CHECK(back == "and back");
  };
  loop->run_until_complete(main());
}

TEST_CASE("IOCP: closing a listener with a pending accept fails the accept, safely", "[iocp]") {
  auto loop = duet::native::new_event_loop();
  const std::size_t in_flight = overlapped_operations_in_flight();
  auto main = [&]() -> Coro<void> {
    Socket l = listener();
    auto accepting = duet::create_task(accept_one(l));
    co_await duet::sleep(20ms);
    CHECK(overlapped_operations_in_flight() == in_flight + 1);
    l.close();
    const bool failed = co_await duet::test::raises<duet::OSError>(accepting);
    CHECK(failed);
    CHECK(overlapped_operations_in_flight() == in_flight);
    // A task cancelled while its accept is pending: the operation outlives
    // the task until the aborted completion arrives.
    Socket l2 = listener();
    auto accepting2 = duet::create_task(accept_one(l2));
    co_await duet::sleep(10ms);
    accepting2.cancel();
    const bool cancelled = co_await duet::test::raises<duet::CancelledError>(accepting2);
    CHECK(cancelled);
    co_await settle(in_flight);
    CHECK(overlapped_operations_in_flight() == in_flight);
  };
  loop->run_until_complete(main());
}

TEST_CASE("IOCP: 200 concurrent connections echo 64 KiB each, no data lost", "[iocp]") {
  auto loop = duet::native::new_event_loop();
  constexpr int kClients = 200;
  constexpr std::size_t kBytes = 64 * 1024;
  auto main = [&]() -> Coro<int> {
    Socket l = listener();
    const SocketAddress where = l.local_address();
    auto echo = [](Socket peer) -> Coro<void> {
      std::vector<char> buf(16384);
      for (;;) {
        const std::size_t n = co_await sock_recv_into(peer, std::span<char>(buf));
        if (n == 0) break;
        co_await sock_sendall(peer, std::string_view(buf.data(), n));
      }
      peer.shutdown(SHUT_WR);
    };
    std::vector<duet::Task<void>> handlers;
    auto server = [&]() -> Coro<void> {
      for (int i = 0; i < kClients; ++i) {
        Socket peer = co_await accept_one(l);
        handlers.push_back(duet::create_task(echo(std::move(peer))));
      }
    };
    auto client = [&](int id) -> Coro<bool> {
      std::string message(kBytes, '\0');
      for (std::size_t i = 0; i < kBytes; ++i) message[i] = static_cast<char>('a' + (id * 7 + i) % 26);
      Socket c = Socket::tcp(AF_INET);
      co_await sock_connect(c, where);
      auto sending = [](Socket& s, const std::string& m) -> Coro<void> {
        for (std::size_t off = 0; off < m.size(); off += 8192)
          co_await sock_sendall(s, std::string_view(m.data() + off, std::min<std::size_t>(8192, m.size() - off)));
        s.shutdown(SHUT_WR);
      };
      auto sender = duet::create_task(sending(c, message));
      std::string back = co_await recv_exactly(c, kBytes + 1);
      co_await sender;
      co_return back == message;
    };
    auto accepting = duet::create_task(server());
    std::vector<duet::Task<bool>> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(duet::create_task(client(i)));
    std::vector<bool> ok = co_await duet::gather(std::move(clients));
    co_await accepting;
    co_await duet::gather(std::move(handlers));
    co_return static_cast<int>(std::count(ok.begin(), ok.end(), true));
  };
  auto bounded = [&]() -> Coro<int> {
    const int n = co_await duet::timeout(60s, main());
    co_return n;
  };
  CHECK(loop->run_until_complete(bounded()) == kClients);
}

namespace {
// A host event loop: the test's own thread running posted functions.
class HostQueue {
 public:
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(fn));
    }
    ready_.notify_one();
  }
  // Runs posted functions until `done` or the time limit.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      std::unique_lock lock(mutex_);
      if (!ready_.wait_until(lock, end, [&] { return !queue_.empty(); })) return false;
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      fn();
    }
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
};
}  // namespace

TEST_CASE("IOCP: guest mode over the completion port (a backend thread polls, the host runs)", "[iocp][guest]") {
  HostQueue host;
  const auto host_thread = std::this_thread::get_id();
  bool on_host = true;
  auto main = [&]() -> Coro<std::string> {
    on_host = on_host && std::this_thread::get_id() == host_thread;
    Socket l = listener();
    auto server = [&]() -> Coro<void> {
      Socket peer = co_await accept_one(l);
      std::string got = co_await recv_exactly(peer, 4);
      co_await duet::sleep(10ms);  // a timer in guest mode too
      const std::string reply = got + "-pong";
      co_await sock_sendall(peer, reply);
    };
    auto task = duet::create_task(server());
    Socket c = Socket::tcp(AF_INET);
    co_await sock_connect(c, l.local_address());
    co_await sock_sendall(c, "ping");
    std::string reply = co_await recv_exactly(c, 9);
    co_await task;
    on_host = on_host && std::this_thread::get_id() == host_thread;
    co_return reply;
  };
  std::optional<duet::Outcome<std::string>> result;
  auto run = duet::native::start_guest_run<std::string>(
      main(), duet::native::GuestHost{[&](std::function<void()> fn) { host.post(std::move(fn)); }},
      [&](duet::Outcome<std::string> o) { result = std::move(o); });
  REQUIRE(host.run_until([&] { return result.has_value(); }, 20s));
  CHECK(result->value() == "ping-pong");
  CHECK(on_host);
}

TEST_CASE("IOCP: Ctrl+C (the console control handler) cancels main in run(): KeyboardInterrupt", "[iocp][run]") {
  // Windows calls the handler on a thread of its own; so does this test
  // (Wine delivers no console events to a process without a console).
  std::atomic<bool> cleanup_ran{false};
  auto main = [&]() -> Coro<void> {
    std::thread ctrl_c([] {
      std::this_thread::sleep_for(30ms);
      duet::native::detail::console_ctrl_handler(CTRL_C_EVENT);
    });
    ctrl_c.detach();
    try {
      co_await duet::sleep(30s);
    } catch (const duet::CancelledError&) {
      cleanup_ran = true;
      throw;
    }
  };
  bool interrupted = false;
  try {
    duet::run(main());
  } catch (const duet::KeyboardInterrupt&) {
    interrupted = true;
  }
  CHECK(interrupted);
  CHECK(cleanup_ran);
  // With no run, the handler declines (the default handler would act).
  CHECK(duet::native::detail::console_ctrl_handler(CTRL_C_EVENT) == FALSE);
}
