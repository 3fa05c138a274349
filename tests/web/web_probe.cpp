// What the real-browser checks (tests/web/browser/run.mjs) call from the
// page: a churn of many tasks for the responsiveness check, and the
// JS-callback-to-work latency of the driver (bench/: "W9").
#include <emscripten.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "duet/duet.hpp"
#include "duet/web/driver.hpp"
#include "duet/web/js.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::web::JsValue;

namespace {

// Computation that takes about as long every time (a clock can't measure
// it: a page's performance.now() is coarsened to 0.1 ms).
unsigned compute(int rounds) {
  volatile unsigned x = 1;
  for (int i = 0; i < rounds; ++i) x = x * 1664525u + 1013904223u;
  return x;
}

// One of the churning tasks: `steps` turns of `rounds` of computation, each
// followed by a yield to the other tasks.
Coro<void> churner(duet::TimePoint go, int steps, int rounds, int* finished) {
  co_await duet::sleep(go - duet::get_running_loop().time());
  for (int i = 0; i < steps; ++i) {
    compute(rounds);
    co_await duet::sleep(0ms);
  }
  ++*finished;
}

// How many slices the driver cut short (budget spent) during the last churn.
std::uint64_t g_churn_cut_short = 0;

Coro<int> churn(int tasks, int steps, int rounds) {
  const duet::web::Driver* driver = duet::web::driver_of(duet::get_running_loop());
  const std::uint64_t cut_before = driver->statistics().cut_short;
  auto finished = std::make_shared<int>(0);
  std::vector<duet::Task<void>> all;
  all.reserve(static_cast<std::size_t>(tasks));
  // Created in batches: one callback creating 100,000 tasks would itself
  // be a 100 ms callback, which no budget can split. All of them start
  // together, on timers due at one moment (each timer's callback is a
  // callback of its own, which a budget can split; an Event waking 100,000
  // waiters would be one long callback), so that every iteration holds a
  // step of each: about 100,000 callbacks, far longer than a frame.
  const duet::TimePoint go = duet::get_running_loop().time() + 300ms;
  for (int i = 0; i < tasks; ++i) {
    all.push_back(duet::create_task(churner(go, steps, rounds, finished.get())));
    if (i % 1000 == 999) co_await duet::sleep(0ms);
  }
  co_await duet::gather(std::move(all));
  g_churn_cut_short = driver->statistics().cut_short - cut_before;
  co_return *finished;
}

// The latency probe: a JS callback (a microtask after the previous work)
// schedules work with call_soon; the work records how long that took.
struct Probe {
  duet::Loop* loop = nullptr;
  std::vector<double> samples;
  int wanted = 0;
  duet::Future<void> done;
  explicit Probe(duet::Loop& l) : loop(&l), done(l) {}
};
Probe* g_probe = nullptr;

Coro<double> latency(int n) {
  Probe probe(duet::get_running_loop());
  probe.wanted = n;
  g_probe = &probe;
  JsValue::global("duetProbeKick").invoke();  // the first JS callback
  co_await probe.done;
  g_probe = nullptr;
  std::sort(probe.samples.begin(), probe.samples.end());
  co_return probe.samples[probe.samples.size() / 2];  // the median
}

}  // namespace

// churn(tasks, steps, rounds, budget_ms): a Promise of the number of tasks
// that finished; budget_ms < 0 means no budget.
extern "C" EMSCRIPTEN_KEEPALIVE int duet_probe_churn(int tasks, int steps, int rounds, double budget_ms) {
  duet::web::DriverOptions options;
  options.slice_budget =
      budget_ms < 0 ? duet::Duration::max()
                    : std::chrono::duration_cast<duet::Duration>(std::chrono::duration<double, std::milli>(budget_ms));
  return duet::web::start_promise(churn(tasks, steps, rounds), options).release();
}

// The slices the driver cut short during the last churn: the budget at work.
extern "C" EMSCRIPTEN_KEEPALIVE double duet_probe_churn_cut_short() { return static_cast<double>(g_churn_cut_short); }

// latency(n, zero_delay): a Promise of the median latency in ms over n
// probes; zero_delay as DriverOptions::ZeroDelay (1 MessageChannel, 3
// setTimeout(0)).
extern "C" EMSCRIPTEN_KEEPALIVE int duet_probe_latency(int n, int zero_delay) {
  duet::web::DriverOptions options;
  options.zero_delay = static_cast<duet::web::DriverOptions::ZeroDelay>(zero_delay);
  return duet::web::start_promise(latency(n), options).release();
}

// Called by the page's duetProbeKick (a microtask): schedules the work.
extern "C" EMSCRIPTEN_KEEPALIVE void duet_probe_post(double t0) {
  Probe* probe = g_probe;
  if (!probe) return;
  probe->loop->call_soon([probe, t0] {
    probe->samples.push_back(emscripten_get_now() - t0);
    if (static_cast<int>(probe->samples.size()) >= probe->wanted) {
      probe->done.set_result();
    } else {
      JsValue::global("duetProbeKick").invoke();  // queues the next JS callback
    }
  });
}

int main() {
  return 0;
}
