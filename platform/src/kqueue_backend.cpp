// The kqueue backend (macOS, FreeBSD, DragonFly, NetBSD 10).
//
// Untested here: no BSD or macOS machine was available. It was written
// against the kqueue(2) man pages of FreeBSD and macOS, kept parallel to
// epoll_backend.cpp, and only checked to compile against a stand-in
// <sys/event.h>; the readiness tests (tests/platform/
// readiness_backend_test.cpp) run it as the "best" backend on those systems.
//
// Some facts about kqueue that shape this file:
//  * kevent takes a struct timespec, nanoseconds like the loop's own
//    timeout, so unlike epoll's milliseconds it needs no rounding up. It is
//    clamped at INT32_MAX seconds (68 years): time_t is 32 bits on some BSD
//    ports, and FreeBSD treats longer timeouts as infinite anyway.
//  * A signal interrupts kevent with EINTR, which is never restarted. The
//    wait is retried with what is left of the timeout, measured on the
//    monotonic clock, as in the epoll backend.
//  * Interest is per (fd, filter): EVFILT_READ and EVFILT_WRITE are
//    separate registrations. watch() sends one change per filter in one
//    kevent call: EV_ADD for a wanted filter (which also replaces the udata
//    of one already there) and EV_DELETE for the other, whose ENOENT, when
//    that filter was not registered, is expected and ignored. So there is
//    no table of watched fds, unlike epoll's watched_.
//  * EV_RECEIPT on each change makes kevent return one result per change
//    (EV_ERROR set, data = 0 or the errno) instead of stopping at the first
//    error, and a call that returns receipts dequeues no pending event.
//  * The kernel drops an fd's registrations when the fd is closed, so
//    unwatch() of an fd closed first meets EBADF or ENOENT, ignored.
//  * Level-triggered (no EV_CLEAR on the fd filters), as
//    selectors.KqueueSelector: an fd that stays readable is reported again.
//  * An event names one filter, so an fd watched for both directions may
//    give two IoEvents in one wait, one readable, one writable; the contract
//    allows it. EV_EOF (the peer closed, or the read or write side shut
//    down) is reported as hangup, and as error too when fflags holds the
//    socket's error. EV_ERROR, seen only for a failed change, is an error.
//  * Events carry the EventTarget pointer in udata (void* on macOS and
//    FreeBSD, intptr_t on older NetBSD: hence the casts through Udata).
//  * The wakeup is an EVFILT_USER event, ident 0, registered with EV_CLEAR.
//    wake() triggers it with NOTE_TRIGGER: one kevent call, a plain system
//    call (kevent is not on POSIX's async-signal-safe list only because it
//    is not POSIX). EV_CLEAR resets it as wait() receives it, so there is
//    nothing to drain, and wait() reports nothing for it. EVFILT_USER needs
//    macOS 10.6, FreeBSD 8.1 or NetBSD 10; OpenBSD lacks it.
//  * A kqueue is not inherited by a fork()ed child; FD_CLOEXEC keeps it
//    from a program exec'd without a fork too.
#include "duet/platform/kqueue_backend.hpp"

#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

#include "duet/errors.hpp"

namespace duet::platform {
namespace {

constexpr int kMaxEventsPerWait = 256;
constexpr Duration kMaxTimeout = std::chrono::seconds(0x7fffffff);

using Udata = decltype(std::declval<struct kevent>().udata);

[[noreturn]] void throw_watch_error(int err, int fd) {
  throw_os_error(std::error_code(err, std::generic_category()), "kqueue: watch fd " + std::to_string(fd));
}

const timespec* to_timespec(std::optional<Duration> timeout, timespec& ts) {
  if (!timeout) return nullptr;
  const std::int64_t ns = timeout->count() > 0 ? timeout->count() : 0;
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return &ts;
}

std::uint32_t to_flags(const struct kevent& ev) {
  if (ev.flags & EV_ERROR) return event_flags::error;
  std::uint32_t flags = 0;
  if (ev.filter == EVFILT_READ) flags |= event_flags::readable;
  if (ev.filter == EVFILT_WRITE) flags |= event_flags::writable;
  if (ev.flags & EV_EOF) {
    flags |= event_flags::hangup;
    if (ev.fflags != 0) flags |= event_flags::error;
  }
  return flags;
}

/// Applies `n` changes, each with EV_RECEIPT, and returns their receipts
/// in `receipts` (n of them), or -1 with errno set.
int apply_changes(int kqueue_fd, const struct kevent* changes, struct kevent* receipts, int n) {
  const timespec zero{};
  for (;;) {
    const int r = ::kevent(kqueue_fd, changes, n, receipts, n, &zero);
    if (r >= 0 || errno != EINTR) return r;
  }
}

}  // namespace

KqueueBackend::KqueueBackend() {
  kqueue_fd_ = ::kqueue();
  if (kqueue_fd_ < 0) throw_errno("kqueue");
  auto fail = [this](const char* what) {
    int saved = errno;
    ::close(kqueue_fd_);
    errno = saved;
    throw_errno(what);
  };
  if (::fcntl(kqueue_fd_, F_SETFD, FD_CLOEXEC) < 0) fail("fcntl(kqueue, FD_CLOEXEC)");
  struct kevent ev;
  EV_SET(&ev, 0, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, Udata{});
  if (::kevent(kqueue_fd_, &ev, 1, nullptr, 0, nullptr) < 0) fail("kevent(ADD, EVFILT_USER)");
}

KqueueBackend::~KqueueBackend() {
  ::close(kqueue_fd_);
}

void KqueueBackend::wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) {
  using clock = std::chrono::steady_clock;
  if (timeout && *timeout > kMaxTimeout) timeout = kMaxTimeout;
  const auto deadline = timeout ? clock::now() + *timeout : clock::time_point::max();
  struct kevent events[kMaxEventsPerWait];
  int n;
  for (;;) {
    timespec ts;
    n = ::kevent(kqueue_fd_, nullptr, 0, events, kMaxEventsPerWait, to_timespec(timeout, ts));
    if (n >= 0) break;
    if (errno != EINTR) throw_errno("kevent");
    if (timeout) {
      auto left = deadline - clock::now();
      timeout = left > clock::duration::zero() ? std::chrono::ceil<Duration>(left) : Duration::zero();
    }
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].filter == EVFILT_USER) continue;  // a wake; EV_CLEAR has reset it
    out.push_back(IoEvent{reinterpret_cast<EventTarget*>(events[i].udata), to_flags(events[i]), 0});
  }
}

void KqueueBackend::watch(int fd, std::uint32_t interest, EventTarget* target) {
  if (interest == 0) return unwatch(fd);
  if (fd < 0) throw_watch_error(EBADF, fd);
  const auto ident = static_cast<std::uintptr_t>(fd);
  const auto udata = reinterpret_cast<Udata>(target);
  const bool want_read = interest & event_flags::readable;
  const bool want_write = interest & event_flags::writable;
  struct kevent changes[2];
  EV_SET(&changes[0], ident, EVFILT_READ, (want_read ? EV_ADD : EV_DELETE) | EV_RECEIPT, 0, 0, udata);
  EV_SET(&changes[1], ident, EVFILT_WRITE, (want_write ? EV_ADD : EV_DELETE) | EV_RECEIPT, 0, 0, udata);
  struct kevent receipts[2];
  const int n = apply_changes(kqueue_fd_, changes, receipts, 2);
  if (n < 0) throw_watch_error(errno, fd);
  for (int i = 0; i < n; ++i) {
    const auto err = static_cast<int>(receipts[i].data);
    if (!(receipts[i].flags & EV_ERROR) || err == 0) continue;
    // A receipt's flags are EV_ERROR alone; its filter says which change.
    const bool deleted = receipts[i].filter == EVFILT_READ ? !want_read : !want_write;
    if (deleted && err == ENOENT) continue;  // that filter was not registered
    throw_watch_error(err, fd);
  }
}

void KqueueBackend::unwatch(int fd) noexcept {
  if (fd < 0) return;
  struct kevent changes[2];
  EV_SET(&changes[0], static_cast<std::uintptr_t>(fd), EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, Udata{});
  EV_SET(&changes[1], static_cast<std::uintptr_t>(fd), EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, Udata{});
  struct kevent receipts[2];
  // ENOENT: that filter was not registered (or the fd was never watched);
  // EBADF: the fd was closed first and the kernel already forgot it.
  apply_changes(kqueue_fd_, changes, receipts, 2);
}

void KqueueBackend::wake() noexcept {
  struct kevent ev;
  EV_SET(&ev, 0, EVFILT_USER, 0, NOTE_TRIGGER, 0, Udata{});
  for (;;) {
    if (::kevent(kqueue_fd_, &ev, 1, nullptr, 0, nullptr) >= 0 || errno != EINTR) return;
  }
}

}  // namespace duet::platform
