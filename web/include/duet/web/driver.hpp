// duet/web/driver.hpp — the loop as a guest of the JavaScript event loop
// (a browser page, a Web Worker, Node).
//
//   int main() {
//     duet::web::start(app(), [](duet::Outcome<void> done) { ... });   // returns at once
//   }
//   // or, from C++ called by JavaScript:  return duet::web::start_promise(app());
//
// The driver never blocks and never polls. A slice is one host macrotask:
// Loop::process_ready(deadline) called again and again — one iteration
// each — while callbacks are ready and the budget lasts. After it the
// driver arranges the next:
//
//   callbacks ready        a zero-delay macrotask: setImmediate under Node,
//                          a MessageChannel message in browsers and Workers
//                          (setTimeout(0) is clamped to >= 4 ms once nested)
//   only timers pending    one host setTimeout at the earliest deadline,
//                          re-armed only when that deadline changes and
//                          cleared when no timer is left
//   nothing                nothing: the page is idle
//
// Work that arrives between slices from JavaScript (a promise settling
// into a Future, a DOM event calling into C++ that calls call_soon or
// call_later) wakes the driver through the loop's backend, which schedules
// the next slice if none is scheduled. A call that arrives during a slice
// (JavaScript called synchronously by a duet callback, calling back into the
// loop) is queued: slices never nest, and tick() called re-entrantly only
// schedules one.
//
// Time slicing. A slice runs callbacks until the budget (8 ms by default)
// is used up, then gives the thread back to the host, which can render and
// deliver input before the next slice; the callbacks it did not reach run
// first in the next slice, so their order is asyncio's. The trade-off: a
// smaller budget keeps frames smooth but pays one macrotask hop (a few
// microseconds) per slice and lets the browser's own tasks interleave with
// an iteration; an infinite budget runs every iteration to the end, which
// is fastest and keeps iterations atomic, but one long iteration freezes
// the page for its whole length. The budget is checked between callbacks:
// one callback that runs 50 ms still makes a 50 ms slice.
//
// Timers fire at their deadline in loop.time() (performance.now()) or
// later, never earlier: a host timer that fires early only re-arms, and a
// throttled background tab fires them late but never drops them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "duet/coro.hpp"
#include "duet/loop.hpp"
#include "duet/outcome.hpp"
#include "duet/task.hpp"
#include "duet/web/js.hpp"

namespace duet::web {

struct DriverOptions {
  /// How long one slice may run callbacks before it yields to the host.
  /// Duration::max() turns slicing off: each slice is then exactly one
  /// whole iteration, however long it takes.
  Duration slice_budget = std::chrono::milliseconds(8);
  /// How a zero-delay macrotask is made: automatic (setImmediate under Node,
  /// MessageChannel elsewhere), or forced (set_timeout only to measure what
  /// a setTimeout-based driver costs).
  enum class ZeroDelay { automatic = 0, message_channel = 1, set_immediate = 2, set_timeout = 3 };
  ZeroDelay zero_delay = ZeroDelay::automatic;
};

/// Drives one loop from the JavaScript event loop. The loop must come from
/// web::new_event_loop() (its backend is how the driver hears about work
/// that arrives between slices). loop.stop() stops the driver after the
/// current slice, as it makes run_forever() return. A Driver must not be
/// destroyed from inside one of its own slices (stop() it there instead).
class Driver {
 public:
  explicit Driver(Loop& loop, DriverOptions options = {});
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  /// Stops the driver if it runs: no slice runs after this.
  ~Driver();

  /// Marks the loop running (run_forever and close refuse meanwhile) and
  /// schedules the first slice. Keeps the Emscripten runtime alive until
  /// stop().
  void start();
  /// No slice runs after this; the host timer is cleared, the loop is no
  /// longer running (it may be closed). Safe from inside a slice: the
  /// slice ends after the current callback.
  void stop() noexcept;
  bool running() const noexcept { return active_; }

  /// Runs one slice now, unless one is running (then the next is scheduled
  /// instead). The scheduled macrotasks call this.
  void tick() noexcept;
  /// Schedules a slice if none is scheduled (from the backend's wake()).
  void wake() noexcept;

  /// Called after every slice, on the loop's thread, outside the slice.
  std::function<void()> after_slice;

  void set_slice_budget(Duration budget) noexcept { options_.slice_budget = budget; }
  const DriverOptions& options() const noexcept { return options_; }
  Loop& loop() noexcept { return loop_; }

  struct Statistics {
    std::uint64_t slices = 0;             // tick()s that ran callbacks
    std::uint64_t iterations = 0;         // process_ready calls
    std::uint64_t cut_short = 0;          // slices ended by the budget or yield_to_host
    std::uint64_t zero_delay_posts = 0;   // macrotasks scheduled
    std::uint64_t host_timers_armed = 0;  // setTimeout calls
    std::uint64_t host_timers_cleared = 0;
    std::uint64_t host_timer_fires = 0;
    std::uint64_t nested_ticks = 0;  // re-entrant tick()s turned into a schedule
    bool host_timer_armed = false;   // a setTimeout is outstanding now
  };
  const Statistics& statistics() const noexcept { return stats_; }
  /// "MessageChannel", "setImmediate" or "setTimeout(0)".
  std::string zero_delay_name() const;

  /// For the JavaScript side: the driver with this id, or nullptr.
  static Driver* find(unsigned id) noexcept;
  /// The scheduled macrotask ran / the host timer fired.
  void scheduled_tick() noexcept {
    tick_scheduled_ = false;
    tick();
  }
  void host_timer_fired() noexcept;

 private:
  void reschedule() noexcept;
  void sync_host_timer() noexcept;
  void clear_host_timer() noexcept;

  Loop& loop_;
  DriverOptions options_;
  unsigned id_;
  bool active_ = false;
  bool in_tick_ = false;
  bool tick_scheduled_ = false;
  int host_timer_ = 0;
  std::optional<TimePoint> armed_deadline_;
  Statistics stats_;
};

/// A loop for the web: performance.now() as its clock, and a backend whose
/// wake() asks the loop's driver (if one is attached) for a slice.
std::unique_ptr<Loop> new_event_loop(LoopOptions options = {});

/// The driver of a web loop, or nullptr (no driver attached, or not a loop
/// from new_event_loop).
Driver* driver_of(Loop& loop) noexcept;

/// Ends the current slice after the running callback and resumes the
/// calling task in the next one: the browser renders and handles input in
/// between. `co_await sleep(0)` (or yield_now()) by contrast lets other tasks
/// run and resumes in the next iteration, which may be in the same slice.
/// Outside a driven loop it behaves as sleep(0).
Coro<void> yield_to_host();

/// One guest run: a new web loop, its driver and a main task, as
/// asyncio.run arranges them but without blocking. When main is done, the
/// tasks still pending are cancelled and allowed to finish, the callbacks
/// left run; then the driver stops, the loop is closed and `done` is called.
/// loop.stop() before main is done ends the run with RuntimeError("Event
/// loop stopped before Future completed."), as asyncio.run does.
class WebRun : public std::enable_shared_from_this<WebRun> {
 public:
  WebRun(LoopOptions loop_options, DriverOptions driver_options);
  ~WebRun();
  Loop& loop() noexcept { return *loop_; }
  Driver& driver() noexcept { return *driver_; }
  /// Cancels main (asyncio's run, on Ctrl+C): the run then ends as usual.
  void cancel();
  bool finished() const noexcept { return finished_; }

  /// Internals of start(): on_done gets the error that replaces main's
  /// outcome (loop.stop() before main finished), or nullptr.
  void begin(TaskRef main, std::function<void(std::exception_ptr)> on_done);

 private:
  void after_slice();
  void finish();
  std::unique_ptr<Loop> loop_;
  std::unique_ptr<Driver> driver_;
  TaskRef main_;
  std::function<void(std::exception_ptr)> on_done_;
  std::exception_ptr forced_error_;
  bool finished_ = false;
};

namespace detail {
/// Keeps a run alive until it finishes (the runs started and not finished).
void keep_run(std::shared_ptr<WebRun> run);
}  // namespace detail

/// Starts main on a new web loop, driven as a guest of the JavaScript event
/// loop, and returns at once. done receives main's result or exception
/// (CancelledError when it was cancelled) after the loop is closed.
template <class T>
std::shared_ptr<WebRun> start(Coro<T> main, std::function<void(Outcome<T>)> done = {},
                              DriverOptions driver_options = {}, LoopOptions loop_options = {}) {
  auto run = std::make_shared<WebRun>(loop_options, driver_options);
  Task<T> task = run->loop().create_task(std::move(main), "main");
  run->begin(task.ref(), [task, done = std::move(done)](std::exception_ptr forced) mutable {
    if (done) done(forced ? Outcome<T>::failure(forced) : duet::detail::take_outcome<T>(task));
  });
  detail::keep_run(run);
  return run;
}

/// The same, reporting main's result as a JavaScript Promise (resolved with
/// to_js(result), rejected with an Error).
template <class T>
JsValue start_promise(Coro<T> main, DriverOptions driver_options = {}, LoopOptions loop_options = {}) {
  int deferred = 0;  // owned by the done callback until it settles
  JsValue promise = detail::new_deferred_promise(deferred);
  start<T>(
      std::move(main), [deferred](Outcome<T> outcome) { detail::settle_outcome(deferred, std::move(outcome)); },
      driver_options, loop_options);
  return promise;
}

/// Cancels the main task of every run started with start() and not yet
/// finished; each then ends as usual (its done callback reports
/// CancelledError unless main catches it).
void stop();

}  // namespace duet::web
