// The epoll backend.
//
// Some facts about epoll that shape this file:
//  * epoll_wait takes milliseconds. The loop's timeout is nanoseconds, so it
//    is rounded *up*: rounding down would return before the earliest timer
//    is due, the loop would find nothing to run, and it would spin through
//    zero-timeout polls until the deadline (asyncio bpo-20311, uvloop #189).
//  * A signal interrupts epoll_wait with EINTR even with SA_RESTART. The
//    wait is retried with what is left of the timeout, measured on the
//    monotonic clock, so an interrupted wait neither ends early nor restarts
//    the full timeout.
//  * The wakeup is an eventfd in the interest set. wake() adds 1 to its
//    counter (one write(2), async-signal-safe); the counter saturating is
//    impossible in practice (2^64-2 pending wakes) and EAGAIN would mean it
//    is already readable, which is all a wake needs. When it fires, wait()
//    drains it with one read and reports nothing: the loop only needs to
//    return from the wait. The loop coalesces wakes, so most iterations see
//    no wake at all.
//  * Events carry the EventTarget pointer in epoll_data.ptr; the eventfd's
//    slot holds nullptr, which no target can be.
//  * Level-triggered, as selectors.EpollSelector: the fd table above keeps
//    the interest of a stream registered while it reads, so a steady
//    stream costs no epoll_ctl per read.
//  * epoll forgets an fd by itself when its last descriptor is closed. An
//    fd closed without unwatch() leaves watched_ stale; a later ADD of the
//    same number then meets no entry and a MOD gets ENOENT, so MOD falls
//    back to ADD and ADD to MOD on EEXIST.
#include "duet/platform/epoll_backend.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "duet/errors.hpp"

namespace duet::platform {
namespace {

constexpr int kMaxEventsPerWait = 256;
// The longest wait epoll_wait can express (INT_MAX ms, about 24.8 days).
// A longer timeout (a driver may pass Duration::max() to Loop::poll) is cut
// to it first, so that the retry deadline below cannot overflow; the loop
// itself never asks for more than Loop::kMaxPollTimeout.
constexpr Duration kMaxTimeout = std::chrono::milliseconds(0x7fffffff);

int to_epoll_timeout(std::optional<Duration> timeout) {
  if (!timeout) return -1;
  if (timeout->count() <= 0) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(std::min(*timeout, kMaxTimeout)).count();
  return static_cast<int>(ms);
}

std::uint32_t to_epoll(std::uint32_t interest) {
  std::uint32_t events = 0;
  if (interest & event_flags::readable) events |= EPOLLIN;
  if (interest & event_flags::writable) events |= EPOLLOUT;
  return events;
}

std::uint32_t to_flags(std::uint32_t epoll_events) {
  std::uint32_t flags = 0;
  if (epoll_events & EPOLLIN) flags |= event_flags::readable;
  if (epoll_events & EPOLLOUT) flags |= event_flags::writable;
  if (epoll_events & EPOLLERR) flags |= event_flags::error;
  if (epoll_events & EPOLLHUP) flags |= event_flags::hangup;
  return flags;
}

}  // namespace

EpollBackend::EpollBackend() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int saved = errno;
    ::close(epoll_fd_);
    errno = saved;
    throw_errno("eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) {
    int saved = errno;
    ::close(wake_fd_);
    ::close(epoll_fd_);
    errno = saved;
    throw_errno("epoll_ctl(ADD, eventfd)");
  }
}

EpollBackend::~EpollBackend() {
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void EpollBackend::wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) {
  using clock = std::chrono::steady_clock;
  if (timeout && *timeout > kMaxTimeout) timeout = kMaxTimeout;
  const auto deadline = timeout ? clock::now() + *timeout : clock::time_point::max();
  epoll_event events[kMaxEventsPerWait];
  int n;
  for (;;) {
    n = ::epoll_wait(epoll_fd_, events, kMaxEventsPerWait, to_epoll_timeout(timeout));
    if (n >= 0) break;
    if (errno != EINTR) throw_errno("epoll_wait");
    if (timeout) {
      auto left = deadline - clock::now();
      timeout = left > clock::duration::zero() ? std::chrono::duration_cast<Duration>(left) : Duration::zero();
    }
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      std::uint64_t count;
      // Non-blocking; EAGAIN means another wait already drained it.
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
      continue;
    }
    out.push_back(IoEvent{static_cast<EventTarget*>(events[i].data.ptr), to_flags(events[i].events), 0});
  }
}

void EpollBackend::watch(int fd, std::uint32_t interest, EventTarget* target) {
  if (interest == 0) return unwatch(fd);
  if (fd < 0)
    throw_os_error(std::make_error_code(std::errc::bad_file_descriptor), "epoll: watch fd " + std::to_string(fd));
  const auto index = static_cast<std::size_t>(fd);
  if (index >= watched_.size()) watched_.resize(index + 1);
  epoll_event ev{};
  ev.events = to_epoll(interest);
  ev.data.ptr = target;
  int op = watched_[index] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (::epoll_ctl(epoll_fd_, op, fd, &ev) < 0) {
    const int first = errno;
    if ((op == EPOLL_CTL_MOD && first == ENOENT) || (op == EPOLL_CTL_ADD && first == EEXIST)) {
      op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
      if (::epoll_ctl(epoll_fd_, op, fd, &ev) == 0) {
        watched_[index] = true;
        return;
      }
    }
    const int err = errno;
    throw_os_error(
        std::error_code(err, std::generic_category()),
        std::string(op == EPOLL_CTL_ADD ? "epoll_ctl(ADD, fd " : "epoll_ctl(MOD, fd ") + std::to_string(fd) + ")");
  }
  watched_[index] = true;
}

void EpollBackend::unwatch(int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= watched_.size() || !watched_[fd]) return;
  watched_[fd] = false;
  // ENOENT/EBADF: the fd was closed first and epoll already forgot it.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EpollBackend::wake() noexcept {
  const std::uint64_t one = 1;
  for (;;) {
    if (::write(wake_fd_, &one, sizeof one) >= 0 || errno != EINTR) return;
  }
}

}  // namespace duet::platform
