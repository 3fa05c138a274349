// The platform's socket headers and the few helpers that differ between
// POSIX (errno) and Winsock (WSAGetLastError, system_category codes).
// Private to duet::native.
#pragma once

#ifdef _WIN32
// clang-format off
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
// clang-format on
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <exception>
#include <string>

namespace duet::native {
class Socket;
}

namespace duet::native::sys {

#ifdef _WIN32
using socklen = int;
/// ERROR_HANDLES_CLOSED (STATUS_HANDLES_CLOSED), missing from MinGW's
/// headers: what Wine 8 reports for I/O aborted by closing its socket.
inline constexpr int kErrorHandlesClosed = 676;
#else
using socklen = socklen_t;
#endif

/// errno, or WSAGetLastError() on Windows.
int last_error() noexcept;
/// The OSError subclass Python raises for `code` (an errno, or a Windows or
/// Winsock error), with the message "<what>: <description>".
std::exception_ptr os_error(int code, const std::string& what);
[[noreturn]] void throw_os_error(int code, const std::string& what);
/// Winsock is started once per process (WSAStartup); nothing on POSIX.
void startup();
/// OSError(EBADF) "<op> on a closed socket" unless `socket` is open (the
/// sock_* operations' first check, on every platform).
void check_open(const Socket& socket, const char* op);

}  // namespace duet::native::sys
