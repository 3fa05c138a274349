// duet/loop.hpp — the event loop: the ready queue, the timer queue, the
// thread-safe inbox, and the iteration split into public phases.
//
//   one iteration (asyncio's BaseEventLoop._run_once, in four public steps):
//
//     poll_timeout()  ->  poll(timeout)  ->  process_events()  ->  process_ready()
//     phase 2             phase 3            phase 4               phase 5
//     prune timers,       backend waits;     I/O events become     inbox + due timers
//     compute timeout     only step that     ready callbacks       join the ready queue,
//                         may run off the                          then exactly the
//                         loop's thread                            callbacks present run
//
//   drivers — each only decides *how to wait*; none re-implements a queue:
//
//     run_forever()        all four steps in a loop on this thread
//     guest mode (native)  poll() on a backend thread, the rest on the host's
//     embedded (GLib ...)  the host polls the backend fd with poll_timeout()
//     web driver           no poll(); host macrotasks and setTimeout instead
//
// process_ready() is the only place where callbacks are actually called.
//
// Threads: every method is for the loop's thread unless it says otherwise.
// call_soon_threadsafe() and poll() (by a driver) are the exceptions. In
// debug mode a loop-thread method called from another thread while the loop
// runs throws RuntimeError, as asyncio's _check_thread does.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "duet/backend.hpp"
#include "duet/context.hpp"
#include "duet/detail/ready_queue.hpp"
#include "duet/detail/timer_queue.hpp"
#include "duet/errors.hpp"
#include "duet/exception_context.hpp"
#include "duet/handle.hpp"
#include "duet/time.hpp"

namespace duet {

template <class T>
class Future;
template <class T>
class Coro;
template <class T>
class Task;
namespace detail {
class FutureBase;
class TaskBase;
}  // namespace detail

/// Per-loop state that a layer above the scheduler attaches to a loop (the
/// native layer's fd table, its default executor, its signal handlers), as
/// asio's execution_context services: created on first use by
/// Loop::use_service<S>(), shut down and destroyed by close(), after the
/// pending tasks are abandoned (their frames may still use the service)
/// and before the backend is released, in the reverse order of creation.
class LoopService {
 public:
  virtual ~LoopService() = default;
  /// close() has begun: release what the loop's backend holds.
  virtual void shutdown() noexcept {}
};

struct LoopOptions {
  /// Debug mode (asyncio's loop.set_debug): slow-callback warnings and
  /// cross-thread checks. Unset: on when the environment has DUET_DEBUG=1.
  std::optional<bool> debug;
  /// In debug mode, callbacks that take at least this long are logged.
  Duration slow_callback_duration = std::chrono::milliseconds(100);
};

class Loop {
 public:
  /// The longest a poll may block when a timer is pending (asyncio's
  /// MAXIMUM_SELECT_TIMEOUT): later deadlines are reached in 24 h steps.
  static constexpr Duration kMaxPollTimeout = std::chrono::hours(24);
  /// run_once() skips a zero-timeout poll until this many callbacks have
  /// run since the last poll (see run_once for why).
  static constexpr std::size_t kIoPollInterval = 61;

  Loop(std::unique_ptr<Backend> backend, std::unique_ptr<Clock> clock, LoopOptions options = {});
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  /// Closes the loop if it is not closed. Destroying a running loop is a
  /// bug in the caller and aborts with a message.
  ~Loop();

  // ---- scheduling ---------------------------------------------------------

  /// Schedules fn(args...) to run in a later iteration, after everything
  /// already scheduled (FIFO), in a copy of the current context. Throws
  /// RuntimeError on a closed loop.
  template <class F, class... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Context>)
  Handle call_soon(F&& fn, Args&&... args) {
    prepare_call_soon();
    auto [block, entry] =
        ready_.emplace_in(detail::current_context_map(), bind(std::forward<F>(fn), std::forward<Args>(args)...));
    ++block->refs;  // the returned Handle's reference
    return Handle(block, entry);
  }
  /// The same, run in `context` itself (asyncio's context= argument): what
  /// fn sets stays in it; RuntimeError (reported) if it is entered then.
  template <class F, class... Args>
  Handle call_soon(const Context& context, F&& fn, Args&&... args) {
    prepare_call_soon();
    auto [block, entry] = ready_.emplace(in_context(context, std::forward<F>(fn), std::forward<Args>(args)...));
    ++block->refs;
    return Handle(block, entry);
  }

  /// Schedules fn(args...) at time() + delay (rounded up to nanoseconds),
  /// in a copy of the current context. A delay <= 0 is due at once but still
  /// runs from the timer queue.
  template <class Rep, class Period, class F, class... Args>
  TimerHandle call_later(std::chrono::duration<Rep, Period> delay, F&& fn, Args&&... args) {
    return call_at(saturating_add(time(), to_duration(delay)), std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Schedules fn(args...) to run once time() >= when, in a copy of the
  /// current context (or in `context` itself, given first). Timers with
  /// equal deadlines run in the order they were scheduled.
  template <class F, class... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Context>)
  TimerHandle call_at(TimePoint when, F&& fn, Args&&... args) {
    check_can_schedule();
    detail::HandleNode* node =
        make_node(detail::current_context_map(), std::forward<F>(fn), std::forward<Args>(args)...);
    push_timer(when, node);
    ++node->refs;
    return TimerHandle(node);
  }
  template <class F, class... Args>
  TimerHandle call_at(TimePoint when, const Context& context, F&& fn, Args&&... args) {
    check_can_schedule();
    detail::HandleNode* node = make_node(nullptr, in_context(context, std::forward<F>(fn), std::forward<Args>(args)...));
    push_timer(when, node);
    ++node->refs;
    return TimerHandle(node);
  }

  /// From any thread: schedules fn(args...) like call_soon, in a copy of
  /// the calling thread's current context (or in `context` itself, given
  /// first), and wakes the loop if it is blocked in its poll. Throws
  /// RuntimeError when the loop is closed (then fn is not kept). Unlike
  /// asyncio it returns no Handle: a Handle belongs to the loop's thread;
  /// to cancel, share a flag.
  template <class F, class... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Context>)
  void call_soon_threadsafe(F&& fn, Args&&... args) {
    refill_poster_cache();
    post_threadsafe(make_node(detail::current_context_map(), std::forward<F>(fn), std::forward<Args>(args)...));
  }
  template <class F, class... Args>
  void call_soon_threadsafe(const Context& context, F&& fn, Args&&... args) {
    refill_poster_cache();
    post_threadsafe(make_node(nullptr, in_context(context, std::forward<F>(fn), std::forward<Args>(args)...)));
  }

  /// The loop's monotonic time. Safe from any thread.
  TimePoint time() const noexcept { return clock_->now(); }

  // ---- futures and tasks (defined in future.hpp / task.hpp) -----------------

  /// A new pending future of this loop (loop.create_future()).
  template <class T = void>
  Future<T> create_future();

  /// Wraps the coroutine in a task and schedules its first step
  /// (loop.create_task). Throws RuntimeError on a closed loop.
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name = {});
  /// The same, with the task running in `context` itself rather than in a
  /// copy of the current one (asyncio's context= argument, 3.11).
  template <class T>
  Task<T> create_task(Coro<T> coro, std::string name, const Context& context);

  /// Runs the loop until the future (or task) is done, then returns its
  /// result or throws its exception (loop.run_until_complete).
  template <class T>
  T run_until_complete(Future<T> future);
  /// Same, for a coroutine: it becomes a task first.
  template <class T>
  T run_until_complete(Coro<T> coro);

  /// Number of tasks of this loop not yet done (asyncio.all_tasks' size).
  std::size_t pending_task_count() const noexcept;
  /// The tasks of this loop not yet done (see duet::all_tasks).
  std::vector<detail::TaskBase*> pending_tasks() const;

  // ---- running ------------------------------------------------------------

  /// Runs iterations until stop(). Throws RuntimeError if the loop is
  /// closed, already running, or another loop runs on this thread.
  void run_forever();
  /// Throws what run_forever() would throw before running anything: the
  /// loop is closed, already running, or its backend refuses blocking runs
  /// on this thread (Backend::blocking_run_refusal).
  void check_can_run() const;

  /// Makes run_forever() return after the current iteration; callbacks
  /// already due in it still run. Called before run_forever(), the next run
  /// does one iteration and returns (asyncio's stop()).
  void stop() noexcept { stopping_ = true; }

  /// Drops every pending callback and timer without running them, releases
  /// the backend, and makes further scheduling throw. Idempotent. Throws
  /// RuntimeError when called while the loop runs.
  void close();

  bool is_running() const noexcept { return running_ || in_process_ready_; }
  bool is_closed() const noexcept { return flags_.load(std::memory_order_acquire) & kClosed; }

  // ---- the iteration, step by step ------------------------------------------

  /// Phase 2: drops cancelled timers from the head of the queue (compacting
  /// when more than half of >100 are cancelled) and returns how long the
  /// poll may block: zero when callbacks are ready or the loop is stopping,
  /// the time to the earliest timer (capped at kMaxPollTimeout), or nullopt
  /// ("until woken") when nothing is scheduled.
  std::optional<Duration> poll_timeout();

  /// Phase 3: asks the backend to wait at most `timeout`, appending events.
  /// The one step a driver may run on another thread (never concurrently
  /// with the other steps' use of `events`).
  void poll(std::optional<Duration> timeout, std::vector<IoEvent>& events);

  /// Phase 4: turns backend events into ready callbacks.
  void process_events(std::span<const IoEvent> events);

  /// Phase 5: moves thread-safe posts and due timers (deadline <= time())
  /// to the ready queue, then runs exactly the callbacks in it at that
  /// moment; callbacks they schedule run in the next iteration.
  void process_ready();
  /// Phase 5 with a time budget (the web driver's slices): the same, but it
  /// stops after the callback during which time() reached `deadline`, or
  /// after the one that called end_slice(). The callbacks it did not reach
  /// stay at the head of the ready queue and run first in the next call, so
  /// FIFO order is kept. Returns true when it ran every callback present
  /// and none of them called end_slice().
  bool process_ready(TimePoint deadline);
  /// Makes the process_ready(deadline) in progress stop after the current
  /// callback (yield to the host); no effect on the unbudgeted one.
  void end_slice() noexcept { slice_end_requested_ = true; }

  /// One whole iteration: the four steps above, except that a zero-timeout
  /// poll is skipped while fewer than kIoPollInterval callbacks have run
  /// since the last poll.
  void run_once();

  // ---- errors -------------------------------------------------------------

  void set_exception_handler(ExceptionHandler handler) { exception_handler_ = std::move(handler); }
  const ExceptionHandler& get_exception_handler() const noexcept { return exception_handler_; }
  /// Logs the context through the log sink (stderr by default).
  void default_exception_handler(const ExceptionContext& context);
  /// Sends the context to the custom handler, or to the default one when
  /// there is none or the custom one throws. Never throws.
  void call_exception_handler(const ExceptionContext& context) noexcept;

  // ---- debugging ----------------------------------------------------------

  bool get_debug() const noexcept { return debug_; }
  void set_debug(bool enabled) noexcept;
  Duration slow_callback_duration() const noexcept { return slow_callback_duration_; }
  void set_slow_callback_duration(Duration d) noexcept { slow_callback_duration_ = d; }

  /// Where the default exception handler and debug warnings write (one
  /// message per call, no trailing newline). Default: stderr.
  using LogSink = std::function<void(std::string_view)>;
  void set_log_sink(LogSink sink);
  void log(std::string_view message) const;

  struct Statistics {
    std::size_t ready = 0;             // callbacks in the ready queue
    std::size_t timers = 0;            // entries in the timer heap (incl. cancelled)
    std::size_t cancelled_timers = 0;  // cancelled entries not yet dropped
    std::uint64_t iterations = 0;      // process_ready calls
    std::uint64_t wakeups = 0;         // backend wake() calls made by the loop
  };
  Statistics statistics() const;

  /// The backend; throws RuntimeError after close().
  Backend& backend();

  /// The service of type S attached to this loop, made with S(*this) on
  /// first use. Throws RuntimeError on a closed loop.
  template <class S>
  S& use_service() {
    const void* key = &service_key<S>;
    for (auto& [k, service] : services_)
      if (k == key) return static_cast<S&>(*service);
    if (is_closed()) throw_closed();
    auto service = std::make_unique<S>(*this);
    S& ref = *service;
    services_.emplace_back(key, std::move(service));
    return ref;
  }
  /// The service of type S if one is attached, else nullptr.
  template <class S>
  S* find_service() noexcept {
    for (auto& [k, service] : services_)
      if (k == &service_key<S>) return static_cast<S*>(service.get());
    return nullptr;
  }
  Clock& clock() noexcept { return *clock_; }

  /// A number no other loop of this process has had (a loop's address may
  /// be reused by a later loop).
  std::uint64_t serial() const noexcept { return serial_; }

  // ---- for drivers that poll on another thread (native guest mode) ----------

  /// The driver is about to hand poll() to another thread: from now until
  /// end_foreign_poll(), anything scheduled on the loop's thread (a host
  /// callback calling call_soon, call_at, a future's set_result...) wakes
  /// that poll, or makes it not block if it has not begun. Call it on the
  /// loop's thread, after poll_timeout().
  void begin_foreign_poll() noexcept;
  /// The foreign poll has returned and the loop's thread runs the phases
  /// again.
  void end_foreign_poll() noexcept;
  /// A driver that runs the phases itself (guest mode) marks the loop as
  /// running for its whole run, on the calling thread (the loop's thread
  /// for debug-mode checks): run_forever, run_until_complete and close()
  /// then refuse, as while run_forever runs. Throws RuntimeError when the
  /// loop is closed or already running.
  void begin_external_run();
  void end_external_run() noexcept;

  /// For hosts that wait on the backend's fd themselves (embedded mode):
  /// poll_timeout(), and from now until the next poll() a thread-safe post
  /// wakes the backend (makes its fd readable). Zero when work is ready.
  std::optional<Duration> prepare_external_wait();
  /// The host's wait is over (for hosts that never call poll(), such as the
  /// web driver): thread-safe posts stop waking the backend until the next
  /// prepare_external_wait().
  void end_external_wait() noexcept;

  /// For drivers that run the phases themselves: whether stop() was called
  /// since the last call, clearing the request (run_forever clears it when
  /// it returns).
  bool consume_stop() noexcept { return std::exchange(stopping_, false); }

  /// The deadline of the earliest live timer (cancelled ones at the head
  /// are dropped first), or nullopt when no timer is pending.
  std::optional<TimePoint> next_timer_deadline();

 private:
  friend class Handle;
  friend class detail::FutureBase;
  friend class detail::TaskBase;

  // fn itself, or fn with its arguments bound (moved in, invoked as lvalues).
  template <class F, class... Args>
  static decltype(auto) bind(F&& fn, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      return std::forward<F>(fn);
    } else {
      return [fn = std::forward<F>(fn), ... args = std::forward<Args>(args)]() mutable { std::invoke(fn, args...); };
    }
  }

  // Schedules an internal callback that runs in no particular context (a
  // task's step enters the task's own), with no Handle.
  template <class F>
  void call_soon_internal(F&& fn) {
    prepare_call_soon();
    ready_.emplace(std::forward<F>(fn));
  }

  // fn(args...) called through context.run().
  template <class F, class... Args>
  static auto in_context(const Context& context, F&& fn, Args&&... args) {
    return [context, fn = bind(std::forward<F>(fn), std::forward<Args>(args)...)]() mutable { context.run(fn); };
  }

  // A node for fn(args...) that runs in `context` (borrowed here).
  template <class F, class... Args>
  static detail::HandleNode* make_node(detail::ContextMapNode* context, F&& fn, Args&&... args) {
    detail::HandleNode* node = detail::acquire_node();
    try {
      node->callback.emplace(bind(std::forward<F>(fn), std::forward<Args>(args)...));
    } catch (...) {
      detail::release_node(node);
      throw;
    }
    node->context = detail::retain(context);
    return node;
  }

  // flags_: what the scheduling fast paths must look at, in one byte, so
  // that call_soon tests one load instead of three.
  static constexpr std::uint8_t kClosed = 1;        // close() is done
  static constexpr std::uint8_t kDebug = 2;         // debug mode
  static constexpr std::uint8_t kInboxPending = 4;  // thread-safe posts wait in the inbox
  static constexpr std::uint8_t kForeignPoll = 8;   // another thread polls: scheduling must wake it

  void check_can_schedule() {
    if (flags_.load(std::memory_order_relaxed) & (kClosed | kDebug | kForeignPoll)) [[unlikely]]
      check_can_schedule_slow();
  }
  void check_can_schedule_slow();
  void wake_foreign_poll() noexcept;
  // Under inbox_mutex_, with sleeping_ set: wakes the poll once per sleep.
  void wake_sleeper_locked() noexcept;
  // check_can_schedule(), then: posts from call_soon_threadsafe that are
  // already in join the queue first, so that the order of calls made on
  // this thread is kept (asyncio appends both to the same deque).
  void prepare_call_soon() {
    if (flags_.load(std::memory_order_relaxed)) [[unlikely]]
      prepare_call_soon_slow();
  }
  void prepare_call_soon_slow();
  [[noreturn]] static void throw_closed();
  void check_thread() const;
  void push_ready(detail::HandleNode* node);
  void push_timer(TimePoint when, detail::HandleNode* node);
  void post_threadsafe(detail::HandleNode* node);
  // Nodes posted from another thread are allocated there and freed on the
  // loop's thread, so the poster's cache is always empty and the loop's
  // always full: a malloc/free pair per post. The loop hands idle nodes
  // back through spare_ (under the inbox lock, topped up in drain_inbox);
  // a poster whose cache is empty takes a batch of them.
  void refill_poster_cache() noexcept {
    if (detail::pooled_node_count() == 0) [[unlikely]]
      refill_poster_cache_slow();
  }
  void refill_poster_cache_slow() noexcept;
  void drain_inbox();
  void run_entry(detail::ReadyEntry* entry);
  // The callback context is a fresh copy of the queue's read context
  // (asyncio runs each Handle in its own copy) while it is borrowed: the
  // queue keeps its map in step. A callback that set a variable (the only
  // way to get a token, so an identity) left it un-borrowed; then it is
  // reset before the next callback.
  void use_callback_context() noexcept {
    if (!callback_context_.borrowed) [[unlikely]]
      reset_callback_context(ready_.read_context());
  }
  void reset_callback_context(detail::ContextMapNode* map) noexcept;
  void run_node(detail::HandleNode* node);
  void report_callback_exception(std::string handle);
  void check_slow(TimePoint start, detail::ReadyEntry* entry, detail::HandleNode* node);
  void timer_cancelled(const detail::HandleNode* node) noexcept {
    // A driver waiting on a host timer for this very timer re-syncs it (the
    // web driver clears or re-arms a host timer whose deadline is gone).
    if ((flags_.load(std::memory_order_relaxed) & kForeignPoll) && timers_.is_head(node)) [[unlikely]]
      wake_foreign_poll();
    timers_.note_cancelled();
  }
  void abandon_pending_tasks() noexcept;

  template <class S>
  static constexpr char service_key = 0;
  void shutdown_services() noexcept;

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Clock> clock_;
  std::vector<std::pair<const void*, std::unique_ptr<LoopService>>> services_;
  // The context callbacks run in: its map is the entry's (borrowed, kept
  // in step by ready_) until a callback sets a variable, which gives it a
  // map of its own. Declared before ready_, which refers to it to the end.
  detail::ContextState callback_context_;
  detail::ReadyQueue ready_;
  detail::TimerQueue timers_;

  // Thread-safe inbox. Invariants (under inbox_mutex_): flags_ has
  // kInboxPending iff inbox_head_ != nullptr; sleeping_ is true only between the
  // check in poll() and the backend's return; wake_sent_ implies sleeping_
  // was true when the wake was written (so at most one wake per sleep).
  mutable std::mutex inbox_mutex_;
  detail::HandleNode* inbox_head_ = nullptr;
  detail::HandleNode* inbox_tail_ = nullptr;
  bool sleeping_ = false;
  bool wake_sent_ = false;
  bool polling_ = false;  // a poll() is using the backend (maybe on another thread)
  bool inbox_closed_ = false;  // close() has begun: thread-safe posts are refused
  bool wake_pending_ = false;  // a foreign-poll wake came before the poll slept: don't block
  detail::HandleNode* spare_ = nullptr;  // idle nodes for posting threads, through `next`
  std::atomic<std::size_t> spare_count_{0};  // changed under the lock, read without it as a hint
  std::uint64_t wakeups_ = 0;

  std::atomic<std::uint8_t> flags_{0};  // kClosed | kDebug | kInboxPending; changed by atomic or/and
  bool stopping_ = false;
  bool running_ = false;
  bool in_process_ready_ = false;
  bool slice_end_requested_ = false;
  template <bool Budgeted>
  bool run_ready(TimePoint deadline);
  std::atomic<std::thread::id> owner_thread_{};
  std::uint64_t iterations_ = 0;
  std::size_t callbacks_since_poll_ = kIoPollInterval;  // the first iteration polls
  std::vector<IoEvent> events_scratch_;  // run_once's event batch, reused
  detail::FutureBase* registry_head_ = nullptr;  // every live future/task state of this loop

  bool debug_ = false;  // mirrors kDebug, for process_ready's plain reads
  Duration slow_callback_duration_;
  std::uint64_t serial_;
  ExceptionHandler exception_handler_;
  LogSink log_sink_;
};

namespace detail {
extern thread_local constinit Loop* t_running_loop;
}

/// The loop running on this thread (in run_forever or inside an iteration),
/// or nullptr (asyncio's _get_running_loop).
inline Loop* running_loop() noexcept { return detail::t_running_loop; }

/// The loop running on this thread; throws RuntimeError("no running event
/// loop") when there is none (asyncio.get_running_loop).
Loop& get_running_loop();

}  // namespace duet
