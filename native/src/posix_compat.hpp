// The few calls whose Linux forms (accept4, SOCK_NONBLOCK, pipe2,
// MSG_NOSIGNAL) are missing on macOS, with the portable fallback there.
// Linux and FreeBSD take the one-call forms. The fallbacks are untested
// here (no macOS machine); see the README's platform table.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace duet::native::compat {

#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
inline constexpr bool kAtomicFlags = true;
#else
inline constexpr bool kAtomicFlags = false;
#endif

#if defined(MSG_NOSIGNAL)
inline constexpr int kSendFlags = MSG_NOSIGNAL;
#else
inline constexpr int kSendFlags = 0;  // SO_NOSIGPIPE is set on each socket instead
#endif

// O_NONBLOCK and FD_CLOEXEC on an fd made without them; false on failure.
inline bool set_nonblocking_cloexec(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  const int fd_flags = ::fcntl(fd, F_GETFD);
  return fl >= 0 && fd_flags >= 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
         ::fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) == 0;
}

// After a socket is made: what the platform cannot do in the call itself.
inline bool finish_socket(int fd) {
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) return false;
#endif
  if constexpr (!kAtomicFlags) return set_nonblocking_cloexec(fd);
  return true;
}

inline int socket(int family, int type, int protocol) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
#else
  const int fd = ::socket(family, type, protocol);
#endif
  if (fd >= 0 && !finish_socket(fd)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int accept(int listener, sockaddr* address, socklen_t* length) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  const int fd = ::accept4(listener, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  const int fd = ::accept(listener, address, length);
#endif
  if (fd >= 0 && !finish_socket(fd)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int pipe_nonblocking(int fds[2]) {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
  return ::pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
  if (::pipe(fds) < 0) return -1;
  if (!set_nonblocking_cloexec(fds[0]) || !set_nonblocking_cloexec(fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  return 0;
#endif
}

}  // namespace duet::native::compat
