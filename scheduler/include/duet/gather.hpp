// duet/gather.hpp — asyncio.gather.
//
//   auto [a, b] = co_await duet::gather(task_a, coro_b());          // tuple of results
//   std::vector<int> all = co_await duet::gather(std::move(tasks)); // homogeneous
//   auto outcomes = co_await duet::gather(duet::return_exceptions, t1, t2); // tuple of Outcome<T>
//
// Semantics (asyncio 3.11/3.12): coroutines become tasks; results come back
// in argument order; void results are std::monostate. Without
// return_exceptions the first failure (a cancelled child counts as
// CancelledError) completes the gather with that exception and the other
// children keep running. Cancelling the gather cancels every child that is
// not done, and the gather then ends in CancelledError even with
// return_exceptions (bpo-32684). An empty gather is done at once.
#pragma once

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "duet/coro.hpp"
#include "duet/future.hpp"
#include "duet/outcome.hpp"
#include "duet/task.hpp"

namespace duet {

struct return_exceptions_t {
  explicit return_exceptions_t() = default;
};
/// Tag: collect exceptions as results (asyncio's return_exceptions=True).
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

/// Turns an awaitable argument into a Future (asyncio's ensure_future).
template <class T>
Future<T> ensure_future(Future<T> f) {
  return f;
}
template <class T>
Future<T> ensure_future(const Task<T>& t) {
  return t;
}
template <class T>
Future<T> ensure_future(Coro<T>&& c) {
  return get_running_loop().create_task(std::move(c));
}

template <class A>
using future_of_t = decltype(ensure_future(std::declval<A>()));
template <class A>
using value_of_t = typename future_of_t<A>::value_type;

template <class T>
result_or_monostate_t<T> take_value(const Future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.result();
    return {};
  } else {
    return f.result();
  }
}

template <class T>
Outcome<T> take_outcome(const Future<T>& f) {
  if (f.cancelled()) return Outcome<T>::failure(f.base()->make_cancelled_error());
  if (std::exception_ptr e = f.exception()) return Outcome<T>::failure(e);
  return Outcome<T>::success(take_value(f));
}

/// The gathering future: a future whose cancel() cancels its children
/// (asyncio's _GatheringFuture).
template <class R>
class GatherState final : public FutureBase, public ValueSlot<R> {
 public:
  GatherState(Loop& loop, bool return_exceptions) : FutureBase(loop), return_exceptions_(return_exceptions) {}

  bool cancel(std::string message) override {
    if (done()) return false;
    bool any = false;
    for (FutureBase* child : children_)
      if (child->cancel(message)) any = true;
    if (any) cancel_requested_ = true;  // propagate regardless of return_exceptions (bpo-32684)
    return any;
  }

  std::vector<FutureBase*> children_;  // each retained
  std::function<R()> collect_;         // builds the result once every child is done
  std::size_t finished_ = 0;
  bool return_exceptions_;
  bool cancel_requested_ = false;

  ~GatherState() override {
    for (FutureBase* child : children_) child->release();
  }
};

/// Registers the gathering callback on every child (asyncio's _done_callback).
template <class R>
void wire_gather(GatherState<R>* state) {
  for (FutureBase* child : state->children_) {
    HandleNode* node = acquire_node();
    state->retain();
    try {
      node->callback.emplace([state, child]() {
        struct Release {
          GatherState<R>* s;
          ~Release() { s->release(); }
        } release{state};
        ++state->finished_;
        if (state->done()) {
          if (!child->cancelled()) child->exception();  // mark retrieved
          return;
        }
        if (!state->return_exceptions_) {
          if (child->cancelled()) {
            state->set_exception(child->make_cancelled_error());
            return;
          }
          if (std::exception_ptr e = child->exception()) {
            state->set_exception(e);
            return;
          }
        }
        if (state->finished_ == state->children_.size()) {
          if (state->cancel_requested_) {
            state->set_exception(std::make_exception_ptr(CancelledError()));
            return;
          }
          state->value.emplace(state->collect_());
          state->collect_ = nullptr;  // drops its references to the children
          state->finish();
        }
      });
    } catch (...) {
      state->release();
      release_node(node);
      throw;
    }
    child->add_callback_node(node);
  }
}

template <class R, class Futures, class Collect>
Future<R> start_gather(bool return_exceptions, const Futures& futures, Collect collect) {
  Loop& loop = get_running_loop();
  auto* state = new GatherState<R>(loop, return_exceptions);
  Future<R> outer = Future<R>::adopt_state(state, state);
  for (const auto& f : futures) {
    f->retain();
    state->children_.push_back(f);
  }
  if (state->children_.empty()) {
    state->value.emplace(collect());
    state->finish();
    return outer;
  }
  state->collect_ = std::move(collect);
  wire_gather<R>(state);
  return outer;
}

}  // namespace detail

/// gather over a vector of futures/tasks of one type.
template <class T>
Future<std::vector<result_or_monostate_t<T>>> gather(std::vector<Future<T>> futures) {
  using R = std::vector<result_or_monostate_t<T>>;
  std::vector<detail::FutureBase*> bases;
  for (auto& f : futures) bases.push_back(f.base());
  return detail::start_gather<R>(false, bases, [futures]() {
    R out;
    out.reserve(futures.size());
    for (const auto& f : futures) out.push_back(detail::take_value(f));
    return out;
  });
}

template <class T>
Future<std::vector<Outcome<T>>> gather(return_exceptions_t, std::vector<Future<T>> futures) {
  using R = std::vector<Outcome<T>>;
  std::vector<detail::FutureBase*> bases;
  for (auto& f : futures) bases.push_back(f.base());
  return detail::start_gather<R>(true, bases, [futures]() {
    R out;
    out.reserve(futures.size());
    for (const auto& f : futures) out.push_back(detail::take_outcome(f));
    return out;
  });
}

/// The same over a vector of tasks.
template <class T>
Future<std::vector<result_or_monostate_t<T>>> gather(std::vector<Task<T>> tasks) {
  return gather(std::vector<Future<T>>(tasks.begin(), tasks.end()));
}
template <class T>
Future<std::vector<Outcome<T>>> gather(return_exceptions_t tag, std::vector<Task<T>> tasks) {
  return gather(tag, std::vector<Future<T>>(tasks.begin(), tasks.end()));
}

/// gather over awaitables of possibly different types: a tuple of results.
template <class... As>
  requires(sizeof...(As) > 0 && !(std::is_same_v<std::decay_t<As>, return_exceptions_t> || ...))
Future<std::tuple<result_or_monostate_t<detail::value_of_t<As>>...>> gather(As&&... awaitables) {
  using R = std::tuple<result_or_monostate_t<detail::value_of_t<As>>...>;
  auto futures = std::make_tuple(detail::ensure_future(std::forward<As>(awaitables))...);
  std::vector<detail::FutureBase*> bases;
  std::apply([&](auto&... f) { (bases.push_back(f.base()), ...); }, futures);
  return detail::start_gather<R>(false, bases, [futures]() {
    return std::apply([](const auto&... f) { return R(detail::take_value(f)...); }, futures);
  });
}

template <class... As>
  requires(sizeof...(As) > 0)
Future<std::tuple<Outcome<detail::value_of_t<As>>...>> gather(return_exceptions_t, As&&... awaitables) {
  using R = std::tuple<Outcome<detail::value_of_t<As>>...>;
  auto futures = std::make_tuple(detail::ensure_future(std::forward<As>(awaitables))...);
  std::vector<detail::FutureBase*> bases;
  std::apply([&](auto&... f) { (bases.push_back(f.base()), ...); }, futures);
  return detail::start_gather<R>(true, bases, [futures]() {
    return std::apply([](const auto&... f) { return R(detail::take_outcome(f)...); }, futures);
  });
}

}  // namespace duet
