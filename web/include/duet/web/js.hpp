// duet/web/js.hpp — JavaScript values and promises from C++ tasks.
//
//   duet::web::JsValue p = duet::web::JsValue::global("myApi").call("load", {JsValue("id-7")});
//   duet::web::JsValue v = co_await duet::web::await_promise(p);   // rejection -> JsError
//   return duet::web::to_promise(loop.create_task(work()));       // a C++ task as a JS Promise
//
// The bridge is an Emscripten JS library (web/src/duet_web.js) rather than
// Embind: a JsValue is an integer id into a table on the JavaScript side,
// owned (copied, released) by the C++ object, and every crossing is one
// plain function call. No embind runtime, no --bind, and it works with both
// exception modes duet builds with. Values live until their last JsValue
// is destroyed; JsValue::live_count() tells how many the table holds.
//
// Promises settle into the loop like any other host event: the promise's
// callback (a microtask of the JavaScript loop) sets a duet Future, which
// schedules the waiting task, and the web driver runs it in its next slice.
// Cancelling the waiting task stops the wait at once (the Future is
// cancelled; a later settlement is dropped and its value released) and runs
// the on_cancel hook given, which is where an API that can be aborted
// (fetch's AbortController) is aborted.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/gather.hpp"
#include "duet/task.hpp"

namespace duet::web {

class JsValue {
 public:
  enum class Type { undefined, null, boolean, number, string, object, function, other };

  /// undefined.
  JsValue() noexcept = default;
  explicit JsValue(std::string_view text);
  explicit JsValue(const char* text) : JsValue(std::string_view(text)) {}
  explicit JsValue(double number);
  explicit JsValue(int number) : JsValue(static_cast<double>(number)) {}
  static JsValue boolean(bool b);
  /// A Uint8Array holding a copy of the bytes.
  static JsValue bytes(const void* data, std::size_t size);
  /// globalThis[name].
  static JsValue global(std::string_view name);
  /// A new empty array.
  static JsValue array();
  /// Takes ownership of a table id made by the JavaScript side
  /// (DuetWeb.put(v) in a JS library function or EM_JS code).
  static JsValue adopt(int id) noexcept {
    JsValue v;
    v.id_ = id;
    return v;
  }

  JsValue(const JsValue& other);
  JsValue(JsValue&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
  JsValue& operator=(JsValue other) noexcept {
    std::swap(id_, other.id_);
    return *this;
  }
  ~JsValue();

  /// The table id (for JS code that reads DuetWeb.get(id)); 0 is undefined.
  int id() const noexcept { return id_; }
  /// Gives the id up to the caller, who must release it.
  int release() noexcept { return std::exchange(id_, 0); }

  // A JavaScript throw inside any of these (a getter, a setter, String()
  // of an object without toString, a called function) becomes a JsError.

  /// this[name] (undefined when this is undefined or null).
  JsValue operator[](std::string_view name) const;
  void set(std::string_view name, const JsValue& value) const;
  /// this[method](args...); a JavaScript throw becomes a JsError.
  JsValue call(std::string_view method, std::initializer_list<JsValue> args = {}) const;
  /// this(args...) for a function value.
  JsValue invoke(std::initializer_list<JsValue> args = {}) const;
  /// array.push(value).
  void push(const JsValue& value) const;

  Type type() const noexcept;
  bool is_undefined() const noexcept { return type() == Type::undefined; }
  bool is_null() const noexcept { return type() == Type::null; }
  /// String(value), as UTF-8.
  std::string to_string() const;
  /// Number(value) (NaN when it is not a number).
  double to_number() const;
  /// !!value.
  bool truthy() const;
  /// The bytes of an ArrayBuffer or typed array; TypeError otherwise.
  std::vector<std::uint8_t> to_bytes() const;

  /// How many values the JavaScript table holds (for leak checks).
  static int live_count() noexcept;

 private:
  int id_ = 0;
};

/// A JavaScript exception or rejection reason, as a C++ exception: what()
/// is "<name>: <message>" (for an Error; String(reason) otherwise), and the
/// original value is kept.
class JsError : public std::runtime_error {
 public:
  JsError(std::string name, std::string message, JsValue value);
  const std::string& name() const noexcept { return name_; }
  const std::string& message() const noexcept { return message_; }
  const JsValue& value() const noexcept { return value_; }

  /// Builds a JsError from any thrown or rejected JavaScript value.
  static JsError from_value(JsValue value);

 private:
  std::string name_;
  std::string message_;
  JsValue value_;
};

/// A Future of the running loop that settles with the promise (any value:
/// a non-thenable counts as resolved): its value, or JsError for a
/// rejection. Cancelling it (or the task awaiting it) calls on_cancel, at
/// most once, and drops a later settlement.
Future<JsValue> await_promise(const JsValue& promise, std::function<void()> on_cancel = {});

/// Converts a task's result into a JavaScript value for to_promise: void ->
/// undefined, arithmetic -> number, bool -> boolean, strings -> string,
/// JsValue as is.
template <class T>
JsValue to_js(const T& value) {
  if constexpr (std::is_same_v<T, JsValue>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    return JsValue::boolean(value);
  } else if constexpr (std::is_arithmetic_v<T>) {
    return JsValue(static_cast<double>(value));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return JsValue(std::string_view(value));
  } else {
    static_assert(sizeof(T) == 0, "to_promise: no conversion of this result type to JavaScript; return a JsValue");
  }
}

namespace detail {
/// A new JS Promise: {promise, resolve, reject} as a table id.
int new_deferred();
/// A new deferred: its promise, and in `deferred` its id, which the caller
/// owns until it settles it.
JsValue new_deferred_promise(int& deferred);
void settle_deferred(int deferred, bool ok, const JsValue& value);
/// The JS Error for a C++ exception (JsError: its original value;
/// CancelledError: an Error named "CancelledError").
JsValue error_to_js(std::exception_ptr error);

/// Settles a deferred (new_deferred) with an outcome, as to_promise says.
template <class T>
void settle_outcome(int deferred, Outcome<T> outcome) {
  if (std::exception_ptr e = outcome.exception()) {
    settle_deferred(deferred, false, error_to_js(e));
  } else if constexpr (std::is_void_v<T>) {
    settle_deferred(deferred, true, JsValue());
  } else {
    settle_deferred(deferred, true, to_js(outcome.value()));
  }
}
}  // namespace detail

/// The task as a JavaScript Promise: resolved with to_js(result), rejected
/// with an Error carrying the exception's message (a JsError's original
/// value; an Error named "CancelledError" when the task was cancelled).
/// The task keeps running whether or not JavaScript keeps the promise.
template <class T>
JsValue to_promise(Task<T> task) {
  int deferred = 0;  // owned by the done callback until it settles
  JsValue promise = detail::new_deferred_promise(deferred);
  task.add_done_callback(
      [deferred](const Future<T>& done) { detail::settle_outcome(deferred, duet::detail::take_outcome(done)); });
  return promise;
}

}  // namespace duet::web
