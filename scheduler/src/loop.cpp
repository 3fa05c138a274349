// The loop: scheduling, the four iteration steps, run_forever, close.
// The file-level design note is at the top of duet/loop.hpp.
#include "duet/loop.hpp"

#include "duet/detail/task_base.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace duet {

thread_local constinit Loop* detail::t_running_loop = nullptr;

namespace {

using detail::t_running_loop;

// Makes `loop` this thread's running loop for a scope, refusing a second
// loop (asyncio's _check_running / events._set_running_loop).
class RunningLoopScope {
 public:
  explicit RunningLoopScope(Loop* loop) : previous_(t_running_loop) {
    if (previous_ && previous_ != loop)
      throw RuntimeError("Cannot run the event loop while another loop is running on this thread");
    t_running_loop = loop;
  }
  RunningLoopScope(const RunningLoopScope&) = delete;
  RunningLoopScope& operator=(const RunningLoopScope&) = delete;
  ~RunningLoopScope() { t_running_loop = previous_; }

 private:
  Loop* previous_;
};

std::uint64_t next_loop_serial() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

bool debug_from_environment() {
  const char* value = std::getenv("DUET_DEBUG");
  return value && *value && std::strcmp(value, "0") != 0;
}

std::string seconds(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

Loop& get_running_loop() {
  if (!t_running_loop) throw RuntimeError("no running event loop");
  return *t_running_loop;
}

loop_clock::time_point loop_clock::now() { return get_running_loop().time(); }

Loop::Loop(std::unique_ptr<Backend> backend, std::unique_ptr<Clock> clock, LoopOptions options)
    : backend_(std::move(backend)),
      clock_(std::move(clock)),
      debug_(options.debug.value_or(debug_from_environment())),
      slow_callback_duration_(options.slow_callback_duration),
      serial_(next_loop_serial()) {
  if (!backend_) throw std::invalid_argument("duet::Loop needs a backend");
  if (!clock_) throw std::invalid_argument("duet::Loop needs a clock");
  callback_context_.borrowed = true;
  ready_.set_reader_context(&callback_context_);
  if (debug_) flags_.fetch_or(kDebug, std::memory_order_relaxed);
}

void Loop::set_debug(bool enabled) noexcept {
  debug_ = enabled;
  if (enabled)
    flags_.fetch_or(kDebug, std::memory_order_relaxed);
  else
    flags_.fetch_and(static_cast<std::uint8_t>(~kDebug), std::memory_order_relaxed);
}

void Loop::check_can_schedule_slow() {
  const std::uint8_t flags = flags_.load(std::memory_order_relaxed);
  if (flags & kClosed) throw_closed();
  if (flags & kDebug) check_thread();
  if (flags & kForeignPoll) wake_foreign_poll();
}

void Loop::begin_foreign_poll() noexcept { flags_.fetch_or(kForeignPoll, std::memory_order_relaxed); }

void Loop::end_foreign_poll() noexcept {
  flags_.fetch_and(static_cast<std::uint8_t>(~kForeignPoll), std::memory_order_relaxed);
  std::lock_guard lock(inbox_mutex_);
  wake_pending_ = false;
}

void Loop::wake_foreign_poll() noexcept {
  // Called just before the work is queued, on the loop's thread; the poll's
  // results are processed on this same thread after the current host
  // callback returns, so they always find the work. Coalesced as the
  // thread-safe posts are; a poll that has not begun to block is told not
  // to.
  std::lock_guard lock(inbox_mutex_);
  if (sleeping_) {
    wake_sleeper_locked();
  } else {
    wake_pending_ = true;
  }
}

void Loop::prepare_call_soon_slow() {
  check_can_schedule_slow();
  drain_inbox();
}

Loop::~Loop() {
  if (is_running()) {
    std::fputs("duet: a Loop was destroyed while running; this is a bug in the caller\n", stderr);
    std::abort();
  }
  close();
  // Futures and tasks that outlive the loop forget it: their handles stay
  // usable for reading results, and a never-retrieved exception is then
  // reported on stderr.
  while (detail::FutureBase* state = registry_head_) {
    registry_head_ = state->registry_next_;
    state->registry_prev_ = state->registry_next_ = nullptr;
    state->detach_from_loop();
  }
}

std::vector<detail::TaskBase*> Loop::pending_tasks() const {
  std::vector<detail::TaskBase*> tasks;
  for (detail::FutureBase* s = registry_head_; s; s = s->registry_next_)
    if (s->is_task() && !s->done()) tasks.push_back(static_cast<detail::TaskBase*>(s));
  return tasks;
}

std::size_t Loop::pending_task_count() const noexcept {
  std::size_t n = 0;
  for (detail::FutureBase* s = registry_head_; s; s = s->registry_next_)
    if (s->is_task() && !s->done()) ++n;
  return n;
}

void Loop::throw_closed() { throw RuntimeError("Event loop is closed"); }

void Loop::check_thread() const {
  std::thread::id owner = owner_thread_.load(std::memory_order_relaxed);
  if (owner != std::thread::id{} && owner != std::this_thread::get_id())
    throw RuntimeError(
        "Non-thread-safe operation invoked on an event loop other than the current one "
        "(use call_soon_threadsafe)");
}

void Loop::push_ready(detail::HandleNode* node) {
  // Done callbacks of futures come here without call_soon: a future set by
  // a host callback in guest mode must wake the foreign poll too.
  if (flags_.load(std::memory_order_relaxed) & kForeignPoll) [[unlikely]]
    wake_foreign_poll();
  try {
    ready_.push_node(node);
  } catch (...) {
    detail::release_node(node);
    throw;
  }
}

std::optional<Duration> Loop::prepare_external_wait() {
  std::optional<Duration> timeout = poll_timeout();
  if (timeout && *timeout <= Duration::zero()) return timeout;
  std::lock_guard lock(inbox_mutex_);
  if (inbox_head_) return Duration::zero();
  // The host is about to wait on the backend's fd: a thread-safe post from
  // now on writes the wakeup, which makes that fd readable. The next
  // poll() (run_once's, with a zero timeout) resets it.
  sleeping_ = true;
  wake_sent_ = false;
  return timeout;
}

void Loop::end_external_wait() noexcept {
  std::lock_guard lock(inbox_mutex_);
  sleeping_ = wake_sent_ = false;
}

std::optional<TimePoint> Loop::next_timer_deadline() {
  const detail::TimerQueue::Entry* next = timers_.top();
  if (!next) return std::nullopt;
  return next->when;
}

void Loop::begin_external_run() {
  if (flags_.load(std::memory_order_relaxed) & kClosed) throw_closed();
  if (running_) throw RuntimeError("This event loop is already running");
  running_ = true;
  owner_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

void Loop::end_external_run() noexcept {
  running_ = false;
  owner_thread_.store(std::thread::id{}, std::memory_order_relaxed);
}

void Loop::push_timer(TimePoint when, detail::HandleNode* node) {
  node->is_timer = true;
  node->loop = this;
  node->when = when;
  try {
    timers_.push(when, node);
  } catch (...) {
    node->is_timer = false;
    detail::release_node(node);
    throw;
  }
}

void Loop::post_threadsafe(detail::HandleNode* node) {
  std::unique_lock lock(inbox_mutex_);
  if (inbox_closed_) {
    lock.unlock();
    detail::release_node(node);
    throw_closed();
  }
  if (inbox_tail_)
    inbox_tail_->next = node;
  else
    inbox_head_ = node;
  inbox_tail_ = node;
  flags_.fetch_or(kInboxPending, std::memory_order_release);
  // Coalesce: write to the wake primitive only if the loop is blocked in
  // its poll and nobody has woken it yet. Done under the lock so that
  // close() (which takes the lock) can never race with a wake() on a
  // backend it is about to destroy.
  if (sleeping_) wake_sleeper_locked();
}

void Loop::wake_sleeper_locked() noexcept {
  if (wake_sent_) return;  // at most one wake per sleep
  wake_sent_ = true;
  ++wakeups_;
  backend_->wake();
}

namespace {
// Idle nodes kept for posting threads, and how many a poster takes at once.
constexpr std::size_t kSpareNodes = 16384;
constexpr std::size_t kPosterBatch = 256;
}  // namespace

void Loop::refill_poster_cache_slow() noexcept {
  detail::HandleNode* batch = nullptr;
  {
    std::lock_guard lock(inbox_mutex_);
    if (!spare_) return;
    batch = spare_;
    detail::HandleNode* last = spare_;
    std::size_t n = 1;
    while (n < kPosterBatch && last->next) {
      last = last->next;
      ++n;
    }
    spare_ = last->next;
    spare_count_.fetch_sub(n, std::memory_order_relaxed);
    last->next = nullptr;
  }
  detail::give_pooled_nodes(batch);
}

void Loop::drain_inbox() {
  if (!(flags_.load(std::memory_order_acquire) & kInboxPending)) return;
  detail::HandleNode* node;
  // Idle nodes of this thread for the posters, taken before the lock.
  std::size_t extra_count = 0;
  detail::HandleNode* extra = nullptr;
  const std::size_t spare = spare_count_.load(std::memory_order_relaxed);  // a hint
  if (spare < kSpareNodes / 2) extra = detail::take_pooled_nodes(kSpareNodes - spare, extra_count);
  {
    std::lock_guard lock(inbox_mutex_);
    node = inbox_head_;
    inbox_head_ = inbox_tail_ = nullptr;
    flags_.fetch_and(static_cast<std::uint8_t>(~kInboxPending), std::memory_order_relaxed);
    if (extra && !inbox_closed_) {
      detail::HandleNode* last = extra;
      while (last->next) last = last->next;
      last->next = spare_;
      spare_ = extra;
      spare_count_.fetch_add(extra_count, std::memory_order_relaxed);
      extra = nullptr;
    }
  }
  if (extra) detail::give_pooled_nodes(extra);
  while (node) {
    detail::HandleNode* next = node->next;
    node->next = nullptr;
    push_ready(node);
    node = next;
  }
}

std::optional<Duration> Loop::poll_timeout() {
  if (stopping_ || !ready_.empty() || (flags_.load(std::memory_order_acquire) & kInboxPending)) return Duration::zero();
  const detail::TimerQueue::Entry* next = timers_.top();
  if (!next) return std::nullopt;
  // Saturated: a deadline near TimePoint::min() (call_at(TimePoint::min()),
  // call_later(-inf)) minus now would wrap round to a day-long wait for a
  // timer that is due; asyncio runs such a timer at once.
  const Duration until = saturating_sub(next->when, time());
  if (until <= Duration::zero()) return Duration::zero();
  return std::min(until, kMaxPollTimeout);
}

void Loop::poll(std::optional<Duration> timeout, std::vector<IoEvent>& events) {
  {
    // Under the lock: close() refuses to run while a poll (perhaps on a
    // driver's thread) is using the backend, and a post that arrives from
    // here on either sees sleeping_ and wakes us, or is seen here.
    std::lock_guard lock(inbox_mutex_);
    if (inbox_closed_) throw_closed();
    if (polling_) throw RuntimeError("poll(): another thread is already polling this loop's backend");
    polling_ = true;
    if (!timeout || *timeout > Duration::zero()) {
      if (inbox_head_ || wake_pending_)
        timeout = Duration::zero();
      else
        sleeping_ = true;
    }
    wake_pending_ = false;
  }
  struct Done {
    Loop& loop;
    ~Done() {
      std::lock_guard lock(loop.inbox_mutex_);
      loop.sleeping_ = loop.wake_sent_ = false;
      loop.polling_ = false;
    }
  };
  {
    Done done{*this};
    backend_->wait(timeout, events);
  }
}

void Loop::process_events(std::span<const IoEvent> events) {
  for (const IoEvent& event : events)
    if (event.target) event.target->on_event(*this, event);
}

void Loop::process_ready() { run_ready<false>(TimePoint{}); }

bool Loop::process_ready(TimePoint deadline) { return run_ready<true>(deadline); }

template <bool Budgeted>
bool Loop::run_ready(TimePoint deadline) {
  if (in_process_ready_) throw RuntimeError("process_ready() called from a callback: iterations cannot nest");
  if (flags_.load(std::memory_order_relaxed) & kClosed) throw_closed();
  RunningLoopScope running(this);
  ++iterations_;
  drain_inbox();

  // Due timers join the ready queue in deadline order. "Due" is
  // deadline <= now: asyncio's `when < now + clock_resolution` with a
  // resolution of one nanosecond, and never early on a coarser clock.
  if (!timers_.empty()) {  // the clock is read only when a timer may be due
    const TimePoint now = time();
    while (const detail::TimerQueue::Entry* next = timers_.top()) {
      if (next->when > now) break;
      push_ready(timers_.pop());
    }
  }

  // Run exactly the callbacks present now; later ones wait a turn. This is
  // the only place where callbacks are called, each in its own context
  // (tasks switch to theirs in TaskBase::step).
  in_process_ready_ = true;
  slice_end_requested_ = false;
  struct Reset {
    Loop& loop;
    detail::ContextState* outer_context;
    ~Reset() {
      loop.in_process_ready_ = false;
      loop.slice_end_requested_ = false;
      detail::t_context = outer_context;
      // A map a callback made is freed now.
      loop.use_callback_context();
    }
  } reset{*this, detail::t_context};
  detail::t_context = &callback_context_;
  const std::size_t ntodo_at_start = ready_.size();
  callbacks_since_poll_ += ntodo_at_start;
  [[maybe_unused]] bool ran_one = false;  // a slice always runs one callback (progress)
  for (std::size_t ntodo = ntodo_at_start; ntodo > 0; --ntodo) {
    if constexpr (Budgeted) {
      // A slice ends between callbacks: the rest stay at the head of the
      // queue, ahead of whatever the next call adds.
      if (ran_one && (slice_end_requested_ || (deadline != TimePoint::max() && time() >= deadline))) return false;
    }
    detail::ReadyEntry* entry = ready_.front();
    if (entry->ops) [[likely]] {
      if (entry->state == detail::EntryState::pending) {
        use_callback_context();
        run_entry(entry);
        if constexpr (Budgeted) ran_one = true;
      }
      ready_.pop();
    } else {
      detail::HandleNode* node = entry->node();  // the queue's reference passes to us
      ready_.pop();
      if (node->cancelled) {
        detail::release_node(node);
      } else {
        reset_callback_context(node->context);
        run_node(node);
        if constexpr (Budgeted) ran_one = true;
        // Back to the queue's context before the node (and perhaps the
        // last reference to its context) goes.
        reset_callback_context(ready_.read_context());
        detail::release_node(node);
      }
    }
  }
  return !(Budgeted && slice_end_requested_);
}


void Loop::reset_callback_context(detail::ContextMapNode* map) noexcept {
  // Repoint first, release after: values' destructors may read variables.
  detail::ContextMapNode* const owned = callback_context_.borrowed ? nullptr : callback_context_.map;
  callback_context_.map = map;
  callback_context_.borrowed = true;
  callback_context_.id = 0;
  detail::release(owned);
}

inline void Loop::run_entry(detail::ReadyEntry* entry) {
  entry->state = detail::EntryState::running;
  const TimePoint start = debug_ ? time() : TimePoint{};
  try {
    entry->ops->invoke(entry->storage());
  } catch (...) {
    report_callback_exception(detail::describe_entry(entry));
  }
  if (debug_) [[unlikely]]
    check_slow(start, entry, nullptr);
  if (entry->state == detail::EntryState::running) entry->state = detail::EntryState::done;
  if (entry->ops->destroy) entry->ops->destroy(entry->storage());  // captures die now
}

void Loop::run_node(detail::HandleNode* node) {
  node->running = true;
  const TimePoint start = debug_ ? time() : TimePoint{};
  try {
    node->callback();
  } catch (...) {
    report_callback_exception(detail::describe_node(node));
  }
  if (debug_) [[unlikely]]
    check_slow(start, nullptr, node);
  node->running = false;
  node->callback.reset();  // captures die now, even if a TimerHandle lives on
}

void Loop::report_callback_exception(std::string handle) {
  ExceptionContext context;
  context.exception = std::current_exception();
  context.message = "Exception in callback " + handle;
  context.handle = std::move(handle);
  call_exception_handler(context);
}

void Loop::check_slow(TimePoint start, detail::ReadyEntry* entry, detail::HandleNode* node) {
  Duration took = time() - start;
  if (took < slow_callback_duration_) return;
  std::string what = entry ? detail::describe_entry(entry) : detail::describe_node(node);
  log("Executing " + what + " took " + seconds(took) + " seconds");
}

void Loop::run_once() {
  // With callbacks ready the poll would be a zero-timeout one: it can only
  // collect I/O that is already pending. That costs a system call per
  // iteration (about 250 ns here), which dominated a chain of callbacks
  // each scheduling the next. So such a poll is skipped until
  // kIoPollInterval callbacks have run since the last one (Tokio's
  // event_interval: 61). I/O readiness is then seen at most that many
  // callbacks late; the order of everything that is not I/O is unchanged,
  // thread-safe posts and timers are still collected every iteration.
  if (!ready_.empty() && !stopping_ && callbacks_since_poll_ < kIoPollInterval) {
    process_ready();
    return;
  }
  const std::optional<Duration> timeout = poll_timeout();
  callbacks_since_poll_ = 0;
  std::vector<IoEvent>& events = events_scratch_;
  events.clear();
  poll(timeout, events);
  process_events(events);
  process_ready();
}

void Loop::check_can_run() const {
  if (flags_.load(std::memory_order_relaxed) & kClosed) throw_closed();
  if (running_) throw RuntimeError("This event loop is already running");
  if (const char* refusal = backend_->blocking_run_refusal()) throw RuntimeError(refusal);
}

void Loop::run_forever() {
  check_can_run();
  RunningLoopScope running(this);
  running_ = true;
  owner_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  struct Reset {
    Loop& loop;
    ~Reset() {
      loop.running_ = false;
      loop.stopping_ = false;
      loop.owner_thread_.store(std::thread::id{}, std::memory_order_relaxed);
    }
  } reset{*this};
  for (;;) {
    run_once();
    if (stopping_) break;
  }
}

void Loop::close() {
  if (is_running()) throw RuntimeError("Cannot close a running event loop");
  if (flags_.load(std::memory_order_relaxed) & kClosed) return;
  detail::HandleNode* inbox;
  {
    std::lock_guard lock(inbox_mutex_);
    if (polling_) throw RuntimeError("Cannot close the event loop while another thread polls it");
    // Other threads are refused from here on (a post racing with close
    // lands before this point or throws); the posts already in are dropped.
    inbox_closed_ = true;
    inbox = inbox_head_;
    inbox_head_ = inbox_tail_ = nullptr;
    detail::give_pooled_nodes(std::exchange(spare_, nullptr));
    spare_count_.store(0, std::memory_order_relaxed);
    flags_.fetch_and(static_cast<std::uint8_t>(~kInboxPending), std::memory_order_relaxed);
  }
  abandon_pending_tasks();
  // Drop everything pending. Destroying a callback may run destructors that
  // schedule more on this thread (asyncio would log an error from such a
  // __del__); those are dropped too, in further rounds, rather than thrown
  // out of a destructor. The loop is marked closed once a round finds
  // nothing, or after a bounded number of rounds.
  while (inbox) {
    detail::HandleNode* next = inbox->next;
    detail::release_node(inbox);
    inbox = next;
  }
  for (int round = 0; round < 16 && !(ready_.empty() && timers_.empty()); ++round) {
    ready_.clear();
    timers_.clear();
  }
  flags_.fetch_or(kClosed, std::memory_order_release);  // from here every call_soon* throws
  ready_.clear();
  timers_.clear();
  shutdown_services();
  ready_.clear();
  timers_.clear();
  backend_.reset();
}

void Loop::shutdown_services() noexcept {
  for (auto it = services_.rbegin(); it != services_.rend(); ++it) it->second->shutdown();
  while (!services_.empty()) services_.pop_back();
}

void Loop::abandon_pending_tasks() noexcept {
  // Tasks still pending when the loop closes can never finish: report and
  // destroy them (asyncio reports "Task was destroyed but it is pending!"
  // when such a task is garbage-collected). Collected first, with a
  // reference each, because destroying a frame releases other states.
  std::vector<detail::TaskBase*> pending;
  for (detail::FutureBase* s = registry_head_; s; s = s->registry_next_)
    if (s->is_task() && !s->done()) {
      s->retain();
      pending.push_back(static_cast<detail::TaskBase*>(s));
    }
  for (detail::TaskBase* task : pending) task->abandon();
  for (detail::TaskBase* task : pending) task->release();
  // Futures still pending can never complete now: drop their callbacks,
  // which also frees cycles through them (shield's inner and outer futures
  // hold each other that way; asyncio leaves such cycles to the GC).
  std::vector<detail::FutureBase*> waiting;
  for (detail::FutureBase* s = registry_head_; s; s = s->registry_next_)
    if (!s->done()) {
      s->retain();
      waiting.push_back(s);
    }
  for (detail::FutureBase* s : waiting) s->drop_callbacks();
  for (detail::FutureBase* s : waiting) s->release();
}

Backend& Loop::backend() {
  if (!backend_) throw_closed();
  return *backend_;
}

void Loop::set_log_sink(LogSink sink) { log_sink_ = std::move(sink); }

void Loop::log(std::string_view message) const {
  if (log_sink_) {
    log_sink_(message);
    return;
  }
  std::string line = "duet: ";
  line.append(message);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void Loop::default_exception_handler(const ExceptionContext& context) {
  std::string text = context.message.empty() ? "Unhandled exception in event loop" : context.message;
  if (!context.handle.empty() && context.message.find(context.handle) == std::string::npos)
    text += "\n  handle: " + context.handle;
  if (context.exception) text += "\n  exception: " + describe_exception(context.exception);
  if (context.original) {
    text += "\n  while handling: " + context.original->message;
    if (context.original->exception) text += "\n  original exception: " + describe_exception(context.original->exception);
  }
  log(text);
}

void Loop::call_exception_handler(const ExceptionContext& context) noexcept {
  try {
    if (!exception_handler_) {
      default_exception_handler(context);
      return;
    }
    try {
      exception_handler_(*this, context);
    } catch (...) {
      ExceptionContext failure;
      failure.message = "Unhandled error in exception handler";
      failure.exception = std::current_exception();
      failure.handle = context.handle;
      failure.original = &context;
      default_exception_handler(failure);
    }
  } catch (...) {
    // The log sink itself failed; there is nowhere left to report to.
  }
}

Loop::Statistics Loop::statistics() const {
  Statistics s;
  {
    std::lock_guard lock(inbox_mutex_);
    s.wakeups = wakeups_;
  }
  s.ready = ready_.size();
  s.timers = timers_.size();
  s.cancelled_timers = timers_.cancelled_count();
  s.iterations = iterations_;
  return s;
}

}  // namespace duet
