// duet/wait.hpp — asyncio.wait and asyncio.as_completed.
//
//   auto [done, pending] = co_await duet::wait(futures, duet::FIRST_COMPLETED, 1s);
//   for (auto& next : duet::as_completed(futures)) int v = co_await std::move(next);
//
// wait() never raises TimeoutError and never cancels anything: on timeout it
// returns what is done so far. as_completed() gives one coroutine per input;
// the i-th one yields the i-th result to arrive (or raises its exception,
// or TimeoutError once the overall timeout passes).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "duet/coro.hpp"
#include "duet/errors.hpp"
#include "duet/future.hpp"
#include "duet/gather.hpp"
#include "duet/time.hpp"

namespace duet {

enum class ReturnWhen { first_completed, first_exception, all_completed };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::first_completed;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::first_exception;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::all_completed;

template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> pending;
};

/// asyncio.wait(fs, timeout, return_when).
template <class T>
Coro<WaitResult<T>> wait(std::vector<Future<T>> fs, ReturnWhen return_when = ALL_COMPLETED,
                         std::optional<Duration> timeout = std::nullopt) {
  if (fs.empty()) throw std::invalid_argument("Set of Tasks/Futures is empty.");
  Loop& loop = get_running_loop();
  Future<void> waiter(loop);
  auto counter = std::make_shared<std::size_t>(fs.size());
  std::vector<DoneCallbackId> ids;
  ids.reserve(fs.size());
  for (auto& f : fs) {
    ids.push_back(f.add_done_callback([waiter, counter, return_when](const Future<T>& done) mutable {
      --*counter;
      bool wake = *counter == 0 || return_when == FIRST_COMPLETED ||
                  (return_when == FIRST_EXCEPTION && !done.cancelled() && done.exception() != nullptr);
      if (wake && !waiter.done()) waiter.set_result();
    }));
  }
  TimerHandle timer;
  if (timeout)
    timer = loop.call_later(*timeout, [waiter]() mutable {
      if (!waiter.done()) waiter.set_result();
    });
  // Futures already done have scheduled their callbacks: the waiter is then
  // released in the next iteration, as asyncio's _wait also goes through
  // the loop once.
  std::exception_ptr error;
  try {
    co_await waiter;
  } catch (...) {
    error = std::current_exception();
  }
  timer.cancel();
  for (std::size_t i = 0; i < fs.size(); ++i) fs[i].remove_done_callback(ids[i]);
  if (error) std::rethrow_exception(error);
  WaitResult<T> result;
  for (auto& f : fs) (f.done() ? result.done : result.pending).push_back(f);
  co_return result;
}

template <class T, class Rep, class Period>
Coro<WaitResult<T>> wait(std::vector<Future<T>> fs, ReturnWhen return_when,
                         std::chrono::duration<Rep, Period> timeout) {
  return wait(std::move(fs), return_when, std::optional<Duration>(to_duration(timeout)));
}

namespace detail {
template <class T>
struct AsCompletedState {
  std::deque<Future<T>> done;
  std::deque<Future<void>> waiters;  // consumers waiting for the next result
  bool timed_out = false;
  TimerHandle timer;
  std::size_t remaining = 0;  // futures not yet handed out
  void notify_one() {
    while (!waiters.empty()) {
      Future<void> w = std::move(waiters.front());
      waiters.pop_front();
      if (!w.done()) {
        w.set_result();
        return;
      }
    }
  }
  void notify_all() {
    for (auto& w : waiters)
      if (!w.done()) w.set_result();
    waiters.clear();
  }
};

template <class T>
Coro<T> as_completed_next(std::shared_ptr<AsCompletedState<T>> state) {
  while (state->done.empty()) {
    if (state->timed_out) throw TimeoutError("as_completed timed out");
    Future<void> signal(get_running_loop());
    state->waiters.push_back(signal);
    co_await signal;
  }
  Future<T> f = std::move(state->done.front());
  state->done.pop_front();
  if (--state->remaining == 0) state->timer.cancel();
  // Result into a named local first: g++ 12 mishandles `co_return co_await`.
  if constexpr (std::is_void_v<T>) {
    co_await f;
  } else {
    T value = co_await f;
    co_return value;
  }
}
}  // namespace detail

/// asyncio.as_completed(fs, timeout): one coroutine per future, yielding
/// results in completion order.
template <class T>
std::vector<Coro<T>> as_completed(std::vector<Future<T>> fs, std::optional<Duration> timeout = std::nullopt) {
  auto state = std::make_shared<detail::AsCompletedState<T>>();
  state->remaining = fs.size();
  for (auto& f : fs) {
    f.add_done_callback([weak = std::weak_ptr(state)](const Future<T>& done) {
      if (auto s = weak.lock()) {
        s->done.push_back(done);
        s->notify_one();
      }
    });
  }
  if (timeout && !fs.empty()) {
    state->timer = get_running_loop().call_later(*timeout, [weak = std::weak_ptr(state)] {
      if (auto s = weak.lock()) {
        s->timed_out = true;
        s->notify_all();
      }
    });
  }
  std::vector<Coro<T>> out;
  out.reserve(fs.size());
  for (std::size_t i = 0; i < fs.size(); ++i) out.push_back(detail::as_completed_next(state));
  return out;
}

}  // namespace duet
