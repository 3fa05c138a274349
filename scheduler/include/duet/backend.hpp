// duet/backend.hpp — the contract between the loop and an I/O backend.
//
// A backend does phase 3 of an iteration and nothing else: it waits, for at
// most the loop's timeout, until something happens, and reports what
// happened as Events. It never runs user code and never touches the loop.
// Whatever it reports, process_events() hands to the EventTarget that was
// registered for it, and that target schedules work with call_soon — the
// callbacks then run in process_ready, like every other callback
// (asyncio's _process_events does the same).
//
// The whole contract, which every backend (epoll, poll, kqueue, IOCP, the
// web driver's, the fake one in tests) honours:
//
//   wait(timeout, out)  Blocks until an event is ready, wake() is called, or
//                       `timeout` has passed (nullopt: no limit), then
//                       appends the ready events to `out`. The timeout is
//                       rounded *up* to the backend's own granularity, so a
//                       wait never ends before the deadline the loop asked
//                       for (a timer that wakes the loop early makes it spin;
//                       asyncio and uvloop both shipped that bug). Called by
//                       one thread at a time, not necessarily the loop's.
//   wake()              From any thread: makes the wait in progress, or the
//                       next one if none is, return promptly. The loop
//                       coalesces calls, so a backend need not.
//   name()              For diagnostics.
//
// How events are registered differs by model (readiness: an fd and an
// interest; completion: an operation submitted) and so is not part of this
// interface; the layers that own fds or operations talk to their concrete
// backend. What comes back is the same shape for both models.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "duet/time.hpp"

namespace duet {

class Loop;
struct IoEvent;

/// Whoever registered an fd or submitted an operation. on_event runs in
/// process_events on the loop's thread and must only schedule work.
class EventTarget {
 public:
  virtual void on_event(Loop& loop, const IoEvent& event) = 0;

 protected:
  ~EventTarget() = default;
};

/// One thing a backend saw happen.
struct IoEvent {
  EventTarget* target = nullptr;
  std::uint32_t flags = 0;   // readiness: readable/writable/error bits
  std::int64_t result = 0;   // completion: bytes transferred, or -error
};

namespace event_flags {
inline constexpr std::uint32_t readable = 1u << 0;
inline constexpr std::uint32_t writable = 1u << 1;
inline constexpr std::uint32_t error = 1u << 2;
inline constexpr std::uint32_t hangup = 1u << 3;
}  // namespace event_flags

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) = 0;
  virtual void wake() noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
  /// Non-null when a blocking run (run_forever, run_until_complete) cannot
  /// work on this thread with this backend — the browser's main thread,
  /// which must never block: the reason and what to use instead, raised by
  /// run_forever() and run_until_complete() (Loop::check_can_run) as a
  /// RuntimeError before anything runs or is scheduled. run_once() is not
  /// checked: a web backend's wait() refuses to block by itself.
  virtual const char* blocking_run_refusal() const noexcept { return nullptr; }
};

}  // namespace duet
