#include "duet/web/js.hpp"

#include <emscripten.h>

#include <unordered_map>
#include <utility>
#include <vector>

#include "js_imports.hpp"

namespace duet::web {

// ---- JsValue --------------------------------------------------------------

namespace {
// After a call that JavaScript may have thrown in (a getter, a setter,
// String() of an object without toString): the throw as a JsError.
void check_js() {
  if (duet_web_js_failed()) throw JsError::from_value(JsValue::adopt(duet_web_js_take_last_error()));
}
}  // namespace

JsValue::JsValue(std::string_view text) : id_(duet_web_js_from_string(text.data(), text.size())) {}
JsValue::JsValue(double number) : id_(duet_web_js_from_number(number)) {}
JsValue JsValue::boolean(bool b) {
  return adopt(duet_web_js_from_bool(b ? 1 : 0));
}
JsValue JsValue::bytes(const void* data, std::size_t size) {
  return adopt(duet_web_js_from_bytes(data, size));
}
JsValue JsValue::global(std::string_view name) {
  return adopt(duet_web_js_global(name.data(), name.size()));
}
JsValue JsValue::array() {
  return adopt(duet_web_js_new_array());
}

JsValue::JsValue(const JsValue& other) : id_(duet_web_js_dup(other.id_)) {}

JsValue::~JsValue() {
  if (id_ > 0) duet_web_js_release(id_);
}

JsValue JsValue::operator[](std::string_view name) const {
  JsValue v = adopt(duet_web_js_get(id_, name.data(), name.size()));
  check_js();
  return v;
}

void JsValue::set(std::string_view name, const JsValue& value) const {
  duet_web_js_set(id_, name.data(), name.size(), value.id_);
  check_js();
}

namespace {
JsValue call_with(int target, std::string_view method, std::initializer_list<JsValue> args) {
  JsValue list = JsValue::array();
  for (const JsValue& a : args) list.push(a);
  const int result = duet_web_js_call(target, method.data(), method.size(), list.id());
  if (result < 0) throw JsError::from_value(JsValue::adopt(duet_web_js_take_last_error()));
  return JsValue::adopt(result);
}
}  // namespace

JsValue JsValue::call(std::string_view method, std::initializer_list<JsValue> args) const {
  if (method.empty()) throw ValueError("JsValue::call: no method name (use invoke() to call a function value)");
  return call_with(id_, method, args);
}

JsValue JsValue::invoke(std::initializer_list<JsValue> args) const {
  return call_with(id_, {}, args);
}

void JsValue::push(const JsValue& value) const {
  duet_web_js_push(id_, value.id_);
  check_js();
}

JsValue::Type JsValue::type() const noexcept {
  return static_cast<Type>(duet_web_js_type_of(id_));
}

std::string JsValue::to_string() const {
  const int n = duet_web_js_string_length(id_);
  check_js();
  std::string out(static_cast<std::size_t>(n), '\0');
  // stringToUTF8 writes a terminator too: std::string has room for it.
  duet_web_js_string_copy(out.data(), n);
  return out;
}

double JsValue::to_number() const {
  const double x = duet_web_js_to_number(id_);
  check_js();
  return x;
}
bool JsValue::truthy() const {
  return duet_web_js_truthy(id_) != 0;
}

std::vector<std::uint8_t> JsValue::to_bytes() const {
  const int n = duet_web_js_bytes_length(id_);
  if (n < 0) throw std::invalid_argument("JsValue::to_bytes: the value is not an ArrayBuffer or typed array");
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n));
  duet_web_js_bytes_copy(out.data());
  return out;
}

int JsValue::live_count() noexcept {
  return duet_web_js_live_values();
}

// ---- JsError --------------------------------------------------------------

namespace {
std::string describe(const std::string& name, const std::string& message) {
  if (name.empty() || name == "string" || name == "number" || name == "undefined" || name == "boolean") return message;
  return name + ": " + message;
}
}  // namespace

JsError::JsError(std::string name, std::string message, JsValue value)
    : std::runtime_error(describe(name, message)),
      name_(std::move(name)),
      message_(std::move(message)),
      value_(std::move(value)) {}

JsError JsError::from_value(JsValue value) {
  std::string name = JsValue::adopt(duet_web_js_error_name(value.id())).to_string();
  std::string message = JsValue::adopt(duet_web_js_error_message(value.id())).to_string();
  return JsError(std::move(name), std::move(message), std::move(value));
}

// ---- promises ---------------------------------------------------------------

namespace {

// A wait in progress, found by its token when the promise settles. The
// token (not a pointer) crosses into JavaScript: a settlement that arrives
// after the wait was cancelled finds nothing and is dropped.
struct PendingPromise {
  Future<JsValue> future;
  std::function<void()> on_cancel;
  Loop* loop;
};

std::unordered_map<unsigned, PendingPromise>& pending_promises() {
  static std::unordered_map<unsigned, PendingPromise> table;
  return table;
}
unsigned g_next_token = 1;

// Closing a loop drops the done callbacks that would clean up its waits:
// this service does it instead (the table entries go, the on_cancel hooks
// run — a fetch is aborted), so no wait outlives its loop.
class PromiseWaits final : public LoopService {
 public:
  explicit PromiseWaits(Loop& loop) : loop_(loop) {}
  void shutdown() noexcept override {
    std::vector<std::function<void()>> hooks;
    auto& table = pending_promises();
    for (auto it = table.begin(); it != table.end();) {
      if (it->second.loop == &loop_) {
        if (it->second.on_cancel) hooks.push_back(std::move(it->second.on_cancel));
        it = table.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& hook : hooks) {
      try {
        hook();
      } catch (...) {
      }
    }
  }

 private:
  Loop& loop_;
};

}  // namespace

Future<JsValue> await_promise(const JsValue& promise, std::function<void()> on_cancel) {
  Loop& loop = get_running_loop();
  loop.use_service<PromiseWaits>();
  Future<JsValue> future(loop);
  unsigned token = g_next_token++;
  if (token == 0) token = g_next_token++;
  pending_promises().emplace(token, PendingPromise{future, std::move(on_cancel), &loop});
  future.add_done_callback([token](const Future<JsValue>& done) {
    auto it = pending_promises().find(token);
    if (it == pending_promises().end()) return;  // settled by the promise
    std::function<void()> hook = std::move(it->second.on_cancel);
    pending_promises().erase(it);
    if (done.cancelled() && hook) hook();
  });
  duet_web_js_then(promise.id(), token);
  return future;
}

namespace detail {

int new_deferred() {
  return duet_web_js_deferred();
}

JsValue new_deferred_promise(int& deferred) {
  JsValue d = JsValue::adopt(new_deferred());
  JsValue promise = d["promise"];
  deferred = d.release();
  return promise;
}

void settle_deferred(int deferred, bool ok, const JsValue& value) {
  duet_web_js_settle(deferred, ok ? 1 : 0, value.id());
}

JsValue error_to_js(std::exception_ptr error) {
  auto make = [](std::string_view name, std::string_view message) {
    return JsValue::adopt(duet_web_js_new_error(name.data(), name.size(), message.data(), message.size()));
  };
  try {
    std::rethrow_exception(error);
  } catch (const JsError& e) {
    return e.value();
  } catch (const CancelledError&) {
    return make("CancelledError", "the duet task was cancelled");
  } catch (const TimeoutError& e) {
    return make("TimeoutError", e.what());
  } catch (const std::exception& e) {
    return make("Error", e.what());
  } catch (...) {
    return make("Error", "a duet task failed with an exception that is not a std::exception");
  }
}

}  // namespace detail
}  // namespace duet::web

// Called by duet_web.js when a promise given to await_promise settles.
extern "C" EMSCRIPTEN_KEEPALIVE void duet_web_promise_settled(unsigned token, int ok, int value_id) {
  using namespace duet::web;
  JsValue value = JsValue::adopt(value_id);
  auto it = pending_promises().find(token);
  if (it == pending_promises().end()) return;  // the wait was cancelled
  duet::Future<JsValue> future = std::move(it->second.future);
  pending_promises().erase(it);
  if (future.done()) return;
  try {
    if (ok) {
      future.set_result(std::move(value));
    } else {
      future.set_exception(JsError::from_value(std::move(value)));
    }
  } catch (const duet::RuntimeError&) {
    // The loop was closed meanwhile: nobody waits any more.
  }
}
