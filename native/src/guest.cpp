#include "duet/native/guest.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "duet/native/event_loop.hpp"
#include "duet/native/executor.hpp"
#include "duet/platform/readiness_backend.hpp"

namespace duet::native {

// What the backend thread and the host thread share. Held by shared_ptr:
// a post still queued in the host's loop when the GuestRun is gone finds
// `run` cleared (both are touched on the host thread only).
struct GuestRun::Impl {
  GuestRun* run = nullptr;  // host thread only
  std::mutex mutex;
  std::condition_variable handed_off;
  bool has_timeout = false;  // a poll was handed off and not yet taken
  std::optional<Duration> timeout;
  bool quit = false;
  std::vector<IoEvent> events;  // written by the backend thread before it posts
  std::exception_ptr poll_error;
  std::atomic<std::uint64_t> posts{0};
  std::thread thread;
  std::thread drainer;  // joins the default executor's workers at the end
};

std::unique_ptr<Loop> new_guest_loop(LoopOptions options) {
  return new_event_loop(options);
}

GuestRun::GuestRun(std::unique_ptr<Loop> loop, GuestHost host)
    : loop_(std::move(loop)), host_(std::move(host)), impl_(std::make_shared<Impl>()) {
  impl_->run = this;
  // Running from now on, on the host's thread: run_forever or
  // run_until_complete from a host callback would poll the backend a second
  // time, and close() would free it under the backend thread; both refuse.
  loop_->begin_external_run();
}

GuestRun::~GuestRun() {
  impl_->run = nullptr;
  if (finished_) return;
  stop_backend();
  if (!loop_->is_closed()) {
    deliver_leftover_events();
    loop_->end_foreign_poll();
    loop_->end_external_run();
    loop_->close();
  }
}

std::uint64_t GuestRun::posts() const noexcept {
  return impl_->posts.load(std::memory_order_relaxed);
}

void GuestRun::start(TaskRef main, std::function<void()> on_done) {
  main_ = std::move(main);
  on_done_ = std::move(on_done);
  impl_->thread = std::thread([impl = impl_, this] { backend_main(); });
  // The first iteration runs when the host first calls back: main's first
  // step is ready, so this hand-off polls with a zero timeout and posts.
  hand_off();
}

void GuestRun::backend_main() {
  Impl& impl = *impl_;
  for (;;) {
    std::optional<Duration> timeout;
    {
      std::unique_lock lock(impl.mutex);
      impl.handed_off.wait(lock, [&] { return impl.has_timeout || impl.quit; });
      if (impl.quit) return;
      impl.has_timeout = false;
      timeout = impl.timeout;
    }
    impl.events.clear();
    try {
      loop_->poll(timeout, impl.events);
    } catch (...) {
      impl.poll_error = std::current_exception();
    }
    {
      std::lock_guard lock(impl.mutex);
      if (impl.quit) return;
    }
    impl.posts.fetch_add(1, std::memory_order_relaxed);
    host_.run_on_host([state = impl_] {
      if (state->run) state->run->iterate();
    });
  }
}

void GuestRun::hand_off() {
  const std::optional<Duration> timeout = loop_->poll_timeout();
  loop_->begin_foreign_poll();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->timeout = timeout;
    impl_->has_timeout = true;
  }
  impl_->handed_off.notify_one();
}

void GuestRun::iterate() {
  if (finished_) return;
  if (in_iteration_) {
    // A host running a nested event loop from inside a duet callback
    // delivered this: never nest, run it when the current one ends.
    iterate_again_ = true;
    return;
  }
  in_iteration_ = true;
  loop_->end_foreign_poll();
  if (std::exception_ptr error = std::exchange(impl_->poll_error, nullptr)) {
    ExceptionContext context;
    context.message = "the guest loop's backend failed to poll; cancelling main";
    context.exception = error;
    loop_->call_exception_handler(context);
    if (!main_.done()) main_.cancel();
  }
  try {
    do {
      iterate_again_ = false;
      loop_->process_events(impl_->events);
      impl_->events.clear();
      loop_->process_ready();
    } while (iterate_again_);
  } catch (...) {
    // Only misuse gets here (callbacks' exceptions go to the handler):
    // report it and keep the run going; nothing may unwind into the host.
    impl_->events.clear();
    ExceptionContext context;
    context.message = "guest iteration failed";
    context.exception = std::current_exception();
    loop_->call_exception_handler(context);
  }
  in_iteration_ = false;

  if (main_.done()) {
    // asyncio.run's end: every task still pending is cancelled and allowed
    // to finish; a task created meanwhile (by a cleanup) is cancelled too.
    shutting_down_ = true;
    for (duet::detail::TaskBase* task : loop_->pending_tasks())
      if (task->cancelling() == 0) task->cancel({});
    if (loop_->pending_task_count() == 0) {
      // The default executor's jobs still running finish first, waited for
      // by a helper thread, while iterations deliver their results.
      ThreadPoolExecutor* executor = find_default_executor(*loop_);
      if (!executor || executor_drained_) {
        finish();
        return;
      }
      if (!executor_drain_started_) {
        executor_drain_started_ = true;
        try {
          impl_->drainer = std::thread([executor, loop = loop_.get(), state = impl_] {
            executor->shutdown(true);
            loop->call_soon_threadsafe([state] {
              if (state->run) state->run->executor_drained_ = true;
            });
          });
        } catch (...) {
          executor_drained_ = true;  // no thread: close() joins the workers
        }
      }
    }
  }
  hand_off();
}

void GuestRun::cancel() {
  if (!finished_ && !main_.done()) main_.cancel();  // wakes the poll (begin_foreign_poll)
}

void GuestRun::stop_backend() noexcept {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->quit = true;
  }
  impl_->handed_off.notify_one();
  try {
    if (!loop_->is_closed()) loop_->backend().wake();
  } catch (...) {
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->drainer.joinable()) impl_->drainer.join();
}

void GuestRun::deliver_leftover_events() noexcept {
  // What the backend thread's last poll took and no iteration processed: a
  // completion backend (IOCP) reports each completion once, so dropping it
  // would leave its operation in flight for ever. Delivered before the
  // loop closes; the thread is joined, so the events are ours.
  try {
    loop_->process_events(impl_->events);
  } catch (...) {
    // Misuse only (see iterate()); the loop is closing anyway.
  }
  impl_->events.clear();
}

void GuestRun::finish() {
  finished_ = true;
  stop_backend();
  deliver_leftover_events();
  loop_->end_foreign_poll();
  loop_->end_external_run();
  loop_->close();  // the default executor was drained above
  // Moved out first: `done` may destroy this GuestRun.
  std::function<void()> done = std::move(on_done_);
  Loop* loop = loop_.get();
  try {
    if (done) done();
  } catch (...) {
    // Nothing may unwind into the host's loop (GLib is C).
    ExceptionContext context;
    context.message = "the guest run's done callback threw";
    context.exception = std::current_exception();
    loop->call_exception_handler(context);
  }
}

// ---- embedded mode ------------------------------------------------------------------------

EmbeddedLoop::EmbeddedLoop(Loop& loop) : loop_(loop), fd_(-1) {
  if (auto* readiness = dynamic_cast<platform::ReadinessBackend*>(&loop.backend())) fd_ = readiness->pollable_fd();
}

void EmbeddedLoop::run_once() {
  events_.clear();
  loop_.poll(Duration::zero(), events_);
  loop_.process_events(events_);
  loop_.process_ready();
}

}  // namespace duet::native
