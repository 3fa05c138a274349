// duet/native/executor.hpp — a thread pool for blocking work, and the
// loop's side of it (asyncio's run_in_executor and to_thread).
//
//   Future<R> f = run_in_executor(loop, nullptr, fn);   // default executor
//   R r = co_await to_thread(fn, args...);              // the same, awaited
//
// fn runs on a worker thread in a copy of the caller's context (as
// asyncio.to_thread's contextvars.copy_context().run); its result or
// exception comes back to the loop's thread with call_soon_threadsafe and
// completes the future there. Cancelling the future does not stop fn (a
// thread cannot be interrupted safely); its result is then dropped.
//
// Each loop has a default executor, made on first use with
// min(32, cores + 4) workers (concurrent.futures' default). duet::run()
// shuts it down before closing the loop, waiting for the jobs in flight
// and delivering their results (loop.shutdown_default_executor()).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "duet/context.hpp"
#include "duet/coro.hpp"
#include "duet/future.hpp"
#include "duet/loop.hpp"

namespace duet::native {

/// concurrent.futures.ThreadPoolExecutor's core: jobs run in submission
/// order on up to max_workers threads, started as jobs arrive.
class ThreadPoolExecutor {
 public:
  /// 0 means min(32, hardware threads + 4).
  explicit ThreadPoolExecutor(std::size_t max_workers = 0);
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;
  /// shutdown(true): queued jobs still run, every worker is joined.
  ~ThreadPoolExecutor();

  /// A queued job (type-erased, move-only).
  struct Job {
    virtual ~Job() = default;
    virtual void run() = 0;
    /// The job will never run (shutdown(false) dropped it).
    virtual void cancel() noexcept {}
  };

  /// Runs fn() on a worker. Throws RuntimeError after shutdown.
  template <class F>
  void submit(F&& fn) {
    struct Impl final : Job {
      explicit Impl(F&& f) : fn(std::forward<F>(f)) {}
      void run() override { fn(); }
      std::decay_t<F> fn;
    };
    submit_job(std::make_unique<Impl>(std::forward<F>(fn)));
  }
  void submit_job(std::unique_ptr<Job> job);
  /// Refuses new jobs. With wait, runs the queued ones and joins the
  /// workers; without, drops the queued ones (they never start) and
  /// returns at once. Idempotent; must not be called from a worker.
  void shutdown(bool wait = true);

  std::size_t max_workers() const noexcept { return max_workers_; }

 private:
  void work();

  std::size_t max_workers_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<Job>> jobs_;
  std::vector<std::thread> workers_;
  std::size_t idle_ = 0;
  bool shut_down_ = false;
};

namespace detail {

/// The outcome of a job, filled on the worker and read on the loop.
template <class R>
struct ExecutorJob {
  explicit ExecutorJob(Future<R> f) : future(std::move(f)) {}
  Future<R> future;  // touched on the loop's thread only
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
  std::exception_ptr error;
  bool cancelled = false;  // the executor dropped the job unrun

  void deliver() {
    if (future.done()) return;  // cancelled: the result is dropped
    if (cancelled) {
      future.cancel();
      return;
    }
    if (error)
      future.set_exception(error);
    else if constexpr (std::is_void_v<R>)
      future.set_result();
    else
      future.set_result(std::move(*value));
  }
};

/// Posts the finished job to its loop. If the loop has closed meanwhile the
/// job is leaked on purpose: its Future may only be released on the loop's
/// thread, and that thread may still hold copies of it.
template <class F>
void post_job_result(Loop& loop, F deliver) noexcept {
  try {
    loop.call_soon_threadsafe(std::move(deliver));
  } catch (...) {
    // Closed loop (or out of memory): leaked, see above.
  }
}

}  // namespace detail

/// The loop's default executor (made on first use).
ThreadPoolExecutor& default_executor(Loop& loop);
/// The loop's default executor if one was made, else nullptr.
ThreadPoolExecutor* find_default_executor(Loop& loop) noexcept;
/// Shuts the default executor down, waiting for its jobs, then delivers
/// their results: call it on the loop's thread while the loop does not run
/// (duet::run does, before closing the loop). No-op if there is none.
void shutdown_default_executor(Loop& loop);

/// loop.run_in_executor(executor, fn): fn() on `executor` (the loop's
/// default when nullptr), in a copy of the current context.
template <class F>
auto run_in_executor(Loop& loop, ThreadPoolExecutor* executor, F fn) -> Future<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  ThreadPoolExecutor& pool = executor ? *executor : default_executor(loop);
  struct Job final : ThreadPoolExecutor::Job {
    Job(Loop& l, Future<R> f, Context c, F fn)
        : loop(l), outcome(new detail::ExecutorJob<R>(std::move(f))), context(std::move(c)), fn(std::move(fn)) {}
    ~Job() override { delete outcome; }  // non-null only if never handed back
    void run() override {
      try {
        if constexpr (std::is_void_v<R>) {
          context.run(fn);
          outcome->value = true;
        } else {
          outcome->value.emplace(context.run(fn));
        }
      } catch (...) {
        outcome->error = std::current_exception();
      }
      hand_back();
    }
    void cancel() noexcept override {
      outcome->cancelled = true;
      hand_back();
    }
    // The outcome's Future may only be released on the loop's thread: the
    // outcome travels there with the result and is deleted there.
    void hand_back() noexcept {
      detail::post_job_result(loop, [outcome = std::exchange(outcome, nullptr)] {
        std::unique_ptr<detail::ExecutorJob<R>> owned(outcome);
        owned->deliver();
      });
    }
    Loop& loop;
    detail::ExecutorJob<R>* outcome;
    Context context;
    F fn;
  };
  Future<R> future(loop);
  pool.submit_job(std::make_unique<Job>(loop, future, copy_context(), std::move(fn)));
  return future;
}

namespace detail {
// fn(args...) as one callable, built outside any coroutine: g++ 12
// mis-compiles pack init-captures in a lambda inside a coroutine.
template <class F, class... Args>
auto bind_call(F fn, Args... args) {
  return [fn = std::move(fn), ... args = std::move(args)]() mutable -> std::invoke_result_t<F&, Args&...> {
    return fn(args...);
  };
}

template <class R, class Job>
Coro<R> await_in_default_executor(Job job) {
  Future<R> future = run_in_executor(get_running_loop(), nullptr, std::move(job));
  if constexpr (std::is_void_v<R>) {
    co_await future;
  } else {
    R result = co_await future;
    co_return result;
  }
}
}  // namespace detail

template <class F, class... Args>
auto to_thread(F fn, Args... args) -> Coro<std::invoke_result_t<F&, Args&...>> {
  return detail::await_in_default_executor<std::invoke_result_t<F&, Args&...>>(
      detail::bind_call(std::move(fn), std::move(args)...));
}

}  // namespace duet::native
