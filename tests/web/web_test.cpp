// The web driver's suite: every case runs as a task of a loop that
// duet::web::start() drives as a guest of the JavaScript event loop — Node's
// (ctest: tests/web/node_runner.cjs) or a real Chromium page's
// (tests/web/browser/run.mjs). The same binary runs in both; the few
// expectations that differ (which zero-delay primitive, whether a blocking
// run is refused) ask the environment.
//
// Catch2 cannot await, so this is a small async runner: a case is a
// coroutine; CHECK throws on failure; each case has a 20 s timeout. The last
// line is "N passed, N failed", and the results go to
// globalThis.duetTestReport(results) for the runner.
#include <emscripten.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "duet/duet.hpp"
#include "duet/web/driver.hpp"
#include "duet/web/fetch.hpp"
#include "duet/web/js.hpp"
#include "duet/web/websocket.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::web::JsValue;

namespace {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) throw Failure(std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond); \
  } while (0)

struct Case {
  const char* name;
  Coro<void> (*body)();
};
std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}
struct Registrar {
  Registrar(const char* name, Coro<void> (*body)()) { cases().push_back({name, body}); }
};
#define WEB_CASE(fn, title)                   \
  Coro<void> fn();                            \
  const Registrar fn##_registrar(title, &fn); \
  Coro<void> fn()

JsValue helpers() {
  return JsValue::global("duetTest");
}
/// A page's own thread (not a Worker, not Node).
bool in_page() {
  return JsValue::global("document").type() == JsValue::Type::object;
}
/// Node (the only host here with setImmediate).
bool in_node() {
  return JsValue::global("setImmediate").type() == JsValue::Type::function;
}

/// Awaits a promise (a coroutine, so that it can go into a timeout scope).
Coro<JsValue> settle(JsValue promise, std::function<void()> on_cancel = {}) {
  duet::Future<JsValue> f = duet::web::await_promise(promise, std::move(on_cancel));
  JsValue v = co_await f;
  co_return v;
}

/// Lets the host run a few macrotasks of its own (a JS timer of `ms`).
Coro<void> host_turn(int ms = 5) {
  JsValue p = helpers().call("delay", {JsValue(ms), JsValue("")});
  co_await settle(p);
}

/// Runs `main` on a second web run (its own loop and driver) and waits for
/// it from the suite's loop; returns the run for its statistics.
template <class T>
Coro<std::shared_ptr<duet::web::WebRun>> run_inner(Coro<T> main, duet::web::DriverOptions options = {}) {
  duet::Future<void> done(duet::get_running_loop());
  auto error = std::make_shared<std::exception_ptr>();
  auto run = duet::web::start<T>(
      std::move(main),
      [done, error](duet::Outcome<T> outcome) mutable {
        *error = outcome.exception();
        done.set_result();
      },
      options);
  co_await done;
  if (*error) std::rethrow_exception(*error);
  co_return run;
}

// ---- the driver -------------------------------------------------------------

WEB_CASE(zero_delay_per_environment,
         "the zero-delay macrotask is MessageChannel in a page or Worker, setImmediate in Node") {
  duet::web::Driver* driver = duet::web::driver_of(duet::get_running_loop());
  CHECK(driver != nullptr);
  CHECK(driver->zero_delay_name() == (in_node() ? "setImmediate" : "MessageChannel"));
  co_return;
}

WEB_CASE(idle_schedules_nothing, "an idle loop schedules no macrotask and arms no host timer") {
  auto loop = duet::web::new_event_loop();
  duet::web::Driver driver(*loop);
  driver.start();
  co_await host_turn(20);
  CHECK(driver.statistics().slices == 0);
  CHECK(driver.statistics().zero_delay_posts == 0);
  CHECK(driver.statistics().host_timers_armed == 0);
  // Work from JavaScript (here: this task, which is outside that loop's
  // slices) wakes it: one macrotask, one slice.
  bool ran = false;
  loop->call_soon([&] { ran = true; });
  loop->call_soon([] {});
  CHECK(!ran);
  CHECK(driver.statistics().zero_delay_posts == 1);
  co_await host_turn(5);
  CHECK(ran);
  CHECK(driver.statistics().slices == 1);
  CHECK(driver.statistics().zero_delay_posts == 1);
  driver.stop();
}

WEB_CASE(one_host_timer, "1000 timers arm one host timer; cancelling them all clears it") {
  auto loop = duet::web::new_event_loop();
  duet::web::Driver driver(*loop);
  driver.start();
  std::vector<duet::TimerHandle> timers;
  for (int i = 0; i < 1000; ++i)
    timers.push_back(loop->call_later(std::chrono::milliseconds(2000 + (i * 37) % 5000), [] {}));
  co_await host_turn(10);  // the slice the first call_later woke
  const auto& s = driver.statistics();
  CHECK(s.host_timer_armed);
  CHECK(s.host_timers_armed == 1);
  // A sooner timer re-arms once; a later one changes nothing.
  timers.push_back(loop->call_later(1s, [] {}));
  timers.push_back(loop->call_later(10s, [] {}));
  co_await host_turn(10);
  CHECK(s.host_timers_armed == 2);
  // Cancelled from inside a slice (a callback of that loop)...
  loop->call_soon([&] {
    for (std::size_t i = 0; i < timers.size(); i += 2) timers[i].cancel();
  });
  co_await host_turn(10);
  CHECK(s.host_timer_armed);
  // ...and from outside one: the host timer goes with the last timer.
  for (auto& t : timers) t.cancel();
  co_await host_turn(10);
  CHECK(!s.host_timer_armed);
  CHECK(s.host_timers_armed - s.host_timers_cleared == 0);
  CHECK(s.host_timers_armed <= 4);
  CHECK(s.host_timer_fires == 0);
  driver.stop();
}

WEB_CASE(timers_fire_in_order_never_early, "timers fire in deadline order and never before their deadline") {
  duet::Loop& loop = duet::get_running_loop();
  std::vector<int> order;
  int early = 0;
  duet::Future<void> all(loop);
  const int n = 40;
  // One base time for every deadline: with call_later(delay), each
  // deadline would include its own registration time, which moves while
  // this loop runs, and neighbours 461 us apart could swap on a busy
  // machine (seen in a fresh-clone run). call_at makes the deadlines exact.
  const duet::TimePoint base = loop.time();
  for (int i = 0; i < n; ++i) {
    const auto delay = std::chrono::microseconds(500 + (i * 7919) % 30000);
    const duet::TimePoint when = base + delay;
    loop.call_at(when, [&, when, i] {
      if (loop.time() < when) ++early;
      order.push_back(i);
      if (static_cast<int>(order.size()) == n) all.set_result();
    });
  }
  co_await all;
  CHECK(early == 0);
  // In deadline order (delays are distinct here).
  std::vector<int> expected(n);
  for (int i = 0; i < n; ++i) expected[i] = i;
  std::sort(expected.begin(), expected.end(), [](int a, int b) { return (a * 7919) % 30000 < (b * 7919) % 30000; });
  CHECK(order == expected);
  const auto start = loop.time();
  co_await duet::sleep(15ms);
  CHECK(loop.time() - start >= 15ms);
}

bool* g_reenter_flag = nullptr;

WEB_CASE(reentrant_calls_are_queued, "JavaScript re-entering the loop from inside a callback never nests a slice") {
  duet::Loop& loop = duet::get_running_loop();
  duet::web::Driver* driver = duet::web::driver_of(loop);
  const auto nested_before = driver->statistics().nested_ticks;
  bool ran = false;
  // A JS function that, called from this callback, calls back into C++
  // (duet_test_reenter: call_soon on the running loop, then tick()).
  g_reenter_flag = &ran;
  helpers().call("reenter");
  CHECK(!ran);
  CHECK(driver->statistics().nested_ticks == nested_before + 1);
  co_await duet::sleep(0ms);
  co_await duet::sleep(0ms);
  CHECK(ran);
}

WEB_CASE(yield_to_host_vs_sleep0, "sleep(0) stays in the slice; yield_to_host lets the host run first") {
  duet::web::DriverOptions options;
  options.slice_budget = 2s;  // far more than this needs: only yield_to_host ends the slice
  auto probe = []() -> Coro<int> {
    JsValue box = helpers().call("postMacrotask");  // sets box.ran in a host macrotask
    int seen = 0;
    for (int i = 0; i < 3; ++i) {
      co_await duet::sleep(0ms);
      if (box["ran"].truthy()) seen |= 1;
    }
    // The host's macrotask runs before this task resumes (in a page the two
    // MessageChannels are separate queues: allow a few slices).
    for (int i = 0; i < 20 && !box["ran"].truthy(); ++i) co_await duet::web::yield_to_host();
    if (box["ran"].truthy()) seen |= 2;
    co_return seen;
  };
  int seen = -1;
  auto main = [&]() -> Coro<void> {
    auto p = probe;
    seen = co_await p();
  };
  auto run = co_await run_inner(main(), options);
  CHECK(seen == 2);
  CHECK(run->driver().statistics().cut_short >= 1);
}

struct Busy {
  static void spin(duet::Loop& loop, duet::Duration d) {
    const auto end = loop.time() + d;
    while (loop.time() < end) {
    }
  }
};

Coro<void> churn(std::vector<int>* order, int tasks) {
  duet::Loop& loop = duet::get_running_loop();
  for (int i = 0; i < tasks; ++i)
    loop.call_soon([order, &loop, i] {
      Busy::spin(loop, 500us);
      order->push_back(i);
    });
  co_await duet::sleep(0ms);
  while (static_cast<int>(order->size()) < tasks) co_await duet::sleep(1ms);
}

WEB_CASE(time_slicing_keeps_fifo, "an 8 ms budget cuts a 100 ms iteration into slices and keeps FIFO order") {
  std::vector<int> order;
  auto run = co_await run_inner(churn(&order, 200));
  CHECK(order.size() == 200u);
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(run->driver().statistics().cut_short >= 8);
  // Without a budget the same iteration is one slice.
  std::vector<int> order2;
  duet::web::DriverOptions unbounded;
  unbounded.slice_budget = duet::Duration::max();
  auto run2 = co_await run_inner(churn(&order2, 200), unbounded);
  CHECK(std::is_sorted(order2.begin(), order2.end()));
  CHECK(run2->driver().statistics().cut_short == 0);
}

WEB_CASE(blocking_run_refused_in_page, "run_until_complete raises on the browser's main thread, explaining why") {
  auto loop = duet::web::new_event_loop();
  std::string message;
  try {
    loop->run_until_complete(loop->create_future<void>());
  } catch (const duet::RuntimeError& e) {
    message = e.what();
  }
  if (in_page()) {
    CHECK(message.find("browser's main thread") != std::string::npos);
    CHECK(message.find("duet::web::start") != std::string::npos);
  } else {
    // Node or a Worker: no refusal; here it fails only because the suite's
    // loop runs on this thread.
    CHECK(message.find("another loop") != std::string::npos);
    CHECK(message.find("browser") == std::string::npos);
  }
  co_return;
}

WEB_CASE(run_cancel_and_done, "a run's done callback gets main's result, its exception, or CancelledError") {
  duet::Future<int> got(duet::get_running_loop());
  auto answer = []() -> Coro<int> {
    co_await duet::sleep(2ms);
    co_return 42;
  };
  duet::web::start<int>(answer(), [got](duet::Outcome<int> o) mutable { got.set_result(o.value()); });
  const int answered = co_await got;
  CHECK(answered == 42);

  duet::Future<std::string> failed(duet::get_running_loop());
  auto boom = []() -> Coro<void> {
    co_await duet::sleep(1ms);
    throw std::runtime_error("boom");
  };
  duet::web::start<void>(boom(), [failed](duet::Outcome<void> o) mutable {
    try {
      o.value();
      failed.set_result("no exception");
    } catch (const std::exception& e) {
      failed.set_result(e.what());
    }
  });
  const std::string failure = co_await failed;
  CHECK(failure == "boom");

  duet::Future<bool> cancelled(duet::get_running_loop());
  auto forever = []() -> Coro<void> { co_await duet::sleep(1h); };
  auto run = duet::web::start<void>(forever(), [cancelled](duet::Outcome<void> o) mutable {
    bool c = false;
    try {
      o.value();
    } catch (const duet::CancelledError&) {
      c = true;
    }
    cancelled.set_result(c);
  });
  co_await duet::sleep(5ms);
  run->cancel();
  const bool was_cancelled = co_await cancelled;
  CHECK(was_cancelled);
  CHECK(run->finished());
  CHECK(!run->driver().running());
}

// ---- the core, as a guest ------------------------------------------------------

duet::ContextVar<int> request_id("request_id", -1);

WEB_CASE(tasks_gather_context, "tasks, gather, TaskGroup and context variables under the driver") {
  auto worker = [](int id) -> Coro<int> {
    request_id.set(id);
    co_await duet::sleep(std::chrono::milliseconds(3 * (5 - id)));
    co_return request_id.get() * 10;
  };
  std::vector<duet::Task<int>> tasks;
  for (int i = 0; i < 5; ++i) tasks.push_back(duet::create_task(worker(i)));
  std::vector<int> all = co_await duet::gather(std::move(tasks));
  CHECK((all == std::vector<int>{0, 10, 20, 30, 40}));
  CHECK(request_id.get() == -1);  // each task ran in its own copy

  int sum = 0;
  auto add_later = [](int* s, int v) -> Coro<void> {
    co_await duet::sleep(std::chrono::milliseconds(v));
    *s += v;
  };
  auto body = [&](duet::TaskGroup& tg) -> Coro<void> {
    for (int i = 1; i <= 4; ++i) tg.create_task(add_later(&sum, i));
    co_return;
  };
  co_await duet::task_group(body);
  CHECK(sum == 10);
}

WEB_CASE(timeouts_and_queues, "timeout, wait_for and a Queue between a producer and a consumer") {
  bool timed_out = false;
  try {
    co_await duet::timeout(5ms, duet::sleep(1s));
  } catch (const duet::TimeoutError&) {
    timed_out = true;
  }
  CHECK(timed_out);

  duet::Queue<int> queue(4);
  auto producer = [](duet::Queue<int>* q) -> Coro<void> {
    for (int i = 0; i < 50; ++i) {
      co_await q->put(i);
      if (i % 10 == 0) co_await duet::sleep(1ms);
    }
  };
  auto t = duet::create_task(producer(&queue));
  int total = 0;
  for (int i = 0; i < 50; ++i) {
    const int item = co_await queue.get();
    total += item;
  }
  co_await t;
  CHECK(total == 49 * 50 / 2);
}

// ---- promises -----------------------------------------------------------------------

WEB_CASE(promise_resolve_and_reject, "co_await a JS promise: its value, or JsError with the JS message") {
  JsValue v = co_await settle(helpers().call("delay", {JsValue(3), JsValue("hello")}));
  CHECK(v.to_string() == "hello");
  JsValue n = co_await settle(JsValue(7));  // a plain value counts as resolved
  CHECK(n.to_number() == 7);

  std::string what, name, message;
  try {
    co_await settle(helpers().call("rejectLater", {JsValue(2), JsValue("no such item")}));
  } catch (const duet::web::JsError& e) {
    what = e.what();
    name = e.name();
    message = e.message();
  }
  CHECK(name == "TypeError");
  CHECK(message == "no such item");
  CHECK(what == "TypeError: no such item");

  // A synchronous throw of a called JS function is a JsError too.
  bool thrown = false;
  try {
    helpers().call("throwNow", {JsValue("sync")});
  } catch (const duet::web::JsError& e) {
    thrown = std::string(e.what()) == "Error: sync";
  }
  CHECK(thrown);
}

WEB_CASE(promise_cancel, "cancelling the waiting task stops the wait, runs on_cancel, drops the late value") {
  const int live_before = JsValue::live_count();
  int cancels = 0;
  JsValue late = helpers().call("delay", {JsValue(30), JsValue("late")});
  auto waiter = duet::create_task(settle(late, [&] { ++cancels; }));
  co_await duet::sleep(2ms);
  waiter.cancel();
  bool cancelled = false;
  try {
    co_await waiter;
  } catch (const duet::CancelledError&) {
    cancelled = true;
  }
  CHECK(cancelled);
  CHECK(cancels == 1);
  bool timed_out = false;
  try {
    co_await duet::timeout(5ms, settle(helpers().call("never")));
  } catch (const duet::TimeoutError&) {
    timed_out = true;
  }
  CHECK(timed_out);
  co_await host_turn(40);  // the late settlement arrives and is dropped
  late = JsValue();
  CHECK(JsValue::live_count() <= live_before);  // no id left behind by the waits
}

WEB_CASE(task_as_promise, "a C++ task as a JS promise: resolved with its value, rejected with its error") {
  auto ok = []() -> Coro<int> {
    co_await duet::sleep(1ms);
    co_return 6 * 7;
  };
  JsValue p = duet::web::to_promise(duet::create_task(ok()));
  CHECK(helpers().call("isPromise", {p}).truthy());
  JsValue v = co_await settle(p);
  CHECK(v.to_number() == 42);

  auto bad = []() -> Coro<std::string> {
    co_await duet::sleep(1ms);
    throw duet::ValueError("bad input");
  };
  std::string message;
  try {
    co_await settle(duet::web::to_promise(duet::create_task(bad())));
  } catch (const duet::web::JsError& e) {
    message = e.message();
  }
  CHECK(message == "bad input");

  auto forever = []() -> Coro<void> { co_await duet::sleep(1h); };
  auto t = duet::create_task(forever());
  JsValue cp = duet::web::to_promise(t);
  t.cancel();
  std::string name;
  try {
    co_await settle(cp);
  } catch (const duet::web::JsError& e) {
    name = e.name();
  }
  CHECK(name == "CancelledError");
}

// ---- fetch ----------------------------------------------------------------------

Coro<std::string> server() {
  JsValue base = co_await settle(JsValue::global("duetTestServer"));
  co_return base.to_string();
}

WEB_CASE(fetch_get_post_status, "fetch: status, headers, text and bytes; POST with a body; 404 is not an error") {
  const std::string base = co_await server();
  duet::web::Response r = co_await duet::web::fetch(base + "/hello");
  CHECK(r.status == 200);
  CHECK(r.ok());
  CHECK(r.text() == "hello from the test server");
  CHECK(r.header("X-Duet-Test") == std::optional<std::string>("yes"));

  duet::web::FetchOptions post;
  post.method = "POST";
  post.headers = {{"Content-Type", "application/octet-stream"}};
  post.body = std::string("\x01\x02\x00\xff payload", 12);
  duet::web::Response echo = co_await duet::web::fetch(base + "/echo", post);
  CHECK(echo.status == 200);
  CHECK(echo.bytes().size() == 12u);
  CHECK(echo.text() == *post.body);

  duet::web::Response missing = co_await duet::web::fetch(base + "/missing");
  CHECK(missing.status == 404);
  CHECK(!missing.ok());
}

WEB_CASE(fetch_timeout_aborts, "fetch under a timeout scope: TimeoutError, and the request is aborted") {
  const std::string base = co_await server();
  duet::web::Response before = co_await duet::web::fetch(base + "/stats");
  const int aborted_before = std::stoi(before.text());
  bool timed_out = false;
  try {
    co_await duet::timeout(50ms, duet::web::fetch(base + "/slow"));
  } catch (const duet::TimeoutError&) {
    timed_out = true;
  }
  CHECK(timed_out);
  // The server sees the connection go away (it answers /slow after 5 s).
  int aborted = aborted_before;
  for (int i = 0; i < 100 && aborted == aborted_before; ++i) {
    co_await duet::sleep(10ms);
    duet::web::Response stats = co_await duet::web::fetch(base + "/stats");
    aborted = std::stoi(stats.text());
  }
  CHECK(aborted == aborted_before + 1);
}

WEB_CASE(fetch_network_error, "fetch of a closed port raises JsError; bad headers raise ValueError") {
  std::string name;
  try {
    co_await duet::web::fetch("http://127.0.0.1:9/nothing-listens-here");
  } catch (const duet::web::JsError& e) {
    name = e.name();
  }
  CHECK(name == "TypeError");
  bool bad = false;
  try {
    duet::web::FetchOptions o;
    o.headers = {{"X-Bad", "a\nb"}};
    co_await duet::web::fetch("/x", o);
  } catch (const duet::ValueError&) {
    bad = true;
  }
  CHECK(bad);
}

WEB_CASE(run_finishes_after_leftover_callbacks,
         "a run finishes only after the callbacks main left and the done callbacks of cancelled tasks") {
  duet::web::DriverOptions one_iteration;
  one_iteration.slice_budget = duet::Duration::max();
  bool leftover_ran = false;
  bool settled = false;
  auto main = [&]() -> Coro<void> {
    duet::get_running_loop().call_soon([&] { leftover_ran = true; });
    // A task cancelled by the run's shutdown, watched from JS.
    auto forever = []() -> Coro<void> { co_await duet::sleep(1h); };
    JsValue p = duet::web::to_promise(duet::create_task(forever()));
    helpers().call("watch", {p});
    co_return;
  };
  co_await run_inner(main(), one_iteration);
  CHECK(leftover_ran);
  co_await host_turn(5);  // the promise's reaction is a microtask
  settled = JsValue::global("duetTestWatched").truthy();
  CHECK(settled);
}

WEB_CASE(loop_stop_under_driver, "loop.stop() stops a driver; in a run it ends the run with RuntimeError") {
  auto loop = duet::web::new_event_loop();
  duet::web::Driver driver(*loop);
  driver.start();
  loop->call_soon([&] { loop->stop(); });
  co_await host_turn(10);
  CHECK(!driver.running());
  CHECK(!loop->is_running());
  const auto slices = driver.statistics().slices;
  co_await host_turn(10);
  CHECK(driver.statistics().slices == slices);  // no spinning after the stop

  duet::Future<std::string> outcome(duet::get_running_loop());
  auto stopper = []() -> Coro<void> {
    duet::get_running_loop().stop();
    co_await duet::sleep(1h);
  };
  duet::web::start<void>(stopper(), [outcome](duet::Outcome<void> o) mutable {
    try {
      o.value();
      outcome.set_result("no error");
    } catch (const duet::RuntimeError& e) {
      outcome.set_result(e.what());
    } catch (...) {
      outcome.set_result("another error");
    }
  });
  const std::string what = co_await outcome;
  CHECK(what == "Event loop stopped before Future completed.");
}

WEB_CASE(js_throws_become_jserror, "a JavaScript throw in a getter, a setter or String() is a JsError, never a crash") {
  JsValue thrower = helpers().call("throwingObject");
  std::string got;
  try {
    JsValue v = thrower["boom"];
  } catch (const duet::web::JsError& e) {
    got = e.what();
  }
  CHECK(got == "Error: getter threw");
  bool set_failed = false;
  try {
    JsValue().set("x", JsValue(1));  // undefined.x = 1
  } catch (const duet::web::JsError& e) {
    set_failed = e.name() == "TypeError";
  }
  CHECK(set_failed);
  bool string_failed = false;
  try {
    (void)JsValue::global("Object").call("create", {JsValue::global("nullValue")}).to_string();
  } catch (const duet::web::JsError&) {
    string_failed = true;
  }
  CHECK(string_failed);
  // Strings cross with their NUL bytes.
  const std::string with_nul("a\0b", 3);
  CHECK(JsValue(with_nul).to_string() == with_nul);
  co_return;
}

// ---- WebSocket ---------------------------------------------------------------------

Coro<std::string> ws_base() {
  std::string base = co_await server();
  co_return "ws" + base.substr(4) + "/ws";  // http://... -> ws://...
}

WEB_CASE(websocket_echo, "WebSocket: connect, text and binary echo, queued messages, close handshake") {
  if (JsValue::global("WebSocket").is_undefined()) {
    // Node 20 has no WebSocket: connect says so.
    std::string message;
    try {
      co_await duet::web::WebSocket::connect("ws://127.0.0.1:9/ws");
    } catch (const duet::web::JsError& e) {
      message = e.what();
    }
    CHECK(message.find("WebSocket is not available") != std::string::npos);
    co_return;
  }
  duet::web::WebSocket ws = co_await duet::web::WebSocket::connect(co_await ws_base(), {"duet-test"});
  CHECK(ws.is_open());
  CHECK(ws.protocol() == "duet-test");
  ws.send("hello");
  duet::web::WebSocketMessage m = co_await ws.receive();
  CHECK(!m.binary);
  CHECK(m.data == "hello");
  const std::string bytes("\x00\x01\xfe\xff", 4);
  ws.send_binary(bytes.data(), bytes.size());
  m = co_await ws.receive();
  CHECK(m.binary);
  CHECK(m.data == bytes);
  // Messages that arrive while nobody receives are kept, in order; a
  // receive cancelled by a timeout loses none.
  ws.send("burst:50");
  co_await duet::sleep(30ms);  // they arrive while nobody receives
  for (int i = 0; i < 50; ++i) {
    duet::web::WebSocketMessage next = co_await ws.receive();
    CHECK(next.data == "m" + std::to_string(i));
  }
  bool receive_timed_out = false;
  try {
    co_await duet::timeout(10ms, ws.receive());
  } catch (const duet::TimeoutError&) {
    receive_timed_out = true;
  }
  CHECK(receive_timed_out);
  ws.send("after the timeout");
  m = co_await ws.receive();
  CHECK(m.data == "after the timeout");
  // Text with a NUL byte arrives whole.
  const std::string nul_text("x\0y", 3);
  ws.send(nul_text);
  m = co_await ws.receive();
  CHECK(m.data == nul_text);
  // Two tasks close it; one of them is cancelled: the other still finishes.
  auto closer = [](duet::web::WebSocket* s) -> Coro<void> { co_await s->close(); };
  auto first = duet::create_task(closer(&ws));
  auto second = duet::create_task(closer(&ws));
  co_await duet::sleep(0ms);
  first.cancel();
  co_await second;
  CHECK(!ws.is_open());
  int code = 0;
  try {
    co_await ws.receive();
  } catch (const duet::web::WebSocketClosed& e) {
    code = e.code();
  }
  CHECK(code == 1000);
}

WEB_CASE(websocket_server_close,
         "WebSocket: a server's close reaches receive() with its code and reason; refused connect raises") {
  if (JsValue::global("WebSocket").is_undefined()) co_return;  // covered by websocket_echo in Node
  duet::web::WebSocket ws = co_await duet::web::WebSocket::connect(co_await ws_base());
  ws.send("close-me");
  int code = 0;
  std::string reason;
  try {
    co_await ws.receive();
  } catch (const duet::web::WebSocketClosed& e) {
    code = e.code();
    reason = e.reason();
  }
  if (code != 4001) std::printf("close code %d reason '%s'\n", code, reason.c_str());
  CHECK(code == 4001);
  CHECK(reason == "bye");
  bool send_raised = false;
  try {
    ws.send("too late");
  } catch (const duet::web::WebSocketClosed&) {
    send_raised = true;
  }
  CHECK(send_raised);
  int refused = 0;
  try {
    co_await duet::web::WebSocket::connect("ws://127.0.0.1:9/ws");
  } catch (const duet::web::WebSocketClosed& e) {
    refused = e.code();
  }
  CHECK(refused == 1006);
}

// ---- the runner ---------------------------------------------------------------------

// One case, its failure as a message ("" when it passed). Kept out of
// run_all's loop on purpose: under -fwasm-exceptions (Emscripten 3.1.6) a
// try/catch around a co_await inside a range-based for loop in a coroutine
// does not catch — the exception escapes the task (see the README's wasm
// notes); an ordinary for loop, or a helper coroutine like this one, works.
Coro<std::string> run_case(Coro<void> (*body)()) {
  std::string error;
  try {
    co_await duet::timeout(20s, body());
  } catch (const std::exception& e) {
    error = e.what();
    if (error.empty()) error = "exception with an empty message";
  } catch (const duet::CancelledError&) {
    error = "CancelledError";
  }
  co_return error;
}

Coro<void> run_all() {
  int passed = 0, failed = 0;
  JsValue report = JsValue::array();
  const std::string filter =
      JsValue::global("duetTestFilter").is_undefined() ? std::string() : JsValue::global("duetTestFilter").to_string();
  for (const Case& c : cases()) {
    if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
    const std::string error = co_await run_case(c.body);
    const bool ok = error.empty();
    (ok ? passed : failed)++;
    std::printf("%s %s%s%s\n", ok ? "ok    " : "FAILED", c.name, ok ? "" : ": ", error.c_str());
    JsValue row = JsValue::array();
    row.push(JsValue(c.name));
    row.push(JsValue(error));
    report.push(row);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  std::fflush(stdout);
  JsValue result = JsValue::global("Object").call("create", {JsValue::global("Object")["prototype"]});
  result.set("passed", JsValue(passed));
  result.set("failed", JsValue(failed));
  result.set("cases", report);
  JsValue::global("duetTestReport").invoke({result});
}

}  // namespace

// Called by duetTest.reenter() from inside a callback of the running loop.
extern "C" EMSCRIPTEN_KEEPALIVE void duet_test_reenter() {
  duet::Loop& loop = duet::get_running_loop();
  loop.call_soon([] { *g_reenter_flag = true; });
  duet::web::driver_of(loop)->tick();  // must not run a nested slice
}

int main() {
  duet::web::start<void>(run_all(), [](duet::Outcome<void> outcome) {
    if (outcome.exception()) std::puts("the suite's main task failed");
  });
  return 0;
}
