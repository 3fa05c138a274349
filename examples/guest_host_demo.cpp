// duet as a guest of a hand-written host loop: the host is a thread that
// runs a queue of functions (what a GUI toolkit or a game loop offers as
// "run this on my thread soon"). The host code is the 20 lines marked HOST;
// duet needs nothing else from it.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <duet/duet.hpp>
#include <functional>
#include <mutex>

using namespace std::chrono_literals;

// ---- HOST: a minimal event loop -------------------------------------------------------
struct Host {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::function<void()>> queue;
  bool quit = false;
  void post(std::function<void()> fn) {  // thread-safe
    std::lock_guard lock(mutex);
    queue.push_back(std::move(fn));
    ready.notify_one();
  }
  void run() {  // the host's own loop, on its own (here: the main) thread
    while (!quit) {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return !queue.empty(); });
      auto fn = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      fn();
    }
  }
};
// ---- end of HOST ----------------------------------------------------------------------

duet::Coro<int> guest_main() {
  const auto start = duet::get_running_loop().time();
  int total = 0;
  for (int i = 1; i <= 3; ++i) {
    co_await duet::sleep(10ms * i);
    std::printf("  guest: tick %d after %.0f ms\n", i,
                std::chrono::duration<double, std::milli>(duet::get_running_loop().time() - start).count());
    total += i;
  }
  co_return total;
}

int main() {
  Host host;
  std::printf("a host loop with duet as its guest\n");
  std::unique_ptr<duet::native::GuestRun> run;
  host.post([&] {
    run = duet::native::start_guest_run<int>(
        guest_main(), duet::native::GuestHost{[&](std::function<void()> fn) { host.post(std::move(fn)); }},
        [&](duet::Outcome<int> outcome) {
          std::printf("  host: the guest finished with %d\n", outcome.value());
          host.quit = true;
        });
    // The host keeps doing its own work meanwhile:
    host.post([] { std::printf("  host: my own event\n"); });
  });
  host.run();
  run.reset();
  return 0;
}
