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
// and delivering their results (loop.shutdown_default_executor()). A loop
// closed with jobs still running (a plain loop's close(), or a custom
// executor's jobs) releases their futures, which stay pending, and a
// result arriving afterwards is dropped on its worker, as asyncio drops a
// concurrent future's result for a closed loop.
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

/// What a job produced, filled on the worker and sent to the loop. (Sent
/// behind a pointer: moving the optional by value trips g++ 12's
/// -Wmaybe-uninitialized under the sanitizers.)
template <class R>
struct JobResult {
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
  std::exception_ptr error;
  bool cancelled = false;  // the executor dropped the job unrun
};

/// The loop's side of a job in flight: the future its result completes.
/// A Future may only be touched, and released, on its loop's thread, so it
/// never goes to the worker. The worker sends the result back with this
/// node's address and the loop's thread completes and frees the node; if
/// the loop closed first, the post is refused, the result is dropped on
/// the worker, and close() has freed the node (JobFutures::shutdown).
struct JobFutureBase {
  virtual ~JobFutureBase() = default;
  JobFutureBase* prev = nullptr;
  JobFutureBase* next = nullptr;
};

template <class R>
struct JobFuture final : JobFutureBase {
  explicit JobFuture(Future<R> f) : future(std::move(f)) {}
  Future<R> future;

  void deliver(JobResult<R>& result) {
    if (future.done()) return;  // cancelled: the result is dropped
    if (result.cancelled) {
      future.cancel();
      return;
    }
    if (result.error)
      future.set_exception(result.error);
    else if constexpr (std::is_void_v<R>)
      future.set_result();
    else
      future.set_result(std::move(*result.value));
  }
};

/// A loop's jobs in flight (a LoopService; the loop's thread only). It owns
/// their JobFutures until the results come back, or until the loop closes.
class JobFutures final : public LoopService {
 public:
  explicit JobFutures(Loop&) {}
  JobFutures(const JobFutures&) = delete;
  JobFutures& operator=(const JobFutures&) = delete;
  ~JobFutures() override { shutdown(); }
  /// The loop is closing: a result can no longer come back (its post is
  /// refused), so the futures still waiting for one are released now.
  void shutdown() noexcept override;
  /// Takes ownership of `job` until take() gives it back.
  void adopt(std::unique_ptr<JobFutureBase> job) noexcept;
  /// Gives back the ownership of an adopted job.
  template <class R>
  std::unique_ptr<JobFuture<R>> take(JobFuture<R>* job) noexcept {
    unlink(job);
    return std::unique_ptr<JobFuture<R>>(job);
  }

 private:
  void unlink(JobFutureBase* job) noexcept;
  JobFutureBase* head_ = nullptr;
};

/// Sends a finished job's result to its loop's thread. On a closed loop the
/// post is refused and the result dies here with the refused callback; the
/// future was released by close(). `jobs` is only used on the loop's
/// thread, where it lives as long as the loop is open.
template <class R>
void post_job_result(Loop& loop, JobFutures& jobs, JobFuture<R>* job, std::unique_ptr<JobResult<R>> result) noexcept {
  try {
    loop.call_soon_threadsafe([&jobs, job, result = std::move(result)] {
      std::unique_ptr<JobFuture<R>> owned = jobs.take(job);
      owned->deliver(*result);
    });
  } catch (...) {
    // Closed (see above), or out of memory: then the future stays pending
    // until the loop closes and releases it.
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
    Job(Loop& l, detail::JobFutures& j, detail::JobFuture<R>* f, Context c, F fn)
        : loop(l), jobs(j), future(f), context(std::move(c)), fn(std::move(fn)) {}
    void run() override {
      try {
        if constexpr (std::is_void_v<R>) {
          context.run(fn);
          result->value = true;
        } else {
          result->value.emplace(context.run(fn));
        }
      } catch (...) {
        result->error = std::current_exception();
      }
      detail::post_job_result(loop, jobs, future, std::move(result));
    }
    void cancel() noexcept override {
      result->cancelled = true;
      detail::post_job_result(loop, jobs, future, std::move(result));
    }
    Loop& loop;
    detail::JobFutures& jobs;
    detail::JobFuture<R>* future;  // the loop's; never dereferenced here
    std::unique_ptr<detail::JobResult<R>> result = std::make_unique<detail::JobResult<R>>();
    Context context;
    F fn;
  };
  detail::JobFutures& jobs = loop.use_service<detail::JobFutures>();
  Future<R> future(loop);
  auto owned = std::make_unique<detail::JobFuture<R>>(future);
  detail::JobFuture<R>* job_future = owned.get();
  auto job = std::make_unique<Job>(loop, jobs, job_future, copy_context(), std::move(fn));
  jobs.adopt(std::move(owned));
  try {
    pool.submit_job(std::move(job));
  } catch (...) {
    jobs.take(job_future);  // never submitted: freed now
    throw;
  }
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
