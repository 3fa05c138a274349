// duet as a guest of a real GLib main loop (g_main_loop_run), both ways:
// embedded as a GSource on GLib's thread, and thread-based guest mode with
// GLib as the host. The same task workload runs in each: timers, gather, a
// cancelled task, a timeout, a TCP echo on 127.0.0.1, and g_timeout
// sources interleaving with duet's timers on the one thread.
#include <glib.h>

#include <catch2/catch.hpp>
#include <duet/duet.hpp>
#include <duet/native/glib.hpp>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using duet::Coro;
using namespace duet::native;

namespace {

struct Trace {
  std::vector<std::string> events;  // GLib's thread only
  std::thread::id glib_thread;
  bool wrong_thread = false;
  void add(std::string e) {
    if (std::this_thread::get_id() != glib_thread) wrong_thread = true;
    events.push_back(std::move(e));
  }
};

Coro<int> square_later(int x, std::chrono::milliseconds d) {
  co_await duet::sleep(d);
  co_return x* x;
}

// The core task workload, run as a guest; returns a checksum.
Coro<int> workload(Trace& trace) {
  trace.add("start");
  co_await duet::sleep(15ms);
  trace.add("duet 15ms");
  auto [a, b, c] = co_await duet::gather(square_later(2, 5ms), square_later(3, 1ms), square_later(4, 3ms));
  auto forever = duet::create_task(duet::sleep(std::chrono::hours(1)));
  co_await duet::yield_now();
  forever.cancel();
  bool cancelled = false;
  try {
    co_await forever;
  } catch (const duet::CancelledError&) {
    cancelled = true;
  }
  bool timed_out = false;
  try {
    co_await duet::wait_for(duet::create_task(duet::sleep(1s)), 5ms);
  } catch (const duet::TimeoutError&) {
    timed_out = true;
  }
  auto echo = [](StreamReader reader, StreamWriter writer) -> Coro<void> {
    std::string line = co_await reader.readline();
    writer.write(line);
    writer.close();
  };
  Server server = co_await start_server(echo, "127.0.0.1", 0);
  auto [reader, writer] = co_await open_connection("127.0.0.1", server.port());
  writer.write("over glib\n");
  std::string back = co_await reader.readline();
  writer.close();
  server.close();
  co_await server.wait_closed();
  co_await duet::sleep(30ms);
  trace.add("duet 60ms+");
  co_return a + b + c + (cancelled ? 100 : 0) + (timed_out ? 1000 : 0) + (back == "over glib\n" ? 10000 : 0);
}

constexpr int kExpected = 4 + 9 + 16 + 100 + 1000 + 10000;

// g_timeout sources that log as they fire, to interleave with duet's timers.
void add_glib_timers(Trace& trace, GMainContext* context) {
  for (guint ms : {5u, 30u}) {
    GSource* timer = g_timeout_source_new(ms);
    g_source_set_callback(
        timer,
        [](gpointer data) -> gboolean {
          auto* t = static_cast<std::pair<Trace*, guint>*>(data);
          t->first->add("glib " + std::to_string(t->second) + "ms");
          return G_SOURCE_REMOVE;
        },
        new std::pair<Trace*, guint>(&trace, ms), [](gpointer d) { delete static_cast<std::pair<Trace*, guint>*>(d); });
    g_source_attach(timer, context);
    g_source_unref(timer);
  }
}

// g_main_loop_run, bounded: a watchdog quits GLib after 10 s whatever
// happens.
void run_bounded(GMainLoop* main_loop, GMainContext* context) {
  GSource* watchdog = g_timeout_source_new_seconds(10);
  g_source_set_callback(
      watchdog,
      [](gpointer l) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop*>(l));
        return G_SOURCE_REMOVE;
      },
      main_loop, nullptr);
  g_source_attach(watchdog, context);
  g_main_loop_run(main_loop);
  g_source_destroy(watchdog);
  g_source_unref(watchdog);
}

void check_interleaving(const Trace& trace) {
  CHECK_FALSE(trace.wrong_thread);
  auto pos = [&](const std::string& e) {
    for (std::size_t i = 0; i < trace.events.size(); ++i)
      if (trace.events[i] == e) return static_cast<int>(i);
    return -1;
  };
  // One thread, both loops' timers in deadline order.
  CHECK(pos("start") >= 0);
  CHECK(pos("glib 5ms") < pos("duet 15ms"));
  CHECK(pos("duet 15ms") < pos("glib 30ms"));
  CHECK(pos("glib 30ms") < pos("duet 60ms+"));
}

}  // namespace

TEST_CASE("embedded in g_main_loop as a GSource: duet tasks and GLib timeouts interleave on one thread",
          "[glib][embedded]") {
  auto loop = new_event_loop();
  GMainContext* context = g_main_context_new();
  GMainLoop* main_loop = g_main_loop_new(context, FALSE);
  Trace trace;
  trace.glib_thread = std::this_thread::get_id();
  int result = 0;
  {
    GlibSource source(*loop, context);
    auto run = [&]() -> Coro<void> {
      result = co_await workload(trace);
      g_main_loop_quit(main_loop);
    };
    auto task = loop->create_task(run());
    add_glib_timers(trace, context);
    run_bounded(main_loop, context);
    CHECK(task.done());
  }
  CHECK(result == kExpected);
  check_interleaving(trace);
  loop->close();
  g_main_loop_unref(main_loop);
  g_main_context_unref(context);
}

TEST_CASE("thread-based guest mode with g_main_loop as the host", "[glib][guest]") {
  GMainContext* context = g_main_context_new();
  GMainLoop* main_loop = g_main_loop_new(context, FALSE);
  g_main_context_push_thread_default(context);
  Trace trace;
  trace.glib_thread = std::this_thread::get_id();
  int result = 0;
  bool done = false;
  auto main_coro = [&]() -> Coro<int> {
    int r = co_await workload(trace);
    co_return r;
  };
  auto run = start_guest_run<int>(main_coro(), glib_guest_host(context), [&](duet::Outcome<int> outcome) {
    trace.add("done");
    result = outcome.value();
    done = true;
    g_main_loop_quit(main_loop);
  });
  add_glib_timers(trace, context);
  run_bounded(main_loop, context);
  CHECK(done);
  CHECK(result == kExpected);
  check_interleaving(trace);
  run.reset();
  // Posts still queued in GLib (none are expected) are dropped safely.
  while (g_main_context_iteration(context, FALSE)) {
  }
  g_main_context_pop_thread_default(context);
  g_main_loop_unref(main_loop);
  g_main_context_unref(context);
}
