// duet/outcome.hpp — a value or an exception: what gather(return_exceptions,
// ...) yields per awaitable (asyncio puts the exception object itself in
// the result list; C++ needs a type that can hold either).
#pragma once

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "duet/coro.hpp"

namespace duet {

/// void results are represented by std::monostate.
template <class T>
using result_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
class Outcome {
 public:
  using value_type = result_or_monostate_t<T>;

  static Outcome success(value_type v) { return Outcome(std::in_place_index<0>, std::move(v)); }
  static Outcome failure(std::exception_ptr e) { return Outcome(std::in_place_index<1>, std::move(e)); }

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  /// The value; rethrows the exception if there is one.
  value_type& value() & {
    if (!has_value()) std::rethrow_exception(std::get<1>(data_));
    return std::get<0>(data_);
  }
  value_type&& value() && { return std::move(value()); }
  /// The exception, or nullptr.
  std::exception_ptr exception() const noexcept { return has_value() ? nullptr : std::get<1>(data_); }

 private:
  template <std::size_t I, class U>
  Outcome(std::in_place_index_t<I> tag, U&& u) : data_(tag, std::forward<U>(u)) {}
  std::variant<value_type, std::exception_ptr> data_;
};

namespace detail {
/// Calls make(args...) and awaits what it returns, as one Outcome instead of
/// throwing: the `try: ... except BaseException` of an async context
/// manager's body (timeout scopes, task groups). An exception thrown by the
/// call itself (before any co_await) is captured like one thrown later.
template <class T, class F, class... Args>
auto capture_call(F& make, Args&... args) -> Coro<Outcome<T>> {
  try {
    auto awaitable = make(args...);
    if constexpr (std::is_void_v<T>) {
      co_await std::move(awaitable);
      co_return Outcome<T>::success({});
    } else {
      T value = co_await std::move(awaitable);
      co_return Outcome<T>::success(std::move(value));
    }
  } catch (...) {
    co_return Outcome<T>::failure(std::current_exception());
  }
}
}  // namespace detail

}  // namespace duet
