// duet's browser demo (web/demo): many concurrent tasks animating dots on
// timers, a fetch, a clock, live counters, and a button that cancels the
// animation tasks — the page stays smooth while the loop works, because the
// loop runs as a guest of the browser's event loop in 8 ms slices.
//
// C++ owns the state (positions in a float array); the page's
// requestAnimationFrame callback reads it from wasm memory and draws.
#include <emscripten.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "duet/duet.hpp"
#include "duet/web/driver.hpp"
#include "duet/web/fetch.hpp"
#include "duet/web/js.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::web::JsValue;

namespace {

constexpr int kDots = 400;
constexpr float kWidth = 880, kHeight = 440;

// x, y, hue per dot: what the page draws.
std::vector<float> g_state(kDots * 3, -100.0f);
std::vector<duet::Task<void>> g_dots;
duet::Loop* g_loop = nullptr;
int g_alive = 0;

JsValue demo() {
  return JsValue::global("duetDemo");
}

// One dot: its own pace (a timer per step), its own path.
Coro<void> dot(int i) {
  ++g_alive;
  struct Alive {
    ~Alive() {
      --g_alive;
      demo().set("tasks", JsValue(g_alive));
    }
  } alive;
  duet::Loop& loop = duet::get_running_loop();
  const float speed = 0.4f + 0.6f * static_cast<float>((i * 7919) % 100) / 100.0f;
  const float phase = static_cast<float>(i) * 0.137f;
  const auto period = std::chrono::milliseconds(8 + (i % 5) * 4);  // 8..24 ms
  const auto start = loop.time();
  for (;;) {
    const float t = std::chrono::duration<float>(loop.time() - start).count() * speed;
    g_state[i * 3] = kWidth / 2 + (kWidth / 2 - 20) * std::sin(1.3f * t + phase) * std::cos(0.21f * t + phase);
    g_state[i * 3 + 1] = kHeight / 2 + (kHeight / 2 - 20) * std::sin(0.9f * t + 2 * phase);
    g_state[i * 3 + 2] = std::fmod(static_cast<float>(i) * 0.9f + t * 20, 360.0f);
    co_await duet::sleep(period);
  }
}

void start_dots() {
  for (int i = 0; i < kDots; ++i) g_dots.push_back(duet::create_task(dot(i), "dot " + std::to_string(i)));
  demo().set("tasks", JsValue(kDots));
}

// Iterations per second, from the driver's statistics, twice a second.
Coro<void> counters() {
  duet::web::Driver* driver = duet::web::driver_of(duet::get_running_loop());
  std::uint64_t last = driver->statistics().iterations;
  for (;;) {
    co_await duet::sleep(500ms);
    const std::uint64_t now = driver->statistics().iterations;
    demo().set("iterationsPerSecond", JsValue(static_cast<double>(now - last) * 2));
    demo().set("slices", JsValue(static_cast<double>(driver->statistics().slices)));
    last = now;
  }
}

// A fetch with a timeout scope, shown on the page.
Coro<void> fetch_quote() {
  try {
    duet::web::Response r = co_await duet::timeout(3s, duet::web::fetch("quote.json"));
    JsValue parsed = JsValue::global("JSON").call("parse", {JsValue(r.text())});
    demo().set("fetched", parsed["quote"]);
  } catch (const std::exception& e) {
    demo().set("fetched", JsValue(std::string("fetch failed: ") + e.what()));
  }
}

Coro<void> app() {
  g_loop = &duet::get_running_loop();
  start_dots();
  auto quote = duet::create_task(fetch_quote());
  co_await counters();  // until the page goes away
}

}  // namespace

// What the page reads each frame.
extern "C" EMSCRIPTEN_KEEPALIVE const float* duet_demo_state() {
  return g_state.data();
}
extern "C" EMSCRIPTEN_KEEPALIVE int duet_demo_dots() {
  return kDots;
}

// The buttons. Called from DOM events, outside the loop's slices: the
// driver wakes for the work they schedule.
extern "C" EMSCRIPTEN_KEEPALIVE void duet_demo_cancel() {
  for (auto& t : g_dots) t.cancel();
  g_dots.clear();
}
extern "C" EMSCRIPTEN_KEEPALIVE void duet_demo_restart() {
  duet_demo_cancel();
  for (float& v : g_state) v = -100.0f;
  // The loop of the running app: create_task needs it current, so go through
  // the loop's own call_soon.
  if (duet::Loop* loop = g_loop) loop->call_soon([] { start_dots(); });
}

int main() {
  duet::web::start<void>(app());
  return 0;
}
