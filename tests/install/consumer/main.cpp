#include <cstdio>

#include <duet/duet.hpp>

int main() {
  auto loop = duet::native::new_event_loop();
  int n = 0;
  loop->call_soon([&] { ++n; });
  loop->call_later(std::chrono::milliseconds(1), [&] {
    ++n;
    loop->stop();
  });
  loop->run_forever();
  std::printf("consumer ok: %d callbacks\n", n);
  return n == 2 ? 0 : 1;
}
