#include "duet/web/driver.hpp"

#include <emscripten.h>

#include <cmath>
#include <unordered_map>
#include <utility>
#include <vector>

#include "duet/platform/platform.hpp"
#include "duet/sleep.hpp"
#include "js_imports.hpp"

namespace duet::web {
namespace {

// The backend of a web loop. Nothing is polled: I/O arrives as JavaScript
// callbacks that resolve futures. wake() — the loop calls it when work is
// scheduled from outside a slice while the driver is between slices — asks
// the driver for a slice. Without a driver (a blocking run under Node or in
// a Worker), wait() returns at once as the platform's wasm backend does.
class WebBackend final : public Backend {
 public:
  void wait(std::optional<Duration> timeout, std::vector<IoEvent>&) override {
    if (!timeout)
      throw RuntimeError(
          "duet: the loop has nothing scheduled and would wait forever; on the web the loop "
          "must run as a guest of the JavaScript event loop (duet::web::start)");
  }
  void wake() noexcept override {
    if (driver) driver->wake();
  }
  std::string_view name() const noexcept override { return "web"; }
  const char* blocking_run_refusal() const noexcept override { return platform::blocking_run_refusal(); }

  Driver* driver = nullptr;
};

std::unordered_map<unsigned, Driver*>& drivers() {
  static std::unordered_map<unsigned, Driver*> table;
  return table;
}
unsigned g_next_driver_id = 1;

// Runs started by start() and not finished; finished ones wait in the
// graveyard for a later macrotask (they finish inside their own driver's
// tick, which must not destroy the driver under itself).
std::vector<std::shared_ptr<WebRun>>& live_runs() {
  static std::vector<std::shared_ptr<WebRun>> runs;
  return runs;
}
}  // namespace
namespace detail {
std::vector<std::shared_ptr<WebRun>>& graveyard() {
  static std::vector<std::shared_ptr<WebRun>> runs;
  return runs;
}
}  // namespace detail
// ---- Driver ---------------------------------------------------------------

Driver::Driver(Loop& loop, DriverOptions options) : loop_(loop), options_(options), id_(g_next_driver_id++) {
  auto* backend = dynamic_cast<WebBackend*>(&loop.backend());
  if (!backend) throw ValueError("duet::web::Driver needs a loop made by duet::web::new_event_loop()");
  if (backend->driver) throw RuntimeError("duet::web::Driver: this loop already has a driver");
  backend->driver = this;
  drivers().emplace(id_, this);
}

Driver::~Driver() {
  stop();
  drivers().erase(id_);
  if (!loop_.is_closed())
    if (auto* backend = dynamic_cast<WebBackend*>(&loop_.backend())) backend->driver = nullptr;
}

Driver* Driver::find(unsigned id) noexcept {
  auto it = drivers().find(id);
  return it == drivers().end() ? nullptr : it->second;
}

std::string Driver::zero_delay_name() const {
  return JsValue::adopt(duet_web_js_zero_delay_label(static_cast<int>(options_.zero_delay))).to_string();
}

void Driver::start() {
  if (active_) throw RuntimeError("duet::web::Driver: already started");
  loop_.begin_external_run();
  active_ = true;
  duet_web_js_keepalive(1);
  reschedule();
}

void Driver::stop() noexcept {
  if (!active_) return;
  active_ = false;
  clear_host_timer();
  if (in_tick_) loop_.end_slice();
  loop_.end_foreign_poll();
  loop_.end_external_wait();
  loop_.end_external_run();
  duet_web_js_keepalive(0);
}

void Driver::wake() noexcept {
  if (!active_ || tick_scheduled_) return;
  tick_scheduled_ = true;
  ++stats_.zero_delay_posts;
  duet_web_js_schedule_tick(id_, static_cast<int>(options_.zero_delay));
}

void Driver::tick() noexcept {
  if (!active_) return;
  if (in_tick_) {
    // Called from inside a slice (JavaScript re-entering the driver): never
    // nest; the work runs in the next slice.
    ++stats_.nested_ticks;
    wake();
    return;
  }
  struct InTick {
    bool& flag;
    explicit InTick(bool& f) : flag(f) { flag = true; }
    ~InTick() { flag = false; }
  };
  {
    InTick in_tick(in_tick_);
    loop_.end_foreign_poll();
    loop_.end_external_wait();
    const Duration budget = options_.slice_budget;
    const TimePoint deadline = budget == Duration::max() ? TimePoint::max() : saturating_add(loop_.time(), budget);
    bool complete = true;
    try {
      // Iterations follow one another within the slice while callbacks are
      // ready and the budget lasts (sleep(0) resumes in the same slice);
      // without a budget a slice is exactly one iteration.
      for (;;) {
        complete = loop_.process_ready(deadline);
        ++stats_.iterations;
        if (!complete || !active_ || budget == Duration::max()) break;
        const std::optional<Duration> next = loop_.poll_timeout();
        if (!next || *next > Duration::zero() || loop_.time() >= deadline) break;
      }
    } catch (...) {
      // Only misuse gets here (callbacks' exceptions go to the handler);
      // nothing may unwind into the host's event loop.
      ExceptionContext context;
      context.message = "web driver: a slice failed";
      context.exception = std::current_exception();
      loop_.call_exception_handler(context);
    }
    ++stats_.slices;
    if (!complete) ++stats_.cut_short;
  }
  if (after_slice) {
    try {
      after_slice();
    } catch (...) {
      ExceptionContext context;
      context.message = "web driver: after_slice failed";
      context.exception = std::current_exception();
      loop_.call_exception_handler(context);
    }
  }
  // loop.stop() (asyncio: run_forever returns after this iteration): the
  // driver stops; start() runs the loop again.
  if (active_ && loop_.consume_stop()) {
    stop();
    return;
  }
  reschedule();
}

void Driver::reschedule() noexcept {
  if (!active_) return;
  // Zero when callbacks are ready; otherwise, from now until the next slice,
  // work scheduled from JavaScript wakes the backend, which calls wake().
  const std::optional<Duration> timeout = loop_.prepare_external_wait();
  loop_.begin_foreign_poll();
  if (timeout && *timeout <= Duration::zero()) wake();
  sync_host_timer();
}

void Driver::sync_host_timer() noexcept {
  const std::optional<TimePoint> next = loop_.next_timer_deadline();
  if (!next) {
    clear_host_timer();
    return;
  }
  if (host_timer_ && armed_deadline_ == next) return;  // already armed for it
  clear_host_timer();
  const Duration until = saturating_sub(*next, loop_.time());  // a deadline of TimePoint::min() is due
  // Rounded up to whole milliseconds: the host timer never fires before the
  // deadline on its own clock; if it does anyway, the slice it runs finds
  // the timer not yet due and re-arms for the rest.
  double ms = until <= Duration::zero() ? 0.0 : std::ceil(std::chrono::duration<double, std::milli>(until).count());
  host_timer_ = duet_web_js_set_timer(id_, ms);
  armed_deadline_ = next;
  ++stats_.host_timers_armed;
  stats_.host_timer_armed = true;
}

void Driver::clear_host_timer() noexcept {
  if (!host_timer_) return;
  duet_web_js_clear_timer(host_timer_);
  host_timer_ = 0;
  armed_deadline_.reset();
  ++stats_.host_timers_cleared;
  stats_.host_timer_armed = false;
}

void Driver::host_timer_fired() noexcept {
  host_timer_ = 0;
  armed_deadline_.reset();
  stats_.host_timer_armed = false;
  ++stats_.host_timer_fires;
  tick();
}

// ---- loops ------------------------------------------------------------------

std::unique_ptr<Loop> new_event_loop(LoopOptions options) {
  return std::make_unique<Loop>(std::make_unique<WebBackend>(), std::make_unique<platform::SteadyClock>(), options);
}

Driver* driver_of(Loop& loop) noexcept {
  if (loop.is_closed()) return nullptr;
  auto* backend = dynamic_cast<WebBackend*>(&loop.backend());
  return backend ? backend->driver : nullptr;
}

Coro<void> yield_to_host() {
  get_running_loop().end_slice();
  co_await yield_now();
}

// ---- runs -------------------------------------------------------------------

WebRun::WebRun(LoopOptions loop_options, DriverOptions driver_options)
    : loop_(new_event_loop(loop_options)), driver_(std::make_unique<Driver>(*loop_, driver_options)) {}

WebRun::~WebRun() {
  driver_.reset();
  if (!loop_->is_running()) loop_->close();
}

void WebRun::begin(TaskRef main, std::function<void(std::exception_ptr)> on_done) {
  main_ = std::move(main);
  on_done_ = std::move(on_done);
  driver_->after_slice = [this] { after_slice(); };
  driver_->start();
}

void WebRun::cancel() {
  if (!finished_ && !main_.done()) main_.cancel();
}

void WebRun::after_slice() {
  if (finished_) return;
  if (loop_->consume_stop() && !main_.done()) {
    // asyncio.run: run_until_complete raises "Event loop stopped before
    // Future completed.", and the cleanup cancels main and the rest.
    forced_error_ = std::make_exception_ptr(RuntimeError("Event loop stopped before Future completed."));
    main_.cancel();
  }
  if (!main_.done()) return;
  // asyncio.run's end: every task still pending is cancelled and allowed to
  // finish; a task created meanwhile (by a cleanup) is cancelled too.
  for (duet::detail::TaskBase* task : loop_->pending_tasks())
    if (task->cancelling() == 0) task->cancel({});
  // Finished only once nothing is left to run: callbacks main scheduled on
  // its way out and the done callbacks of the tasks that just finished (a
  // to_promise() settling, an await_promise's cleanup) run first, as
  // asyncio's run_until_complete runs the iteration in which main finished.
  const std::optional<Duration> next = loop_->poll_timeout();
  if (loop_->pending_task_count() == 0 && !(next && *next <= Duration::zero())) finish();
}

void WebRun::finish() {
  finished_ = true;
  driver_->stop();
  loop_->close();
  std::function<void(std::exception_ptr)> done = std::move(on_done_);
  try {
    if (done) done(forced_error_);
  } catch (...) {
    ExceptionContext context;
    context.message = "the web run's done callback threw";
    context.exception = std::current_exception();
    loop_->call_exception_handler(context);
  }
  // Released on a later macrotask: this runs inside the driver's tick.
  auto& runs = live_runs();
  for (auto it = runs.begin(); it != runs.end(); ++it) {
    if (it->get() == this) {
      detail::graveyard().push_back(std::move(*it));
      runs.erase(it);
      duet_web_js_schedule_tick(0, 0);
      break;
    }
  }
}

namespace detail {
void keep_run(std::shared_ptr<WebRun> run) {
  live_runs().push_back(std::move(run));
}
}  // namespace detail

void stop() {
  // A copy: cancelling does not finish a run at once, but be safe.
  std::vector<std::shared_ptr<WebRun>> runs = live_runs();
  for (auto& run : runs) run->cancel();
}

}  // namespace duet::web

// Called by duet_web.js: a scheduled macrotask (driver 0: release finished
// runs) and the host timer.
extern "C" EMSCRIPTEN_KEEPALIVE void duet_web_tick(unsigned id) {
  if (id == 0) {
    duet::web::detail::graveyard().clear();
    return;
  }
  if (duet::web::Driver* driver = duet::web::Driver::find(id)) {
    driver->scheduled_tick();
  }
}

extern "C" EMSCRIPTEN_KEEPALIVE void duet_web_timer_fired(unsigned id) {
  if (duet::web::Driver* driver = duet::web::Driver::find(id)) driver->host_timer_fired();
}
