// duet/native/guest.hpp — running duet as a guest of someone else's event
// loop (Trio's start_guest_run; DESIGN.md, "Guest mode").
//
// Thread-based guest mode, for any host that offers a thread-safe "run this
// on your thread soon" (a GUI toolkit's invoke-later, a game loop's task
// queue, Node's uv_async, a Win32 PostMessage):
//
//   host thread                                backend thread
//   -----------                                --------------
//   start_guest_run: loop made, main created
//   first iteration (process_ready)
//   timeout = poll_timeout(); hand off  ---->  poll(timeout)  (blocks)
//   ...the host runs its own events...         ...returns with events
//                                     <----    run_on_host(iterate)
//   iterate: process_events, process_ready,
//   timeout = poll_timeout(); hand off  ---->  poll(timeout) ...
//
// The loop's state is touched on the host thread only (debug mode checks
// it); the backend thread only polls. A host callback that schedules work
// while the backend thread is blocked (call_soon, create_task, a future's
// result) wakes the poll (Loop::begin_foreign_poll); call_soon_threadsafe
// from any thread does too. With nothing to do the backend thread sleeps
// in its poll and the host sees no posts at all.
//
// When main finishes (result, exception or cancellation), the remaining
// tasks are cancelled and run to their end, the default executor is shut
// down (a helper thread waits for its jobs while the loop keeps iterating,
// so their results are delivered and the host is never blocked), the
// backend thread is joined, the loop is closed, and then `done` is called
// on the host thread with main's outcome. cancel() from the host
// cancels main (a window being closed). A GuestRun destroyed before the end
// (its host quit) stops the backend thread and closes the loop without
// waiting for the host; nothing is left running at exit.
//
// Signals are the host's: the guest installs no signal handler and takes
// no wakeup fd unless the program asks for one (add_signal_handler).
//
// Re-entrancy: a host that runs a nested event loop from inside a duet
// callback (a modal dialog) gets nothing from duet meanwhile (the backend
// thread waits for the hand-off that ends the iteration), so no nested
// iteration can start; what the host schedules meanwhile runs in the next
// iteration, and duet (timers included) is paused until the callback
// returns. An "iterate" that would arrive during an iteration anyway is
// deferred to its end, never nested. While the run lasts the loop counts
// as running: run_forever, run_until_complete and close() refuse.
//
// A GuestRun destroyed before the end joins its threads and the default
// executor's workers on the host thread: a job that waits for the host at
// that moment would deadlock (stop such jobs first).
//
// Embedded mode (hosts that poll fds themselves: GLib, libuv, Qt socket
// notifiers) needs no thread: see duet/native/glib.hpp, and EmbeddedLoop
// below for the three calls any such host needs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "duet/coro.hpp"
#include "duet/gather.hpp"
#include "duet/loop.hpp"
#include "duet/outcome.hpp"
#include "duet/task.hpp"

namespace duet::native {

struct GuestHost {
  /// Thread-safe: runs fn on the host's thread soon, in call order. Called
  /// from duet's backend thread.
  std::function<void(std::function<void()>)> run_on_host;
};

class GuestRun {
 public:
  GuestRun(const GuestRun&) = delete;
  GuestRun& operator=(const GuestRun&) = delete;
  /// Stops the backend thread and closes the loop if the run has not
  /// finished (the host quit without waiting); `done` is then not called.
  ~GuestRun();

  /// The guest's loop: usable from the host thread at once (time(),
  /// call_soon, create_task).
  Loop& loop() noexcept { return *loop_; }
  /// Cancels main (host thread); the run then finishes as usual.
  void cancel();
  /// The run has finished and `done` was called.
  bool finished() const noexcept { return finished_; }
  /// How many times the backend thread posted to the host (for tests: an
  /// idle guest posts nothing).
  std::uint64_t posts() const noexcept;

  // Implementation; use start_guest_run.
  struct Impl;
  GuestRun(std::unique_ptr<Loop> loop, GuestHost host);
  void start(TaskRef main, std::function<void()> on_done);

 private:
  void iterate();
  void hand_off();
  void finish();
  void backend_main();
  void stop_backend() noexcept;
  void deliver_leftover_events() noexcept;

  std::unique_ptr<Loop> loop_;
  GuestHost host_;
  TaskRef main_;
  std::function<void()> on_done_;
  std::shared_ptr<Impl> impl_;
  bool finished_ = false;
  bool in_iteration_ = false;
  bool iterate_again_ = false;
  bool shutting_down_ = false;
  bool executor_drain_started_ = false;
  bool executor_drained_ = false;
};

/// Starts `main` as a guest of the host's loop and returns at once; `done`
/// gets main's outcome on the host thread when the run has finished.
template <class T>
std::unique_ptr<GuestRun> start_guest_run(Coro<T> main, GuestHost host, std::function<void(Outcome<T>)> done,
                                          LoopOptions options = {});

/// The three calls a host that polls fds itself needs (embedded mode):
/// watch fd() for readability, wake up after timeout() at the latest, and
/// call run_once() whenever either happens. No thread; everything runs on
/// the host's thread.
class EmbeddedLoop {
 public:
  explicit EmbeddedLoop(Loop& loop);
  /// An fd readable whenever the loop has I/O events or was woken (epoll's
  /// own fd, kqueue's); -1 if the backend has none (poll).
  int fd() const noexcept { return fd_; }
  /// How long the host may wait before calling run_once(): zero when
  /// callbacks are ready, nullopt when only I/O or a wakeup can bring work.
  /// Call it right before waiting: until the next run_once(), a
  /// call_soon_threadsafe from any thread makes fd() readable.
  std::optional<Duration> timeout() { return loop_.prepare_external_wait(); }
  /// One iteration that does not block: poll(0), process_events,
  /// process_ready.
  void run_once();

 private:
  Loop& loop_;
  int fd_;
  std::vector<IoEvent> events_;
};

// ---- implementation of the template ---------------------------------------------------

std::unique_ptr<Loop> new_guest_loop(LoopOptions options);

template <class T>
std::unique_ptr<GuestRun> start_guest_run(Coro<T> main, GuestHost host, std::function<void(Outcome<T>)> done,
                                          LoopOptions options) {
  if (!host.run_on_host) throw ValueError("start_guest_run: the host has no run_on_host");
  if (!done) throw ValueError("start_guest_run: no done callback");
  auto run = std::make_unique<GuestRun>(new_guest_loop(options), std::move(host));
  Task<T> task = run->loop().create_task(std::move(main), "main");
  run->start(task.ref(), [task, done = std::move(done)]() mutable { done(duet::detail::take_outcome<T>(task)); });
  return run;
}

}  // namespace duet::native
