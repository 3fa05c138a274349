// duet::web::stop(): every run started with start() has its main task
// cancelled and ends as usual (done callback with CancelledError, loop
// closed, driver stopped), whether main awaits a timer or a JS promise; a
// main that catches the cancellation finishes with its own result. Run by
// tests/web/node_runner.cjs like web_test.
#include <emscripten.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "duet/duet.hpp"
#include "duet/web/driver.hpp"
#include "duet/web/js.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::web::JsValue;

namespace {

std::vector<std::string> g_outcomes;
std::vector<std::shared_ptr<duet::web::WebRun>> g_runs;

template <class T>
std::function<void(duet::Outcome<T>)> record(std::string name) {
  return [name](duet::Outcome<T> outcome) {
    std::string what = name + ": ";
    try {
      if constexpr (std::is_void_v<T>) {
        outcome.value();
        what += "done";
      } else {
        what += "result " + std::to_string(outcome.value());
      }
    } catch (const duet::CancelledError&) {
      what += "CancelledError";
    } catch (const std::exception& e) {
      what += e.what();
    }
    g_outcomes.push_back(what);
    if (g_outcomes.size() == 3) {
      int failed = 0;
      auto expect = [&](bool ok, const char* text) {
        std::printf("%s %s\n", ok ? "ok    " : "FAILED", text);
        failed += ok ? 0 : 1;
      };
      auto has = [](const std::string& s) {
        for (const auto& o : g_outcomes)
          if (o == s) return true;
        return false;
      };
      expect(has("timer: CancelledError"), "a main awaiting a timer is cancelled");
      expect(has("promise: CancelledError"), "a main awaiting a JS promise is cancelled");
      expect(has("catcher: result 7"), "a main that catches the cancellation returns its own result");
      bool all_finished = true;
      for (auto& run : g_runs) all_finished = all_finished && run->loop().is_closed() && !run->driver().running();
      expect(all_finished, "every run's loop is closed and its driver stopped");
      std::printf("%d passed, %d failed\n", 4 - failed, failed);
      JsValue result = JsValue::global("Object").call("create", {JsValue::global("Object")["prototype"]});
      result.set("passed", JsValue(4 - failed));
      result.set("failed", JsValue(failed));
      JsValue::global("duetTestReport").invoke({result});
    }
  };
}

Coro<void> timer_main() {
  co_await duet::sleep(1h);
}

Coro<void> promise_main() {
  duet::Future<JsValue> never = duet::web::await_promise(JsValue::global("duetTest").call("never"));
  co_await never;
}

Coro<int> catcher_main() {
  try {
    co_await duet::sleep(1h);
  } catch (const duet::CancelledError&) {
    co_return 7;
  }
  co_return 0;
}

}  // namespace

// Called by a JS timer once the runs are under way.
extern "C" EMSCRIPTEN_KEEPALIVE void duet_test_stop_all() {
  duet::web::stop();
}

int main() {
  g_runs.push_back(duet::web::start<void>(timer_main(), record<void>("timer")));
  g_runs.push_back(duet::web::start<void>(promise_main(), record<void>("promise")));
  g_runs.push_back(duet::web::start<int>(catcher_main(), record<int>("catcher")));
  JsValue::global("setTimeout").invoke({JsValue::global("duetTestStopAll"), JsValue(20)});
  return 0;
}
