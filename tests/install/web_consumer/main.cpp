// Uses the installed duet::web: a run as a guest of Node's event loop, a
// timeout scope (which the tail-call bug once broke) and an exception.
#include <cstdio>
#include <duet/duet.hpp>
#include <stdexcept>

using namespace std::chrono_literals;

duet::Coro<int> answer() {
  co_await duet::sleep(2ms);
  co_return 42;
}

duet::Coro<int> app() {
  int n = co_await duet::timeout(1s, answer());
  bool timed_out = false;
  try {
    co_await duet::timeout(5ms, duet::sleep(10s));
  } catch (const duet::TimeoutError&) {
    timed_out = true;
  }
  co_return timed_out ? n : -1;
}

int main() {
  duet::web::start<int>(app(), [](duet::Outcome<int> o) {
    if (o.has_value() && o.value() == 42) std::puts("consumer ok");
  });
}
