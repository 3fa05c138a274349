// Socket helpers for the I/O tests that run on POSIX and on Windows (under
// Wine): a connected pair, and a plain blocking send from the test itself.
#pragma once

#ifdef _WIN32
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on
#else
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <catch2/catch.hpp>
#include <duet/duet.hpp>
#include <string_view>
#include <utility>

#ifdef _WIN32
#ifndef SHUT_WR
#define SHUT_WR SD_SEND
#endif
#endif

namespace duet::test {

/// A connected stream pair: socketpair on POSIX, a loopback TCP connection
/// on Windows (which has no socketpair).
inline std::pair<duet::native::Socket, duet::native::Socket> socket_pair() {
  using duet::native::Socket;
  using duet::native::SocketAddress;
#ifdef _WIN32
  Socket listening = Socket::tcp(AF_INET);
  listening.bind(SocketAddress("127.0.0.1", 0));
  listening.listen(1);
  const SocketAddress address = listening.local_address();
  Socket a = Socket::tcp(AF_INET);
  REQUIRE(::connect(static_cast<SOCKET>(a.fileno()), static_cast<const sockaddr*>(address.native()),
                    static_cast<int>(address.native_size())) == 0);
  const SOCKET accepted = ::accept(static_cast<SOCKET>(listening.fileno()), nullptr, nullptr);
  REQUIRE(accepted != INVALID_SOCKET);
  return {std::move(a), Socket::adopt(static_cast<duet::native::NativeSocket>(accepted))};
#else
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  return {Socket(fds[0]), Socket(fds[1])};
#endif
}

/// Sends from the test, past the loop (write(2) / send()): the bytes sent.
inline long raw_send(const duet::native::Socket& s, std::string_view data) {
#ifdef _WIN32
  return ::send(static_cast<SOCKET>(s.fileno()), data.data(), static_cast<int>(data.size()), 0);
#else
  return static_cast<long>(::write(s.fileno(), data.data(), data.size()));
#endif
}

/// getsockopt for an int option of a socket the test does not own.
inline int get_int_option(duet::native::NativeSocket s, int level, int name) {
  int value = 0;
#ifdef _WIN32
  int length = sizeof value;
  ::getsockopt(static_cast<SOCKET>(s), level, name, reinterpret_cast<char*>(&value), &length);
#else
  socklen_t length = sizeof value;
  ::getsockopt(s, level, name, &value, &length);
#endif
  return value;
}

/// SO_LINGER {on, 0}: closing sends RST instead of FIN.
inline void reset_on_close(duet::native::NativeSocket s) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
#ifdef _WIN32
  ::setsockopt(static_cast<SOCKET>(s), SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&l), sizeof l);
#else
  ::setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
#endif
}

}  // namespace duet::test
