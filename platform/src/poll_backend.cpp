// The poll backend: the portable POSIX fallback (DUET_BACKEND=poll).
//
// Some facts about poll that shape this file:
//  * poll takes milliseconds, as an int. The loop's timeout is nanoseconds,
//    so it is rounded *up*, as in the epoll backend (rounding down would
//    wake the loop before its earliest timer and make it spin). A timeout
//    beyond INT_MAX ms (24.8 days) is clamped; a poll that comes back empty
//    before the deadline, which only the clamp should cause, polls again
//    with what is left, so the wait never ends early whatever the kernel
//    does.
//  * A signal interrupts poll with EINTR even with SA_RESTART (signal(7):
//    poll is never restarted). The wait is retried with what is left of the
//    timeout, measured on the monotonic clock.
//  * The whole set is handed to the kernel on every call: a wait costs
//    O(watched fds), which is why poll is the fallback. The set is a
//    vector<pollfd> with an index by fd, so watch and unwatch are O(1).
//  * poll reports POLLERR, POLLHUP and POLLNVAL whatever `events` asks for;
//    they become error, hangup and error. POLLNVAL (the fd is not open) only
//    comes at wait time, so watch() checks the fd with fcntl(F_GETFD) first
//    and throws as epoll_ctl would. An fd closed while watched is reported
//    as an error to its target by every wait until it is unwatched.
//  * The wakeup is a self-pipe whose read end sits in slot 0 of the set.
//    wake() sets woken_ and writes one byte: a lock-free atomic store and
//    write(2) are both async-signal-safe. EAGAIN means the pipe is full,
//    so already readable, which is all a wake needs. When the pipe fires,
//    wait() drains it and reports nothing for it.
//  * Guest mode calls watch/unwatch on the loop's thread while another
//    thread is blocked in wait(). Unlike epoll's, the set is not in the
//    kernel, so:
//      - mutex_ guards the set. wait() copies it (polled_) under the lock
//        and polls the copy without it, so a change never waits for a poll.
//      - a change made while a wait polls an older copy writes to the pipe
//        (once per poll; see WaitState). The wait finds the pipe readable
//        with woken_ unset, takes a fresh copy and polls again with the time
//        left: an fd watched during a wait is reported by that wait, and an
//        fd unwatched during it leaves the kernel's poll at once (Linux's
//        poll holds a reference to every file it waits on, so a socket
//        closed after unwatch() would otherwise stay open, its FIN unsent,
//        until the wait ended).
//      - with no wait in progress a change writes nothing: the single-
//        threaded loop pays no wakeup for its watch/unwatch calls.
//      - revents are reported to the fd's target as the set is when the poll
//        returns, masked by its interest then; an fd unwatched meanwhile is
//        dropped. A report can still be stale by the time its target runs.
#include "duet/platform/poll_backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

#include "duet/errors.hpp"

// pipe2(2) sets O_CLOEXEC and O_NONBLOCK atomically; pipe + fcntl leaves a
// window in which a fork+exec on another thread inherits the fds. macOS
// has no pipe2.
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#define DUET_POLL_HAVE_PIPE2 1
#endif

namespace duet::platform {
namespace {

using clock = std::chrono::steady_clock;

/// Both ends close-on-exec and non-blocking, without pipe2.
[[maybe_unused]] int make_pipe_with_fcntl(int fds[2]) {
  if (::pipe(fds) < 0) return -1;
  for (int i = 0; i < 2; ++i) {
    const int fl = ::fcntl(fds[i], F_GETFL);
    if (::fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 || fl < 0 || ::fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0) {
      const int saved = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      errno = saved;
      return -1;
    }
  }
  return 0;
}

int make_pipe(int fds[2]) {
#ifdef DUET_POLL_HAVE_PIPE2
  return ::pipe2(fds, O_CLOEXEC | O_NONBLOCK);
#else
  return make_pipe_with_fcntl(fds);
#endif
}

/// One byte into the self-pipe; async-signal-safe.
void write_byte(int fd) noexcept {
  const char byte = 0;
  for (;;) {
    if (::write(fd, &byte, 1) >= 0 || errno != EINTR) return;
  }
}

/// Empties the non-blocking self-pipe.
void drain(int fd) noexcept {
  char buf[64];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r == static_cast<ssize_t>(sizeof buf) || (r < 0 && errno == EINTR)) continue;
    return;  // emptied: a short read, or EAGAIN
  }
}

/// The end of a wait of `timeout` starting now; nullopt for no limit.
/// Saturates instead of overflowing for a timeout like Duration::max().
std::optional<clock::time_point> deadline_after(std::optional<Duration> timeout) {
  if (!timeout) return std::nullopt;
  const auto now = clock::now();
  if (*timeout <= Duration::zero()) return now;
  if (*timeout >= clock::time_point::max() - now) return clock::time_point::max();
  return now + std::chrono::ceil<clock::duration>(*timeout);
}

int to_poll_timeout(std::optional<clock::time_point> deadline) {
  if (!deadline) return -1;
  const auto left = *deadline - clock::now();
  if (left <= clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  constexpr std::int64_t kMaxMs = 0x7fffffff;
  return static_cast<int>(ms < kMaxMs ? ms : kMaxMs);
}

short to_poll(std::uint32_t interest) {
  short events = 0;
  if (interest & event_flags::readable) events |= POLLIN;
  if (interest & event_flags::writable) events |= POLLOUT;
  return events;
}

std::uint32_t to_flags(short revents) {
  std::uint32_t flags = 0;
  if (revents & POLLIN) flags |= event_flags::readable;
  if (revents & POLLOUT) flags |= event_flags::writable;
  if (revents & (POLLERR | POLLNVAL)) flags |= event_flags::error;
  if (revents & POLLHUP) flags |= event_flags::hangup;
  return flags;
}

}  // namespace

PollBackend::PollBackend() {
  // Reserved first so that registering the pipe cannot throw and leak it.
  slots_.reserve(16);
  targets_.reserve(16);
  int fds[2];
  if (make_pipe(fds) < 0) throw_errno("pipe");
  pipe_read_ = fds[0];
  pipe_write_ = fds[1];
  slots_.push_back(pollfd{pipe_read_, POLLIN, 0});
  targets_.push_back(nullptr);
}

PollBackend::~PollBackend() {
  ::close(pipe_write_);
  ::close(pipe_read_);
}

void PollBackend::wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) {
  const auto deadline = deadline_after(timeout);
  std::unique_lock lock(mutex_);
  for (;;) {
    copy_set_locked();
    lock.unlock();
    const int n = ::poll(polled_.data(), static_cast<nfds_t>(polled_.size()), to_poll_timeout(deadline));
    const int err = errno;
    lock.lock();
    state_ = WaitState::idle;
    if (n < 0 && err != EINTR) {
      errno = err;
      throw_errno("poll");
    }
    if (n > 0 && collect_locked(out)) return;
    // Nothing to report: EINTR, an interrupt by watch/unwatch, or a poll
    // that ended early. Poll again with what is left.
    if (deadline && clock::now() >= *deadline) return;
  }
}

void PollBackend::copy_set_locked() {
  polled_ = slots_;
  state_ = WaitState::polling;
}

bool PollBackend::collect_locked(std::vector<IoEvent>& out) {
  bool woken = false;
  if (polled_[0].revents != 0) {
    drain(pipe_read_);
    // wake() sets woken_ before it writes, so a byte drained here that came
    // from wake() has set it; one that came from a change has not.
    woken = woken_.exchange(false);
  }
  const std::size_t before = out.size();
  for (std::size_t i = 1; i < polled_.size(); ++i) {
    if (polled_[i].revents == 0) continue;
    const auto fd = static_cast<std::size_t>(polled_[i].fd);
    const int slot = fd < slot_by_fd_.size() ? slot_by_fd_[fd] : -1;
    if (slot < 0) continue;  // unwatched since the copy
    const std::uint32_t wanted = to_flags(slots_[slot].events) | event_flags::error | event_flags::hangup;
    const std::uint32_t flags = to_flags(polled_[i].revents) & wanted;
    if (flags != 0) out.push_back(IoEvent{targets_[slot], flags, 0});
  }
  return woken || out.size() > before;
}

void PollBackend::watch(int fd, std::uint32_t interest, EventTarget* target) {
  if (interest == 0) return unwatch(fd);
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
    const int err = fd < 0 ? EBADF : errno;
    throw_os_error(std::error_code(err, std::generic_category()), "poll: watch fd " + std::to_string(fd));
  }
  const short events = to_poll(interest);
  std::lock_guard lock(mutex_);
  const auto index = static_cast<std::size_t>(fd);
  if (index >= slot_by_fd_.size()) slot_by_fd_.resize(index + 1, -1);
  if (const int slot = slot_by_fd_[index]; slot >= 0) {
    // The target is read when events are reported, so only a change of
    // interest concerns a poll in progress.
    targets_[slot] = target;
    if (slots_[slot].events == events) return;
    slots_[slot].events = events;
  } else {
    slots_.reserve(slots_.size() + 1);
    targets_.reserve(targets_.size() + 1);
    slot_by_fd_[index] = static_cast<int>(slots_.size());
    slots_.push_back(pollfd{fd, events, 0});
    targets_.push_back(target);
  }
  note_change_locked();
}

void PollBackend::unwatch(int fd) noexcept {
  std::lock_guard lock(mutex_);
  const auto index = static_cast<std::size_t>(fd);
  if (fd < 0 || index >= slot_by_fd_.size() || slot_by_fd_[index] < 0) return;
  const auto slot = static_cast<std::size_t>(slot_by_fd_[index]);
  const std::size_t last = slots_.size() - 1;
  assert(slot >= 1 && slot <= last && slots_[slot].fd == fd);
  if (slot != last) {
    slots_[slot] = slots_[last];
    targets_[slot] = targets_[last];
    slot_by_fd_[static_cast<std::size_t>(slots_[slot].fd)] = static_cast<int>(slot);
  }
  slots_.pop_back();
  targets_.pop_back();
  slot_by_fd_[index] = -1;
  note_change_locked();
}

void PollBackend::note_change_locked() noexcept {
  assert(slots_.size() == targets_.size() && slots_[0].fd == pipe_read_);
  if (state_ != WaitState::polling) return;
  state_ = WaitState::interrupted;
  write_byte(pipe_write_);
}

void PollBackend::wake() noexcept {
  woken_.store(true);
  write_byte(pipe_write_);
}

}  // namespace duet::platform
