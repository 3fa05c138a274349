// duet/platform/readiness_backend.hpp — the interface of the readiness
// backends (epoll, poll, kqueue): the Backend contract plus interest in fds.
//
// The layer above (native/'s fd table) registers each fd with the one
// EventTarget that owns it and the set of readiness it waits for; wait()
// then reports IoEvents {target, flags} for the fds that are ready, level-
// triggered (an fd that stays readable is reported by every wait, as
// selectors do), so a reader that leaves bytes unread is told again.
//
//   watch(fd, interest, target)  interest = event_flags::readable and/or
//                                writable: registers the fd or replaces its
//                                interest and target. interest 0 is the same
//                                as unwatch(fd). Throws OSError naming the fd
//                                for a closed or invalid fd ("epoll_ctl(ADD,
//                                fd 42): Bad file descriptor").
//   unwatch(fd)                  forgets the fd; never throws, and is a no-op
//                                for an fd not watched. Call it *before*
//                                closing the fd: a closed fd's number may be
//                                reused at once.
//
// error and hangup are reported whatever the interest, as poll(2) does.
// A report may still arrive for an fd unwatched after the wait began (guest
// mode polls on another thread); a target must treat readiness as a hint
// and try the operation, as non-blocking code does anyway.
//
// All three may be called from the loop's thread while another thread is
// blocked in wait() (guest mode): epoll and kqueue apply the change to the
// kernel's set at once; poll wakes the wait so it re-reads its set.
#pragma once

#include <cstdint>

#include "duet/backend.hpp"

namespace duet::platform {

class ReadinessBackend : public Backend {
 public:
  virtual void watch(int fd, std::uint32_t interest, EventTarget* target) = 0;
  virtual void unwatch(int fd) noexcept = 0;
  /// An fd that is readable whenever wait() would not block (epoll's and
  /// kqueue's own fd), for hosts that poll fds (embedded mode); -1 when the
  /// backend has none (poll).
  virtual int pollable_fd() const noexcept { return -1; }
};

}  // namespace duet::platform
